"""Archive search that answers exactly what a subscription would match, and says why.

A search is a subscription query (the whole language: words, phrases, prefixes, AND/OR/NOT,
NEAR, ``source:``/``lang:``/``kind:``/``tag:``, the thesaurus). The database index only
*narrows*: the
query is turned into a candidate test that every matching document passes
(:func:`candidates`), and the matcher (:mod:`worker.match`) *decides* each candidate, in rank
order, and explains it exactly as an alert would. Where the index can express the query
exactly (words, quoted words, prefixes, booleans, filters, and phrases on SQLite), the count
comes straight from it; otherwise the candidates are verified up to a budget.

Pages are keyset-paginated: a cursor names the last document shown (its score or date and
id), so a page costs the same wherever it is, and the matcher never re-reads earlier pages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from markupsafe import Markup
from sqlalchemy import case, null, select
from sqlalchemy.orm import Session

from worker.match import (
    DocumentMeta,
    IndexedText,
    compile_query,
    evaluate,
    explain_document,
    marked_html,
)
from worker.query import And, Field, Near, Node, Not, Or, QueryError, Term
from worker.storage import search as index
from worker.storage.filters import DocumentFilter
from worker.storage.models import Document, DocumentPage, DocumentTag
from worker.storage.textsearch import INDEX_VERSION, page_tokens
from worker.text import query_stems
from worker.thesaurus import load_thesaurus

__all__ = ["SearchHit", "SearchPage", "candidates", "iter_matches", "search"]

# Verifying a candidate costs a fraction of a millisecond: a count the index cannot give
# exactly is found by verifying at most this many candidates (beyond, it is an upper bound).
COUNT_BUDGET = 2_000
_BATCH = 25  # candidates read and verified at a time
SORTS = ("relevance", "date")


# -- from a query to its candidate test -------------------------------------------------------


def _tokens(term: Term, sqlite: bool) -> tuple[index.Tokens, bool]:
    """A term as index tokens, and whether the index finds exactly the term's matches."""
    if len(term.words) == 1:
        word = term.words[0]
        if term.prefix or term.exact:
            return index.Tokens("words", ((word,),), prefix=term.prefix), True
        return index.Tokens("stems", (tuple(sorted(query_stems(word))),)), True
    if term.exact or term.prefix:  # a quoted phrase; a prefix is of the folded last word
        tokens = index.Tokens(
            "words", tuple((w,) for w in term.words), prefix=term.prefix, adjacent=True
        )
        return tokens, sqlite
    # An unquoted term of several words ("main-d'œuvre", a thesaurus phrase): its words by
    # stem, one after the other; the index only checks that each occurs.
    positions = tuple(tuple(sorted(query_stems(w))) for w in term.words)
    return index.Tokens("stems", positions), False


def candidates(node: Node, sqlite: bool) -> tuple[index.Node, bool]:
    """The index's test for ``node``: passed by every document the matcher matches (and,
    when the second value is True, by no other)."""
    if isinstance(node, Term):
        return _tokens(node, sqlite)
    if isinstance(node, Near):  # both sides somewhere; the matcher checks the distance
        left, _ = _tokens(node.left, sqlite)
        right, _ = _tokens(node.right, sqlite)
        return index.All((left, right)), False
    if isinstance(node, Field):
        return index.FieldIs(node.name, node.value), True
    if isinstance(node, Not):
        child, exact = candidates(node.child, sqlite)
        # NOT of a superset is not a superset: without an exact test, anything may match.
        return (index.Without(child), True) if exact else (index.EVERYTHING, False)
    parts = [candidates(c, sqlite) for c in node.children]
    children = tuple(p for p, _ in parts)
    exact = all(e for _, e in parts)
    if isinstance(node, And):
        return index.All(children), exact
    assert isinstance(node, Or)
    return index.Any_(children), exact


def _with_filters(test: index.Node, filters: dict[str, Sequence[str]] | None) -> index.Node:
    """A subscription's stored filters ({"sources": [...], ...}) as part of the test."""
    parts = [test]
    for name, allowed in (filters or {}).items():
        if allowed:
            parts.append(index.Any_(tuple(index.FieldIs(name, str(v).casefold()) for v in allowed)))
    return test if len(parts) == 1 else index.All(tuple(parts))


# -- verifying candidates ---------------------------------------------------------------------


@dataclass
class SearchHit:
    """A matching document and why: the explanation an alert gives (terms, counts, pages,
    snippets with the matched words between « and »)."""

    document_id: int
    title: str | None
    score: float
    explanation: dict[str, Any]
    cursor: str = ""

    @property
    def snippets(self) -> list[str]:
        """The first snippet of each matched term."""
        return [t["snippets"][0]["text"] for t in self.explanation["terms"] if t["snippets"]]

    @property
    def snippet(self) -> str:
        return " … ".join(dict.fromkeys(self.snippets))

    @property
    def snippet_html(self) -> Markup:
        """The snippet for a web page: matched words highlighted, site text escaped."""
        return marked_html(self.snippet, keep_quotes=False)


