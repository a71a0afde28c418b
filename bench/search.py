"""Archive search over 10,000 and 100,000 documents, SQLite and PostgreSQL: the one text engine
(``worker.search``: the index narrows, the matcher decides and explains) side by side with the
previous engine (``bench/previous_search.py``, in the same database) and a naive LIKE scan.

Documents are synthetic: 3 to 8 paragraphs drawn from the seed newsletters (EN n°23, EN n°11)
or from the replica's French texts, stored through the ORM into a database migrated by the
real Alembic migrations, so the index tokens are computed by the model's hook exactly as when
a poll archives. PostgreSQL runs in a throwaway database on ``TIPWATCH_TEST_PG``'s server
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), dropped afterwards.

Timed, median of several runs after a warm-up: ``search(session, q, limit=20)`` (candidates
ranked by the index, each verified and explained by the matcher until 20 match, snippets
included) and its count (``match_count``); the previous ``search()`` (top 20 with its snippets)
and its count; fetching every row whose text ``LIKE`` (PostgreSQL: ``ILIKE``) each word as typed.
Up to 10,000 documents, every query's matches are also found by running the matcher over every
document, and must be exactly the engine's (its count too, where it says it is exact).
"""

from __future__ import annotations

import hashlib
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import previous_search
from tests.databases import PG_ADMIN, throwaway_database
from tests.replica import texts
from worker.match import DocumentMeta, IndexedText, compile_query, explain_document
from worker.search import iter_matches, match_count, prepare, search
from worker.storage.db import get_engine, session_scope
from worker.storage.models import Document

TARGET_MS = 10.0  # issue 15: median search (top 20 with snippets) at 10,000 documents

# (kind, query, naive LIKE patterns (every one must occur), the previous engine can run it)
QUERIES: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("word", "Dubrovnik", ("Dubrovnik",), True),
    ("a word no document has", "Vladivostok", ("Vladivostok",), True),
    ("two words", "trafficking Serbia", ("trafficking", "Serbia"), True),
    ("phrase", '"sexual exploitation"', ("sexual exploitation",), True),
    ("typed without accents", "etres humains", ("etres", "humains"), True),
    ("stemmed", "trafficked", ("trafficked",), True),
    ("prefix", "exploit*", ("exploit",), True),
    ("French, accented", "mendicité", ("mendicité",), True),
    ("NEAR", "trafficking NEAR/3 victims", (), False),
    ("NOT", "trafficking NOT Serbia", (), False),
    ("filter", "exploitation lang:fr", (), False),
)


def corpus() -> list[tuple[str, list[str]]]:
    fr = [p for p in texts.paragraphs(texts.N23_FR + "\n\n" + texts.N11_FR) if len(p) > 80]
    en = [p for p in texts.n23_en_paragraphs() + texts.n11_en_paragraphs() if len(p) > 80]
    return [("en", en), ("fr", fr)]


def documents(count: int) -> Iterator[Document]:
    rng = random.Random(8)
    pools = corpus()
    for i in range(count):
        language, pool = pools[0] if rng.random() < 0.75 else pools[1]
        paras = rng.sample(pool, min(len(pool), rng.randint(3, 8)))
        body = "\n\n".join(paras)
        yield Document(
            content_sha256=hashlib.sha256(f"{i}\n{body}".encode()).hexdigest(),
            source="bench",
            url=f"http://bench.invalid/{i}",
            canonical_url=f"http://bench.invalid/{i}",
            kind="html",
            size_bytes=len(body),
            title=paras[0][:80],
            text=body,
            language=language,
            page_count=1,
        )


def _naive(session: sa.orm.Session, patterns: tuple[str, ...]) -> list[int]:
    op = "LIKE" if session.get_bind().dialect.name == "sqlite" else "ILIKE"
    where = " AND ".join(f"text {op} :p{i}" for i in range(len(patterns)))
    params = {f"p{i}": f"%{p}%" for i, p in enumerate(patterns)}
    rows = session.execute(sa.text(f"SELECT id, title, text FROM document WHERE {where}"), params)
    return [row[0] for row in rows]


def _median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


def load(url: str, count: int) -> dict[str, float]:
    """Store ``count`` documents (ORM, batches of 1,000) and the previous engine's copy."""
    engine = get_engine(url)  # migrated to head
    started = time.perf_counter()
    batch: list[Document] = []
    for doc in documents(count):
        batch.append(doc)
        if len(batch) == 1000:
            with session_scope(engine) as session:
                session.add_all(batch)
            batch = []
    if batch:
        with session_scope(engine) as session:
            session.add_all(batch)
    insert = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as conn:
        previous_search.create_tables(conn)
        last = 0
        while True:
            rows = conn.execute(
                sa.text(
                    "SELECT id, title, text, language FROM document WHERE id > :last"
                    " ORDER BY id LIMIT 1000"
                ),
                {"last": last},
            ).all()
            if not rows:
                break
            previous_search.fill(conn, [dict(r._mapping) for r in rows])
            last = rows[-1].id
        previous_search.finish(conn)
    if engine.dialect.name == "postgresql":
        # The state autovacuum keeps an archive in (its statistics, visibility map and hint
        # bits), not that of tables filled a second ago: searching those took 1.4x as long.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return {"insert": insert, "previous insert": time.perf_counter() - started}


