"""Storage on both real databases: migrations, the pipeline's writes, full-text search."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.archive_site import MiniSite, mini_tipwatch
from tests.conftest import Replica, Tipwatch, make_env
from tests.databases import database_for_test, pg_available
from worker.search import QueryError
from worker.search import search as search_page
from worker.storage.db import dispose_engines, get_engine, head_revision, session_scope
from worker.storage.filters import DocumentFilter
from worker.storage.models import Base, Document


def search(session: sa.orm.Session, query: str, filters: DocumentFilter | None = None) -> list:
    """The first 50 results of archive search (worker.search), best first."""
    return search_page(session, query, filters=filters, limit=50).hits


# Kept importable from here for the tests that share them.
_pg_available = pg_available


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_for_test(request.param, tmp_path) as url:
        yield url


def test_migrations_create_exactly_the_models(database_url: str) -> None:
    engine = get_engine(database_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # the search index lives outside the models: SQLite's FTS5 table, PostgreSQL's
    # document_search (migration 0014), both kept by triggers
    assert [d for d in diff if not any(k in str(d) for k in ("fts", "document_search"))] == []


def test_poll_and_search_on_each_database(
    database_url: str, tmp_path: Path, replica_session: Replica
) -> None:
    env = make_env(tmp_path / "data", replica_session, TIPWATCH_DATABASE_URL=database_url)
    tipwatch = Tipwatch(tmp_path / "data", env)
    report = tipwatch.json("poll", "--source", "unodc-glotip", "--source", "onu-vienne")
    assert all(s["status"] == "ok" for s in report["sources"]), report

    engine = get_engine(database_url)
    with session_scope(engine) as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(Document))
        assert total == sum(s["new"] for s in report["sources"])
        hits = search(session, "Dubrovnik")
        assert hits, "the n°23 newsletter mentions Dubrovnik"
        titles = [session.get(Document, h.document_id).title or "" for h in hits]
        assert any("n°23" in t for t in titles), titles
        assert "«Dubrovnik»" in hits[0].snippet
        # Accents and case do not matter.
        assert (
            {h.document_id for h in search(session, "ETRES HUMAINS")}
            == {h.document_id for h in search(session, "êtres humains")}
            != set()
        )
        assert search(session, "zzzyyyxxx") == []
        for hostile in ('" OR ) NEAR(', "title:x* AND (", "'; DROP TABLE document; --", "***"):
            with contextlib.suppress(QueryError):  # a result, or the query's mistake, never SQL
                search(session, hostile)

    found = tipwatch.json("archive", "search", "Dubrovnik")
    assert found and "Dubrovnik" in found[0]["snippet"]


# -- stemmed, filtered search on both databases ------------------------------------------------


def _titles(session: sa.orm.Session, hits: list) -> list[str]:
    return [session.get(Document, h.document_id).title or "" for h in hits]


def test_stemmed_accent_insensitive_search_with_filters(
    database_url: str,
    tmp_path: Path,
    mini_site: MiniSite,
) -> None:
    from datetime import date

    tipwatch = mini_tipwatch(mini_site, tmp_path, TIPWATCH_DATABASE_URL=database_url)
    tipwatch.run("poll", "--no-notify")
    engine = get_engine(database_url)
    with session_scope(engine) as session:
        # English stems: the query word is not in the document, its stem is.
        hits = search(session, "trafficked")
        assert "Child labour report" in _titles(session, hits)
        report = next(h for h in hits if _titles(session, [h])[0] == "Child labour report")
        assert "«trafficking»" in report.snippet
        assert "<mark>trafficking</mark>" in report.snippet_html
        # French stems, by the document's language.
        hits = search(session, "exploitations")
        assert "Rapport sur la traite des êtres humains" in _titles(session, hits)
        assert any("«exploitation»" in h.snippet for h in hits)
        # Accents and case.
        assert {h.document_id for h in search(session, "ETRES humains")} == {
            h.document_id for h in search(session, "êtres humains")
        }
        # Exact phrases and prefixes.
        assert _titles(session, search(session, '"debt bondage"')) == ["Child labour report"]
        assert search(session, '"bondage debt"') == []
        assert len(search(session, "traffick*")) >= 2
        # Filters: language, kind, issue, dates, source.
        french = search(session, "exploitation", filters=DocumentFilter(language="fr"))
        assert french and all(session.get(Document, h.document_id).language == "fr" for h in french)
        pdfs = search(session, "exploitation", filters=DocumentFilter(kind="pdf", issue=7))
        assert {session.get(Document, h.document_id).kind for h in pdfs} == {"pdf"}
        assert len(pdfs) == 2  # the EN and FR newsletter n°7
        dated = DocumentFilter(since=date(2025, 2, 1), until=date(2025, 2, 28))
        assert _titles(session, search(session, "exploitation", filters=dated)) == [
            "Rapport sur la traite des êtres humains"
        ]
        assert search(session, "exploitation", filters=DocumentFilter(sources=["other"])) == []
        # Hostile markup in the text is data: escaped in the HTML snippet.
        hostile = search(session, "smuggling")[0]
        assert "<script>" in hostile.snippet and "<script>" not in hostile.snippet_html
        assert "&lt;script&gt;" in hostile.snippet_html
        if engine.dialect.name == "postgresql":
            session.execute(sa.text("SET LOCAL enable_seqscan = off"))
            explain = sa.text(
                "EXPLAIN SELECT document_id FROM document_search"
                " WHERE lexemes @@ CAST(:q AS tsquery)"
            )
            plan = "\n".join(row[0] for row in session.execute(explain, {"q": "'s:traffick'"}))
            assert "document_search_idx" in plan, plan


def test_index_follows_updates_and_deletes(database_url: str) -> None:
    """SQLite's FTS5 table and PostgreSQL's document_search are kept by triggers: a changed
    text, language, date or source is searched as it is now; a deleted document is gone."""
    engine = get_engine(database_url)
    try:
        with session_scope(engine) as session:
            session.add(
                Document(
                    content_sha256="a" * 64,
                    source="s",
                    url="http://x/1",
                    canonical_url="http://x/1",
                    kind="html",
                    size_bytes=1,
                    title="Note",
                    text="Les victimes d'exploitation",
                    language="fr",
                )
            )
        with session_scope(engine) as session:
            assert search(session, "exploitations")
            assert search(session, "exploitations lang:fr source:s")
            doc = session.scalar(sa.select(Document))
            doc.text = "Trafficked persons"
            doc.language = "en"
            doc.source = "other"
            doc.published_at = datetime(2020, 1, 2, tzinfo=UTC)
        with session_scope(engine) as session:
            assert search(session, "exploitations") == []
            assert search(session, "trafficking lang:fr") == []
            assert search(session, "trafficking lang:en source:other")
            page = search_page(session, "trafficking", sort="date")
            assert page.hits and page.count == 1
            assert search(session, "note")  # the title, unchanged
            session.delete(session.scalar(sa.select(Document)))
        with session_scope(engine) as session:
            assert search(session, "trafficking") == []
            assert search_page(session, "trafficking").count == 0
    finally:
        dispose_engines()