@dataclass
class SearchPage:
    """One page of results, the number of matches, and the cursor of the next page."""

    hits: list[SearchHit]
    count: int
    count_exact: bool
    next_cursor: str | None
    query: str = ""
    sort: str = "relevance"
    extra: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (
    Document.id,
    Document.title,
    Document.language,
    Document.source,
    Document.kind,
    Document.fts_words,
    Document.fts_stems,
    Document.fts_title_words,
    Document.fts_title_stems,
    Document.fts_version,
)


# A row of _COLUMNS and the text: read like a Document (attribute names are its columns').
DocumentRow = Any


def _tags(session: Session, ids: Sequence[int]) -> dict[int, frozenset[str]]:
    """The concept tags of each document, in one query (``tag:`` filters read them)."""
    found: dict[int, set[str]] = {}
    rows = session.execute(
        select(DocumentTag.document_id, DocumentTag.tag).where(DocumentTag.document_id.in_(ids))
    )
    for document_id, tag in rows:
        found.setdefault(document_id, set()).add(tag)
    return {k: frozenset(v) for k, v in found.items()}


def _reads_tags(node: Node) -> bool:
    """Whether evaluating ``node`` looks at a document's tags (a ``tag:`` in the query)."""
    if isinstance(node, Field):
        return node.name == "tags"
    if isinstance(node, Not):
        return _reads_tags(node.child)
    if isinstance(node, And | Or):
        return any(_reads_tags(c) for c in node.children)
    return False


def _load(session: Session, ids: Sequence[int]) -> dict[int, tuple[DocumentRow, list[str]]]:
    """What the matcher reads of each document (plain rows: a page of results builds no ORM
    object) and its pages: page rows, else the whole text, which is only read then (a PDF's
    text repeats its pages). Two queries."""
    pages: dict[int, list[str]] = {}
    rows = session.execute(
        select(DocumentPage.document_id, DocumentPage.text)
        .where(DocumentPage.document_id.in_(ids))
        .order_by(DocumentPage.document_id, DocumentPage.page_number)
    )
    for document_id, text in rows:
        pages.setdefault(document_id, []).append(text)
    missing = [i for i in ids if i not in pages]
    whole = case((Document.id.in_(missing), Document.text)) if missing else null()
    documents = session.execute(
        select(*_COLUMNS, whole.label("text")).where(Document.id.in_(ids))
    ).all()
    return {d.id: (d, pages.get(d.id) or [d.text or ""]) for d in documents}


def text_index(document: DocumentRow, pages: list[str]) -> IndexedText:
    """The matcher's index of a document's text, from the tokens the search index stored (the
    same as building it from the text, only faster), or built when they are missing or stale."""
    current = document.fts_version == INDEX_VERSION
    return _stored(pages, document.fts_words, document.fts_stems, document.language, current)


def title_index(document: DocumentRow) -> IndexedText:
    """The same for its title (a subscription matches the title when the text does not)."""
    current = document.fts_version == INDEX_VERSION
    title_words, title_stems = document.fts_title_words, document.fts_title_stems
    return _stored([document.title or ""], title_words, title_stems, document.language, current)


def _stored(
    pages: list[str], words_text: str, stems_text: str, language: str | None, current: bool
) -> IndexedText:
    words, stems = page_tokens(words_text or "", stems_text or "")
    if (
        current
        and len(words) == len(pages)
        and all(len(w) == len(s) for w, s in zip(words, stems, strict=True))
    ):
        return IndexedText.from_tokens(pages, words, stems, language)
    return IndexedText.build(pages, language)


def meta_of(document: Document | DocumentRow, tags: frozenset[str] = frozenset()) -> DocumentMeta:
    """What filters read of a document (its tags, when the query reads them, from ``tags``)."""
    return DocumentMeta(document.source, document.language, document.kind, tags)


def _verify(
    session: Session, node: Node, batch: Sequence[index.Candidate], explain: bool
) -> Iterator[tuple[index.Candidate, DocumentRow, dict[str, Any] | None]]:
    """The candidates of ``batch`` that match, in order, with their explanation."""
    ids = [c.id for c in batch]
    loaded = _load(session, ids)
    tags = _tags(session, ids) if _reads_tags(node) else {}
    for candidate in batch:
        if candidate.id not in loaded:
            continue  # deleted meanwhile
        document, pages = loaded[candidate.id]
        text = text_index(document, pages)
        meta = meta_of(document, tags.get(document.id, frozenset()))
        if explain:
            explanation = explain_document(node, text, meta, partial(title_index, document))
            if explanation is not None:
                yield candidate, document, explanation
        elif (
            evaluate(node, text, meta) is not None
            or evaluate(node, title_index(document), meta) is not None
        ):
            yield candidate, document, None


def _batches(items: Iterable[index.Candidate], size: int) -> Iterator[list[index.Candidate]]:
    batch: list[index.Candidate] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- cursors ----------------------------------------------------------------------------------


