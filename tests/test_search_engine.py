"""One text engine (issue 15): archive search returns exactly the documents a subscription with
the same query would match, on SQLite and on PostgreSQL, with the alert's explanation.

The property test generates small English and French archives (accents, elisions, hyphens,
line breaks, several pages, titles) and queries in the whole subscription language, stores the
documents through the ORM into a real database migrated by Alembic, and compares every page of
``worker.search.search`` (followed by its cursors) with the matcher run over every document.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.databases import database_for_test
from worker.match import DocumentMeta, IndexedText, QueryError, compile_query, explain_document
from worker.search import iter_matches, match_count, prepare, search
from worker.storage.db import dispose_engines, get_engine, session_scope
from worker.storage.models import Document, DocumentPage
from worker.thesaurus import load_thesaurus

# Words whose folding and stemming differ between languages and engines: accents, elisions,
# plurals, ligatures, Serbian letters NFKD leaves alone, a hyphenated compound.
VOCABULARY = [
    "traite", "êtres", "etres", "humains", "humain", "mendicité", "mendicite", "forcée",
    "forcé", "forced", "begging", "exploitées", "exploitée", "exploitation", "exploitations",
    "identifiées", "identification", "victimes", "victims", "victim", "trafficking",
    "trafficked", "traffickers", "criminality", "criminal", "délinquance", "Serbia", "Serbie",
    "Belgrade", "Beograd", "Œuvre", "main-d'œuvre", "l'exploitation", "d'êtres", "qu'il",
    "Đorđević", "Dordevic", "naïve", "UNODC", "GRETA", "2025", "n°23", "labour", "labor",
    "sexual", "sexuelle", "children", "enfants", "the", "la", "de", "des", "of",
]
SEPARATORS = [" ", " ", " ", "\n", ", ", ". ", "-\n", " – ", "\n\n"]


@st.composite
def texts(draw: st.DrawFn, min_words: int = 0, max_words: int = 18) -> str:
    picked = draw(st.lists(st.sampled_from(VOCABULARY), min_size=min_words, max_size=max_words))
    out = []
    for word in picked:
        out.append(draw(st.sampled_from([word, word.upper(), word.capitalize()])))
        out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out).strip()


@st.composite
def documents(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["pdf", "html"]))
    pages = draw(st.lists(texts(), min_size=1, max_size=3 if kind == "pdf" else 1))
    return {
        "title": draw(st.one_of(st.none(), texts(max_words=5))),
        "pages": pages,
        "language": draw(st.sampled_from(["en", "fr", None])),
        "source": draw(st.sampled_from(["onu-vienne", "unodc"])),
        "kind": kind,
        "as_rows": kind == "pdf" or draw(st.booleans()),  # page rows, or only Document.text
    }


def _term(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(VOCABULARY))
    shape = draw(st.sampled_from(["word", "word", "quoted", "prefix", "phrase", "qprefix"]))
    if shape == "quoted":
        return f'"{word}"'
    if shape == "prefix":
        return word[: draw(st.integers(2, max(2, len(word))))] + "*"
    if shape in ("phrase", "qprefix"):
        second = draw(st.sampled_from(VOCABULARY))
        tail = second[:3] + "*" if shape == "qprefix" else second
        return f'"{word} {tail}"'
    return word


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 2:
        return _term(draw)
    shape = draw(
        st.sampled_from(["term", "and", "or", "not", "near", "field", "group", "implicit"])
    )
    if shape == "term":
        return _term(draw)
    left, right = draw(queries(depth + 1)), draw(queries(depth + 1))
    if shape == "and":
        return f"{left} AND {right}"
    if shape == "implicit":
        return f"{left} {right}"
    if shape == "or":
        return f"{left} OR {right}"
    if shape == "not":
        return f"{left} AND NOT {right}"
    if shape == "near":
        return f"{_term(draw)} NEAR/{draw(st.integers(0, 6))} {_term(draw)}"
    if shape == "field":
        field = draw(
            st.sampled_from(["source:onu-vienne", "source:unodc", "lang:fr", "lang:en", "kind:pdf"])
        )
        return f"{left} {field}"
    return f"({left} OR {right}) {draw(queries(depth + 1))}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with database_for_test(request.param, tmp_path_factory.mktemp("engine")) as url:
        yield get_engine(url)


def html_doc(
    page: str, title: str | None, language: str | None = "en", source: str = "unodc"
) -> dict:
    """One single-page HTML document for :func:`store`."""
    return {
        "title": title,
        "pages": [page],
        "language": language,
        "source": source,
        "kind": "html",
        "as_rows": False,
    }


def store(engine: sa.Engine, docs: list[dict]) -> list[int]:
    """Replace the archive by ``docs`` (through the ORM, as a poll stores them)."""
    with session_scope(engine) as session:
        session.execute(sa.delete(DocumentPage))
        session.execute(sa.delete(Document))
    ids = []
    with session_scope(engine) as session:
        for n, doc in enumerate(docs):
            row = Document(
                content_sha256=uuid.uuid4().hex * 2,
                source=doc["source"],
                url=f"http://example.test/{n}",
                canonical_url=f"http://example.test/{n}",
                kind=doc["kind"],
                size_bytes=1,
                title=doc["title"],
                language=doc["language"],
                text="\n\n".join(doc["pages"]),
            )
            if doc["as_rows"]:
                row.pages = [
                    DocumentPage(page_number=i, text=t) for i, t in enumerate(doc["pages"], 1)
                ]
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def matched_by_matcher(docs: list[dict], ids: list[int], query: str, thesaurus: bool) -> set[int]:
    """What the subscription matcher says, document by document, from the text itself."""
    node = compile_query(query, load_thesaurus() if thesaurus else None)
    found = set()
    for doc, doc_id in zip(docs, ids, strict=True):
        meta = DocumentMeta(doc["source"], doc["language"], doc["kind"])
        text = IndexedText.build(doc["pages"], doc["language"])
        title = IndexedText.build([doc["title"] or ""], doc["language"])
        if explain_document(node, text, meta, title) is not None:
            found.add(doc_id)
    return found


def all_pages(engine: sa.Engine, query: str, sort: str, thesaurus: bool) -> tuple[list[int], int]:
    """Every result of a search, page after page through its cursors."""
    seen: list[int] = []
    cursor = None
    with session_scope(engine) as session:
        while True:
            page = search(session, query, limit=3, cursor=cursor, sort=sort, thesaurus=thesaurus)
            seen += [h.document_id for h in page.hits]
            assert all(h.explanation["terms"] for h in page.hits)
            if page.next_cursor is None:
                count, exact = page.count, page.count_exact
                return seen, count if exact else -count
            cursor = page.next_cursor


@settings(
    max_examples=int(os.environ.get("TIPWATCH_SEARCH_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    docs=st.lists(documents(), min_size=1, max_size=8),
    query=queries(),
    sort=st.sampled_from(["relevance", "date"]),
    thesaurus=st.booleans(),
)
def test_search_returns_exactly_what_the_matcher_matches(
    engine: sa.Engine, docs: list[dict], query: str, sort: str, thesaurus: bool
) -> None:
    try:
        compile_query(query)
    except QueryError:
        assume(False)
    ids = store(engine, docs)
    expected = matched_by_matcher(docs, ids, query, thesaurus)
    found, count = all_pages(engine, query, sort, thesaurus)
    assert len(found) == len(set(found)), ("a document on two pages", found)
    assert set(found) == expected, (query, docs)
    if count >= 0:
        assert count == len(expected), (query, count, expected)
    else:
        assert -count >= len(expected)  # an upper bound


# -- regressions ------------------------------------------------------------------------------


@pytest.fixture
def archive(engine: sa.Engine) -> Iterator[tuple[sa.Engine, dict[str, int]]]:
    docs = {
        "fr-pdf": {
            "title": "Lettre d'information n°23",
            "pages": [
                "La mendicité forcée touche des enfants.",
                "Les victimes exploitées sont rarement identifiées par les services.",
            ],
            "language": "fr",
            "source": "onu-vienne",
            "kind": "pdf",
            "as_rows": True,
        },
        "en-html": {
            "title": "Forced criminality in Serbia",
            "pages": ["Victims of forced\ncriminality were trafficked to Belgrade by a network."],
            "language": "en",
            "source": "unodc",
            "kind": "html",
            "as_rows": True,
        },
        "en-split": {
            "title": "Two pages",
            "pages": ["The report is about forced", "labour and begging."],
            "language": "en",
            "source": "onu-vienne",
            "kind": "pdf",
            "as_rows": True,
        },
    }
    ids = dict(zip(docs, store(engine, list(docs.values())), strict=True))
    yield engine, ids


def _ids(engine: sa.Engine, query: str, **options: object) -> set[int]:
    with session_scope(engine) as session:
        return {h.document_id for h in search(session, query, limit=50, **options).hits}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("mendicité", {"fr-pdf"}),
        ("mendicite", {"fr-pdf"}),
        ("MENDICITÉ forcée", {"fr-pdf"}),
        ("exploitées", {"fr-pdf"}),
        ("identifiées", {"fr-pdf"}),
        ('"mendicité forcée"', {"fr-pdf"}),
        ('"forced criminality"', {"en-html"}),  # a phrase across a line break
        ('"forced labour"', set()),  # across a page break: never a phrase
        ("forced labour", {"en-split"}),  # both words, anywhere
        ("victims NEAR/4 trafficked", {"en-html"}),  # of forced criminality were: 4 words
        ("victims NEAR/3 trafficked", set()),
        ("victimes NEAR/5 identifiées", {"fr-pdf"}),
        ("forced lang:en", {"en-html", "en-split"}),
        ("forced source:unodc", {"en-html"}),
        ("forced kind:pdf", {"en-split"}),
        ("forced NOT criminality", {"en-split"}),
        ("serbia", {"en-html"}),  # only in the title: the title is searched on its own
        ("serbia belgrade", set()),  # neither the text nor the title has both
        ("traffick*", {"en-html"}),
    ],
)
def test_regressions(archive: tuple[sa.Engine, dict[str, int]], query: str, expected: set) -> None:
    engine, ids = archive
    names = {v: k for k, v in ids.items()}
    assert {names[i] for i in _ids(engine, query)} == expected


def test_title_only_when_the_text_does_not_match(
    archive: tuple[sa.Engine, dict[str, int]],
) -> None:
    engine, ids = archive
    with session_scope(engine) as session:
        (hit,) = search(session, "serbia").hits
    assert hit.document_id == ids["en-html"] and hit.explanation["in"] == "title"


def test_thesaurus_finds_the_french_phrase_and_says_why(
    archive: tuple[sa.Engine, dict[str, int]],
) -> None:
    engine, ids = archive
    assert _ids(engine, '"forced begging"') == set()
    with session_scope(engine) as session:
        (hit,) = search(session, '"forced begging"', thesaurus=True).hits
    assert hit.document_id == ids["fr-pdf"]
    (term,) = hit.explanation["terms"]
    assert term["thesaurus"] == "forced begging" and term["pages"] == [1]
    assert "«mendicité forcée»" in term["snippets"][0]["text"]


def test_explanation_is_the_alerts(archive: tuple[sa.Engine, dict[str, int]]) -> None:
    engine, ids = archive
    with session_scope(engine) as session:
        (hit,) = search(session, "victimes identifiées").hits
        (document, explanation) = next(iter_matches(session, "victimes identifiées"))
    assert hit.explanation == explanation and document.id == ids["fr-pdf"]
    assert [t["term"] for t in explanation["terms"]] == ["victimes", "identifiées"]
    assert explanation["terms"][1]["pages"] == [2]
    assert "«identifiées»" in explanation["terms"][1]["snippets"][0]["text"]


def test_pages_are_stable_and_counted(engine: sa.Engine) -> None:
    titles = [f"Trafficking report {n}" if n % 5 == 0 else f"Report {n}" for n in range(23)]
    docs = [html_doc("trafficking " * (1 + n % 4) + "in persons", titles[n]) for n in range(23)]
    ids = store(engine, docs)
    for sort in ("relevance", "date"):
        found, count = all_pages(engine, "trafficking", sort, False)
        assert sorted(found) == sorted(ids) and count == 23
    with session_scope(engine) as session:
        # page after page, best first: the five whose title says it, then the others newest
        # first (two reads on both databases: title hits, then the rest; each page resumes)
        scores, cursor = [], None
        while True:
            page = search(session, "trafficking", limit=4, cursor=cursor)
            scores += [(h.score, h.document_id) for h in page.hits]
            if (cursor := page.next_cursor) is None:
                break
        assert len({d for _, d in scores}) == 23
        assert scores == sorted(scores, reverse=True)
        titled = [ids[n] for n in range(0, 23, 5)]
        others = [i for i in ids if i not in titled]
        assert [d for _, d in scores] == sorted(titled, reverse=True) + sorted(others, reverse=True)
    with session_scope(engine) as session:
        first = search(session, "trafficking", limit=5)
        # a new document while someone pages: the next page is neither shifted nor repeated
        session.add(
            Document(
                content_sha256="f" * 64, source="unodc", url="http://x/new",
                canonical_url="http://x/new", kind="html", size_bytes=1,
                title="New", language="en", text="trafficking trafficking trafficking",
            )
        )  # fmt: skip
        session.flush()
        second = search(session, "trafficking", limit=5, cursor=first.next_cursor)
        assert not {h.document_id for h in first.hits} & {h.document_id for h in second.hits}
        scores = [h.score for h in first.hits + second.hits]
        assert scores == sorted(scores, reverse=True)
        assert match_count(session, prepare(session, "trafficking"))[0] == 24


def test_both_databases_order_results_alike(tmp_path) -> None:
    """Relevance is the same on SQLite and PostgreSQL: how many of the query's words the title
    has, then newest first. The same archive pages in the same order on both, whatever the
    query's shape (the two-read path, the general one, a filter, NEAR's verification)."""
    import random

    rng = random.Random(15)

    def words(n: int) -> str:
        return " ".join(rng.choice(VOCABULARY) for _ in range(n))

    docs = [
        html_doc(
            words(rng.randint(4, 30)),
            words(rng.randint(0, 4)) or None,
            rng.choice(["en", "fr", None]),
            rng.choice(["unodc", "onu-vienne"]),
        )
        for _ in range(80)
    ]
    queries = [
        "trafficking", "victims OR victimes", "trafficking Serbia", '"sexual exploitation"',
        "exploit*", "mendicité NOT enfants", "trafficking NEAR/3 victims", "victims lang:fr",
        "humains source:unodc", "(labour OR labor) children",
    ]  # fmt: skip
    orders: dict[str, list[list[tuple[float, int]]]] = {}
    for dialect in ("sqlite", "postgresql"):
        with database_for_test(dialect, tmp_path / dialect) as url:
            engine = get_engine(url)
            ids = store(engine, docs)
            rank = {doc_id: n for n, doc_id in enumerate(ids)}  # ids differ, order does not
            orders[dialect] = []
            for query in queries:
                seen, cursor = [], None
                with session_scope(engine) as session:
                    while True:
                        page = search(session, query, limit=3, cursor=cursor, count=False)
                        seen += [(h.score, rank[h.document_id]) for h in page.hits]
                        if (cursor := page.next_cursor) is None:
                            break
                assert seen == sorted(seen, reverse=True), query
                orders[dialect].append(seen)
            dispose_engines()
    assert any(len(o) > 5 for o in orders["sqlite"])  # the queries find something
    assert any(score > 0 for o in orders["sqlite"] for score, _ in o)  # titles too
    for query, on_sqlite, on_postgresql in zip(queries, *orders.values(), strict=True):
        assert on_sqlite == on_postgresql, query


def test_invalid_queries_and_cursors_are_refused(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(QueryError, match="missing '\\)'"):
            search(session, "(trafficking minors")
        with pytest.raises(ValueError, match="not a cursor"):
            search(session, "trafficking", cursor="bm90IGEgY3Vyc29y")
        page = search(session, "trafficking", limit=1)
        if page.next_cursor:
            with pytest.raises(ValueError, match="not a cursor of a date search"):
                search(session, "trafficking", cursor=page.next_cursor, sort="date")


def test_hostile_query_text_is_data(engine: sa.Engine) -> None:
    store(
        engine,
        [html_doc("it's a drop; table -- \" ' \\ *", 'quote " and \' and \\ and ) NEAR', None)],
    )
    for query in ['"it\'s"', "it's", "drop*", '"table"', "it\\s", "drop; table", '"\\ drop"']:
        assert len(_ids(engine, query)) == 1, query


# -- the web page and the JSON API ---------------------------------------------------------------


def test_web_search_says_what_is_wrong_and_pages_with_links(
    engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from fastapi.testclient import TestClient

    from config.settings import Settings
    from worker.web import create_app

    page = "La mendicité forcée <script>alert(1)</script> touche des enfants."
    docs = [html_doc(page, f"Rapport {n}", "fr", "onu-vienne") for n in range(5)]
    ids = store(engine, docs)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web"),
        database_url=engine.url.render_as_string(hide_password=False),
    )
    with TestClient(create_app(settings)) as web:
        bad = web.get("/api/search", params={"q": "mendicité NEAR/500 forcée"})
        assert bad.status_code == 422 and "NEAR/n needs a number" in bad.json()["detail"]
        page = web.get("/", params={"q": '"mendicité forcée'})
        assert page.status_code == 200
        assert "invalid query: unterminated quote at position 1\n" in page.text
        assert "^" in page.text  # the pointer, as `tipwatch subscribe` prints it

        first = web.get("/api/search", params={"q": "mendicite", "limit": 2})
        assert first.status_code == 200, first.text
        assert first.headers["X-Total-Count"] == "5"
        assert first.headers["X-Total-Count-Exact"] == "true"
        rows = first.json()
        assert len(rows) == 2 and all(r["explanation"]["terms"] for r in rows)
        assert "«mendicité»" in rows[0]["snippet"]
        seen = [r["id"] for r in rows]
        link = first.headers["Link"]
        while link:
            url = link[1 : link.index(">")]
            following = web.get(url)
            seen += [r["id"] for r in following.json()]
            link = following.headers.get("Link", "")
        assert sorted(seen) == sorted(ids)

        html = web.get("/", params={"q": "mendicité", "limit": 2})
        assert "<mark>mendicité</mark>" in html.text and "<script>alert" not in html.text
        assert "5 documents match" in html.text and "after=" in html.text
        assert web.get("/", params={"q": "x", "after": "garbage"}).status_code == 200
        assert "not a cursor" in web.get("/", params={"q": "x", "after": "garbage"}).text


def test_sqlite_filtered_search_reads_the_index_once(tmp_path) -> None:
    """With a source filter, SQLite's planner could walk document's source index and run the
    FTS MATCH once per row (12 s at 10,000 documents): each lookup is a list built once (an
    uncorrelated IN; materialized first when sorted by date)."""
    from worker.storage.filters import DocumentFilter
    from worker.storage.search import candidate_statement

    engine = get_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    executed: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        executed.append((statement, parameters))

    cases = (
        ("trafficking", "relevance", (1.0, 10)),
        ("trafficking lang:en", "date", ("2025-01-01T00:00:00", 10)),
    )
    try:
        with session_scope(engine) as session:
            for query, sort, after in cases:
                stmt, params = candidate_statement(
                    session,
                    prepare(session, query).test,
                    DocumentFilter(sources=["unodc"]),
                    sort,  # type: ignore[arg-type]
                    after,  # type: ignore[arg-type]
                    21,
                )
                executed.clear()
                sa.event.listen(engine, "before_cursor_execute", capture)
                try:
                    session.execute(stmt, params).all()  # the SQL that runs, as it runs
                finally:
                    sa.event.remove(engine, "before_cursor_execute", capture)
                ((statement, parameters),) = executed
                rows = session.connection().exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters
                )
                plan = [r[-1] for r in rows]
                assert "document_fts MATCH" in statement
                assert not any("CORRELATED" in step for step in plan), plan
                if sort == "date":
                    assert any(step.startswith("MATERIALIZE") for step in plan), plan
                else:
                    assert any(step.startswith("LIST SUBQUERY") for step in plan), plan
    finally:
        dispose_engines()


def test_rare_and_common_words_page_newest_first(engine: sa.Engine) -> None:
    """PostgreSQL looks for the newest candidates among the newest 400 ids first: a common word
    is answered there, a rarer one (one match there, 30 older) from every match; both page
    through every match, newest first, once each."""
    docs = [html_doc("common" + (" rare" if n < 30 or n == 440 else ""), None) for n in range(450)]
    ids = store(engine, docs)
    for query, expected in (("rare", [*ids[:30], ids[440]]), ("common", ids)):
        seen, cursor = [], None
        with session_scope(engine) as session:
            while True:
                page = search(session, query, limit=4, cursor=cursor, count=False)
                seen += [h.document_id for h in page.hits]
                if (cursor := page.next_cursor) is None:
                    break
        assert len(seen) == len(set(seen)) == len(expected), query
        assert set(seen) == set(expected), query
        assert seen == sorted(expected, reverse=True), query  # no title hits: newest first


def test_postgresql_plain_search_reads_only_the_search_table(tmp_path) -> None:
    """On PostgreSQL a search whose query is one tsquery reads document_search alone (its rows
    are narrow, the title's lexemes in them): a join to document, or a sequential scan that
    reads every row's vector out of TOAST, is what made a search take 40 ms at 10,000."""
    import re

    from worker.storage.search import candidate_statement

    with database_for_test("postgresql", tmp_path) as url:
        engine = get_engine(url)
        store(engine, [html_doc("trafficking in persons", "Trafficking")])
        with session_scope(engine) as session:
            queries = (("trafficking NOT smuggling", 21), ('"in persons" OR pers*', None))
            for query, limit in queries:
                stmt, params = candidate_statement(
                    session, prepare(session, query).test, None, "relevance", None, limit
                )
                compiled = stmt.compile(session.get_bind())
                session.execute(sa.text("SET LOCAL enable_seqscan = off"))
                rows = session.connection().exec_driver_sql(
                    f"EXPLAIN {compiled}", {**compiled.params, **params}
                )
                plan = "\n".join(r[0] for r in rows)
                assert "document_search" in plan, plan
                assert not re.search(r" on document(?!_search)\b", plan), plan
                assert "Seq Scan" not in plan, plan


def test_ranked_candidates_resume_after_ties(engine: sa.Engine) -> None:
    """Candidates are read in batches, each resuming after the last score read: a score must
    reach Python exactly or a batch of tied scores ends the stream (PostgreSQL's ts_rank, a
    float4 read back rounded, once made a NEAR search find 14 of 68 matches)."""
    from worker.storage.search import iter_candidates

    far = "trafficking " + "word " * 10 + "victims"
    docs = [html_doc(far if n % 3 else "trafficking of victims", None) for n in range(120)]
    ids = store(engine, docs)
    with session_scope(engine) as session:
        prepared = prepare(session, "trafficking NEAR/3 victims")
        streamed = [c.id for c in iter_candidates(session, prepared.test, batch=50)]
        assert sorted(streamed) == sorted(ids)
        page = search(session, "trafficking NEAR/3 victims", limit=50)
        assert len(page.hits) == 40 and page.count == 40