def matched_everywhere(session: sa.orm.Session, query: str) -> set[int]:
    """The matcher over every document: the exact answer the engine must give."""
    node = compile_query(query)
    found = set()
    rows = session.execute(
        sa.select(
            Document.id,
            Document.title,
            Document.text,
            Document.language,
            Document.source,
            Document.kind,
        )
    )
    for doc_id, title, text, language, source, kind in rows:
        meta = DocumentMeta(source, language, kind)
        index = IndexedText.build([text], language)
        title_index = IndexedText.build([title or ""], language)
        if explain_document(node, index, meta, title_index) is not None:
            found.add(doc_id)
    return found


def measure(url: str, count: int, repeat: int) -> dict[str, Any]:
    timings = load(url, count)
    engine = get_engine(url)
    rows: dict[str, dict[str, Any]] = {}
    with session_scope(engine) as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(Document))
        assert total == count, total
        for kind, query, patterns, previous_ok in QUERIES:
            row: dict[str, Any] = {"query": query}
            row["ms"], page = _median_ms(
                lambda q=query: search(session, q, limit=20, count=False), repeat
            )
            prepared = prepare(session, query)
            row["count ms"], (matches, exact) = _median_ms(
                lambda p=prepared: match_count(session, p), repeat
            )
            row["matches"], row["exact"] = matches, exact
            assert len(page.hits) == min(20, matches) or not exact, (query, matches)
            if count <= 10_000:
                # every match, and only those; a count beyond the verifying budget is an
                # upper bound (exact says which)
                expected = matched_everywhere(session, query)
                found = {document.id for document, _ in iter_matches(session, query)}
                assert found == expected, (query, len(found), len(expected))
                assert matches == len(expected) if exact else matches >= len(expected), query
                assert {h.document_id for h in page.hits} <= expected, query
            if previous_ok:
                row["previous ms"], _ = _median_ms(
                    lambda q=query: previous_search.search(session, q, limit=20), repeat
                )
                row["previous matches"] = previous_search.count(session, query)
            if patterns:
                row["like ms"], naive = _median_ms(lambda p=patterns: _naive(session, p), repeat)
                row["like matches"] = len(naive)
            rows[kind] = row
    return {**timings, "rows": rows}


def _cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}"


def run(smoke: bool = False) -> str:
    sizes = [(300, 3)] if smoke else [(10_000, 15), (100_000, 5)]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for count, repeat in sizes:
            for dialect in ("sqlite", "postgresql"):
                with throwaway_database(dialect, Path(tmp), "tipwatch_bench") as url:
                    if url is not None:
                        results[(dialect, count)] = measure(url, count, repeat)
    assert any(d == "sqlite" for d, _ in results)
    lines = [
        "Synthetic documents (3–8 seed paragraphs each, 75% EN / 25% FR); median of 15 runs "
        "(5 at 100,000) after a warm-up. Insert: the ORM in batches of 1,000, index tokens "
        "computed as by a poll; previous: copying the rows into the previous engine's index; "
        "PostgreSQL then vacuumed and analyzed, as autovacuum keeps it.",
        "",
    ]
    for (dialect, count), result in results.items():
        lines.append(
            f"- {dialect}, {count:,} documents: insert {result['insert']:.1f} s, previous "
            f"engine's index {result['previous insert']:.1f} s"
        )
    lines += [
        "",
        "| database | documents | query | kind | search ms (top 20 + explanations) | count ms "
        "| matches | previous search ms | previous matches | LIKE scan ms | LIKE matches "
        "| previous / new |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    for (dialect, count), result in results.items():
        medians = []
        for kind, row in result["rows"].items():
            medians.append(row["ms"])
            ratio = f"{row['previous ms'] / row['ms']:.1f}×" if row.get("previous ms") else "–"
            matches = _cell(row["matches"]) + ("" if row["exact"] else " (at most)")
            lines.append(
                f"| {dialect} | {count:,} | `{row['query']}` | {kind} | {_cell(row['ms'])} "
                f"| {_cell(row['count ms'])} | {matches} | {_cell(row.get('previous ms'))} "
                f"| {_cell(row.get('previous matches'))} | {_cell(row.get('like ms'))} "
                f"| {_cell(row.get('like matches'))} | {ratio} |"
            )
        summary.append(
            f"- {dialect}, {count:,} documents: median over the queries "
            f"{statistics.median(medians):.2f} ms, slowest {max(medians):.2f} ms"
        )
    if not any(d == "postgresql" for d, _ in results):
        lines.append(f"\nPostgreSQL was not reachable at {PG_ADMIN}: no PostgreSQL rows.")
    lines += [
        "",
        *summary,
        "",
        "Search returns exactly what a subscription with the same query matches: up to 10,000 "
        "documents each count above is checked against the matcher run over every document. "
        "The previous engine answers only words, phrases and prefixes (– for NEAR, NOT and "
        "filters) and disagrees with subscriptions where its own tokenizer and stemmers do "
        "(its counts). The LIKE scan ignores accents (`etres` never matches *êtres*), stems "
        "(`trafficked` misses *trafficking*) and word boundaries (`Serbia` in *Serbian*).",
    ]
    return "\n".join(lines)