def _cursor(sort: str, candidate: index.Candidate) -> str:
    key: float | str = candidate.score if sort == "relevance" else _iso(candidate.when)
    raw = json.dumps([sort, key, candidate.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when else "1970-01-01T00:00:00"


def parse_cursor(cursor: str, sort: str) -> tuple[float | str, int]:
    """The position a cursor names; ValueError for a cursor of another sort or not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, key, document_id = json.loads(raw)
        if kind != sort or not isinstance(document_id, int):
            raise ValueError
        if sort == "relevance":
            return float(key), document_id
        datetime.fromisoformat(key)
        return str(key), document_id
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a cursor of a {sort} search: {cursor[:40]!r}") from exc


# -- search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A query compiled once: the matcher's tree and the index's candidate test."""

    node: Node
    test: index.Node
    exact: bool


def prepare(
    session: Session,
    query: str,
    thesaurus: bool = False,
    query_filters: dict[str, Sequence[str]] | None = None,
) -> Prepared:
    """Parse (raising :class:`QueryError` with a pointer), expand and translate ``query``."""
    node = compile_query(query, load_thesaurus() if thesaurus else None)
    sqlite = session.get_bind().dialect.name == "sqlite"
    test, exact = candidates(node, sqlite)
    return Prepared(node, _with_filters(test, query_filters), exact)


def search(
    session: Session,
    query: str,
    *,
    filters: DocumentFilter | None = None,
    thesaurus: bool = False,
    limit: int = 20,
    cursor: str | None = None,
    sort: str = "relevance",
    count: bool = True,
) -> SearchPage:
    """One page of the documents ``query`` matches, best first (``sort="date"``: newest
    first), each with the explanation an alert would give, and how many match in all."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    prepared = prepare(session, query, thesaurus)
    after = parse_cursor(cursor, sort) if cursor else None
    hits: list[SearchHit] = []
    more = False
    # An exact test's candidates all match (no partially indexed document is a candidate of
    # everything): one more than a page says that more follow, unread.
    all_match = prepared.exact and not index.partial_candidates(session)
    first = limit + 1 if all_match else max(50, 2 * limit)
    stream = index.iter_candidates(session, prepared.test, filters, sort, after, first)  # type: ignore[arg-type]
    for batch in _batches(stream, min(_BATCH, first)):
        if all_match and len(hits) + len(batch) > limit:
            more, batch = True, batch[: limit - len(hits)]
        for candidate, document, explanation in _verify(session, prepared.node, batch, True):
            if len(hits) == limit:
                more = True
                break
            assert explanation is not None
            hit = SearchHit(document.id, document.title, candidate.score, explanation)
            hit.cursor = _cursor(sort, candidate)
            hits.append(hit)
        if more:
            break
    total, exact = (0, False) if not count else match_count(session, prepared, filters)
    return SearchPage(
        hits,
        total,
        exact,
        hits[-1].cursor if more and hits else None,
        query,
        sort,
    )


def match_count(
    session: Session, prepared: Prepared, filters: DocumentFilter | None = None
) -> tuple[int, bool]:
    """How many documents match, and whether that is exact (else an upper bound): the index's
    count when its test is exact, else its candidates verified up to :data:`COUNT_BUDGET`."""
    if prepared.exact and not index.partial_candidates(session):
        return index.count_candidates(session, prepared.test, filters), True
    stream = index.iter_candidates(session, prepared.test, filters, "date", batch=200)
    matched = seen = 0
    for batch in _batches(stream, 200):
        if seen + len(batch) > COUNT_BUDGET:
            remaining = index.count_candidates(session, prepared.test, filters) - seen
            return matched + remaining, False
        seen += len(batch)
        matched += sum(1 for _ in _verify(session, prepared.node, batch, False))
    return matched, True


def iter_matches(
    session: Session,
    query: str,
    *,
    thesaurus: bool = False,
    query_filters: dict[str, Sequence[str]] | None = None,
) -> Iterator[tuple[Document, dict[str, Any]]]:
    """Every archived document a subscription (its query, thesaurus option and stored
    filters) matches, newest first, with its explanation: what ``--backfill`` alerts on and
    ``subscriptions preview`` shows."""
    prepared = prepare(session, query, thesaurus, query_filters)
    stream = index.iter_candidates(session, prepared.test, None, "date")
    for batch in _batches(stream, _BATCH):
        found = [(row.id, e) for _, row, e in _verify(session, prepared.node, batch, True)]
        if not found:
            continue
        documents = session.scalars(
            select(Document).where(Document.id.in_([i for i, _ in found]))
        ).all()
        by_id = {d.id: d for d in documents}
        for document_id, explanation in found:
            assert explanation is not None
            if document_id in by_id:
                yield by_id[document_id], explanation


__all__ += ["QueryError", "marked_html", "match_count", "parse_cursor", "prepare"]
