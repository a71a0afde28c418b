"""Storage on both real databases: migrations, the pipeline's writes, full-text search."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.conftest import Replica, Tipwatch, make_env
from worker.storage.db import dispose_engines, get_engine, head_revision, session_scope
from worker.storage.models import Base, Document
from worker.storage.search import search

PG_ADMIN = os.environ.get("TIPWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        with sa.create_engine(PG_ADMIN).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        dispose_engines()
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN}")
    name = f"tipwatch_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_create_exactly_the_models(database_url: str) -> None:
    engine = get_engine(database_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "fts" not in str(d)] == []


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
        assert search(session, '" OR ) NEAR(') == []  # user input never breaks the SQL

    found = tipwatch.json("archive", "search", "Dubrovnik")
    assert found and "Dubrovnik" in found[0]["snippet"]
