"""The index side of archive search: the one module with dialect-specific SQL (SQLite FTS5,
PostgreSQL tsvector and GIN, in the narrow table ``document_search`` of migration 0014).

The index only narrows: it is asked for the *candidates* of a query written in a small boolean
language (:class:`Tokens`, :class:`All`, :class:`Any`, :class:`Without`, :class:`FieldIs`,
:data:`EVERYTHING`), which ``worker.search`` derives from a subscription query so that every
document the matcher would match is a candidate. The matcher then decides and explains. The
tokens are those of :mod:`worker.storage.textsearch`, so a candidate test is exact wherever the
index can express the query: a word by its stem, a quoted word, a prefix, a phrase on SQLite
(FTS5 phrases; a page break is a token, so no phrase runs across it), booleans and metadata
filters. Candidates come best first (on both databases: how many of the query's words the
title has, then the most recently archived) or newest first, from a keyset cursor, never an
offset.

Every token is passed as data: quoted for FTS5 (``"..."``, doubled quotes) and for tsquery
(``'...'``, doubled quotes and backslashes), inside a bound parameter; no query text becomes SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Double,
    Float,
    Integer,
    Row,
    Select,
    String,
    and_,
    cast,
    column,
    event,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    table,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session, SessionTransaction

from worker.storage.filters import DocumentFilter, has_tag
from worker.storage.models import Document
from worker.storage.textsearch import COLUMN_PREFIXES

Index = Literal["words", "stems"]
Target = Literal["text", "title"]
FtsTarget = Literal["text", "title", "either"]  # either: FTS5's column set, one lookup
Sort = Literal["relevance", "date"]


# -- the candidate language -------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """Positions of tokens in one index: each position is a set of alternatives (a query
    word's stems in every language), the last one a prefix when ``prefix``. ``adjacent``: the
    positions follow each other (a phrase); else each must occur anywhere."""

    index: Index
    positions: tuple[tuple[str, ...], ...]
    prefix: bool = False
    adjacent: bool = False


@dataclass(frozen=True)
class All:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Without:
    child: Node


@dataclass(frozen=True)
class FieldIs:
    """A metadata filter of the query language (``source:``, ``lang:``, ``kind:``, ``tag:``)."""

    name: str  # sources | languages | kinds | tags
    value: str


@dataclass(frozen=True)
class Everything:
    pass


EVERYTHING = Everything()
Node = Tokens | All | Any_ | Without | FieldIs | Everything
# The bare column, as the partial index ix_document_fts_partial's predicate is written: the
# planners of both databases use that index only for this very expression (``IS true`` or
# SQLite's ``= 1`` read the whole table, 8 ms per search at 10,000 documents).
PARTIAL = text("document.fts_partial")
# PostgreSQL's index (migration 0014): a narrow row per document, kept by a trigger.
SEARCH = table(
    "document_search",
    column("document_id", Integer),
    column("published", DateTime(timezone=True)),
    column("source", String),
    column("language", String),
    column("kind", String),
)
# SQLite's index (an FTS5 table whose rowid is the document's id)
FTS = table("document_fts", column("rowid", Integer))
FIELD_COLUMNS = {"sources": Document.source, "languages": Document.language, "kinds": Document.kind}


@dataclass(frozen=True)
class Candidate:
    """One candidate document, in the order asked for, with the key a cursor resumes after."""

    id: int
    score: float  # higher is better (relevance), 0 when sorted by date
    when: datetime | None  # publication date, else fetch date


def fts_phrase_supported(tokens: Tokens) -> bool:
    """Whether the index itself checks the adjacency of ``tokens`` (so a phrase is exact): on
    SQLite, a phrase of one alternative per position. PostgreSQL's positions stop at 16,383,
    so it only checks that each word occurs."""
    return all(len(p) == 1 for p in tokens.positions)


# -- SQLite FTS5 --------------------------------------------------------------------------------


def _fts_string(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts_column(index: Index, target: FtsTarget) -> str:
    if target == "either":
        return f"{{fts_{index} fts_title_{index}}}"
    return f"fts_{'title_' if target == 'title' else ''}{index}"


def _fts_either(node: Node) -> str | None:
    """``node`` in the text or the title as one FTS5 expression whose tokens each name both
    columns (``{fts_stems fts_title_stems} : ...``): each token's doclist is then read once,
    not once per column. Only tokens and ORs of them: "A and B in the text, or both in the
    title" is not "A in either and B in either"."""
    if isinstance(node, Tokens):
        return _fts_tokens(node, "either")
    if isinstance(node, Any_) and node.children:
        parts = [_fts_either(c) for c in node.children]
        return None if None in parts else "(" + " OR ".join(p for p in parts if p) + ")"
    return None


def _fts_tokens(node: Tokens, target: FtsTarget) -> str:
    column = _fts_column(node.index, target)
    last = len(node.positions) - 1
    if node.adjacent and fts_phrase_supported(node):
        phrase = " + ".join(_fts_string(p[0]) for p in node.positions)
        return f"{column} : ({phrase}{' *' if node.prefix else ''})"
    parts = []
    for k, alternatives in enumerate(node.positions):
        star = " *" if node.prefix and k == last else ""
        parts.append("(" + " OR ".join(_fts_string(a) + star for a in alternatives) + ")")
    return f"{column} : ({' AND '.join(parts)})"


def _fts_expression(node: Node, target: Target) -> str | None:
    """``node`` as one FTS5 expression, or None when it needs SQL (a metadata filter, a NOT
    without a positive sibling: FTS5's NOT is binary)."""
    if isinstance(node, Tokens):
        return _fts_tokens(node, target)
    if isinstance(node, Any_):
        parts = [_fts_expression(c, target) for c in node.children]
        return None if None in parts else "(" + " OR ".join(p for p in parts if p) + ")"
    if isinstance(node, All):
        positive = [c for c in node.children if not isinstance(c, Without)]
        negative = [c.child for c in node.children if isinstance(c, Without)]
        if not positive:
            return None
        pos = [_fts_expression(c, target) for c in positive]
        neg = [_fts_expression(c, target) for c in negative]
        if None in pos or None in neg:
            return None
        expression = "(" + " AND ".join(p for p in pos if p) + ")"
        for part in neg:
            expression = f"({expression} NOT {part})"
        return expression
    return None


# -- PostgreSQL tsquery -------------------------------------------------------------------------


def _ts_lexeme(prefix: str, token: str, star: bool) -> str:
    quoted = "'" + (prefix + token).replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + (":*" if star else "")


def _ts_tokens(node: Tokens, target: Target) -> str:
    prefix = COLUMN_PREFIXES[("title_" if target == "title" else "") + node.index]
    last = len(node.positions) - 1
    parts = []
    for k, alternatives in enumerate(node.positions):
        star = node.prefix and k == last
        parts.append("(" + " | ".join(_ts_lexeme(prefix, a, star) for a in alternatives) + ")")
    return "(" + " & ".join(parts) + ")"


def _ts_expression(node: Node, target: Target) -> str | None:
    """``node`` as one tsquery, or None when it needs SQL (a metadata filter, everything)."""
    if isinstance(node, Tokens):
        return _ts_tokens(node, target)
    if isinstance(node, Without):
        inner = _ts_expression(node.child, target)
        return None if inner is None else f"!{inner}"
    if isinstance(node, All | Any_):
        parts = [_ts_expression(c, target) for c in node.children]
        if None in parts:
            return None
        joiner = " & " if isinstance(node, All) else " | "
        return "(" + joiner.join(p for p in parts if p) + ")"
    return None


# -- SQL --------------------------------------------------------------------------------------


class _Compiler:
    """One query's SQL: each text-only subtree becomes one index lookup (an FTS5 MATCH or a
    tsquery), metadata filters plain comparisons, and booleans SQL booleans around them."""

    def __init__(self, session: Session) -> None:
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.params: dict[str, str] = {}
        self.partial = not self.sqlite and partial_candidates(session)

    def param(self, value: str) -> str:
        name = f"q{len(self.params)}"
        self.params[name] = value
        return name

    def index_expression(self, node: Node, target: Target) -> str | None:
        return _fts_expression(node, target) if self.sqlite else _ts_expression(node, target)

    def lookup(self, expression: str) -> ColumnElement[bool]:
        if self.sqlite:
            return Document.id.in_(_fts_ids(self, expression))
        name = self.param(expression)
        # a condition on the row of document_search joined to the document (or alone)
        return text(f"document_search.lexemes @@ CAST(:{name} AS tsquery)")  # type: ignore[return-value]

    def narrow(self, filters: DocumentFilter) -> bool:
        """Whether document_search alone answers (it holds the query language's fields): no
        filter reads the document's own columns, no partially indexed document is a
        candidate of everything."""
        return not (filters.conditions() or self.partial)

    def tsquery(self, node: Node) -> str | None:
        """``node`` in the text or the title as one tsquery (one GIN lookup: an OR of two
        would read every row's vector), or None when it needs SQL around lookups."""
        expressions = [_ts_expression(node, target) for target in ("text", "title")]
        return None if None in expressions else " | ".join(f"({e})" for e in expressions)

    def title_score(self, node: Node) -> ColumnElement[Any]:
        """How many of the query's words the title has: the title's lexemes are in the row."""
        hits: list[ColumnElement[Any]] = []
        for group in _title_groups(node, False):
            name = self.param(group)
            hits.append(cast(text(f"document_search.title @@ CAST(:{name} AS tsquery)"), Integer))
        return cast(sum(hits[1:], hits[0]) if hits else literal(0), Double)

    def condition(self, node: Node, target: Target) -> ColumnElement[bool]:
        expression = self.index_expression(node, target)
        if expression is not None:
            return self.lookup(expression)
        if isinstance(node, FieldIs):
            if self.sqlite:
                if node.name == "tags":
                    return has_tag(node.value)
                return func.lower(FIELD_COLUMNS[node.name]) == node.value
            if node.name == "tags":
                return has_tag(node.value, SEARCH.c.document_id)
            return func.lower(SEARCH.c[FIELD_COLUMNS[node.name].key]) == node.value
        if isinstance(node, Everything):
            return true()
        if isinstance(node, Without):
            return not_(self.condition(node.child, target))
        if isinstance(node, All):
            return and_(*(self.condition(c, target) for c in node.children))
        if isinstance(node, Any_):
            return or_(*(self.condition(c, target) for c in node.children))
        raise TypeError(node)

    def candidates(self, node: Node) -> ColumnElement[bool]:
        """Text or title: a subscription matches the title when its text does not match. A
        document whose index is partial (PostgreSQL's limits) is a candidate of everything."""
        if not self.sqlite and (query := self.tsquery(node)) is not None:
            either = self.lookup(query)
        else:
            either = or_(self.condition(node, "text"), self.condition(node, "title"))
        return or_(either, PARTIAL) if self.partial else either


def _positive_tokens(node: Node) -> list[Tokens]:
    """The tokens a match must contain some of (those under a NOT are not)."""
    if isinstance(node, Tokens):
        return [node]
    if isinstance(node, All | Any_):
        return [t for c in node.children for t in _positive_tokens(c)]
    return []


def _title_groups(node: Node, sqlite: bool) -> list[str]:
    """Each distinct positive token of ``node`` as a lookup in the title (a tsquery of its
    lexemes, an FTS5 expression of its columns), its words anywhere: the relevance score
    counts them, on both databases as PostgreSQL's position-less title lexemes allow."""
    tokens = dict.fromkeys(replace(t, adjacent=False) for t in _positive_tokens(node))
    return [_fts_tokens(t, "title") if sqlite else _ts_tokens(t, "title") for t in tokens]


def _fts_lookup(compiler: _Compiler, node: Node) -> tuple[str, bool]:
    """One FTS5 expression that every candidate of ``node`` matches (text or title), and
    whether it is exactly the candidates (the whole query is one FTS5 expression); else the
    positive tokens (any of them)."""
    whole = [compiler.index_expression(node, target) for target in ("text", "title")]
    exact = None not in whole
    if (either := _fts_either(node)) is not None:
        return either, exact
    if exact:
        return " OR ".join(f"({e})" for e in whole), exact
    positive = Any_(tuple(_positive_tokens(node)))
    return _fts_either(positive) or " OR ".join(
        f"({_fts_expression(positive, target)})" for target in ("text", "title")
    ), exact


def _ranked_postgresql(
    compiler: _Compiler, node: Node, filters: DocumentFilter, sort: Sort
) -> Select[Any]:
    """The candidates (id, score, when), scored by how many of the query's words their title
    has (ties: newest first, by id). PostgreSQL's index stores no word counts, and ts_rank
    would read every candidate's whole tsvector out of TOAST (20 ms for 3,000 candidates,
    where the lookup takes 3). Read from document_search alone when it answers
    (:meth:`_Compiler.narrow`), else joined to the document.

    MATERIALIZED: the planner, misjudging how many rows match a tsquery, otherwise walks the
    primary key backwards and tests every row's tsvector."""
    score = compiler.title_score(node) if sort == "relevance" else literal(0.0)
    stmt = _from_search(
        compiler,
        filters,
        select(
            SEARCH.c.document_id.label("id"), score.label("score"), SEARCH.c.published.label("when")
        ),
    )
    matches = stmt.where(compiler.candidates(node)).cte("matches").prefix_with("MATERIALIZED")
    return select(matches.c.id, matches.c.score, matches.c.when)


def _from_search(compiler: _Compiler, filters: DocumentFilter, stmt: Select[Any]) -> Select[Any]:
    """``stmt`` (of document_search's columns) read from document_search alone, or joined to
    the document and filtered when the filters need it."""
    stmt = stmt.select_from(SEARCH)
    if compiler.narrow(filters):
        return stmt
    return filters.apply(stmt.join(Document, Document.id == SEARCH.c.document_id))


# How far back, in document ids, the newest candidates are first looked for along the primary key
RECENT = 400


def _top_postgresql(
    compiler: _Compiler,
    node: Node,
    query: str,
    conditions: list[ColumnElement[bool]],
    filters: DocumentFilter,
    after: tuple[float | str, int] | None,
    limit: int,
) -> Select[Any]:
    """The first ``limit`` candidates of ``node`` in the order of :func:`_ranked_postgresql`
    (title hits, then newest), read so that only what is returned is scored (3,000 matches
    scored and sorted: 5 ms): those whose title has a word of the query (one GIN lookup of
    both: few rows), then the ``limit`` newest of the others. ``query`` is a tsquery every
    candidate matches (the whole query, or its positive words with ``conditions``, the
    candidate test, deciding); ``filters`` join the document when they read its columns.

    The newest are first looked for among the :data:`RECENT` newest ids, along the primary
    key: a common word has ``limit`` of them there (0.3 ms). Otherwise (fewer there: a rarer
    word) every match is read from the GIN bitmap and sorted (~1 µs a match), never the whole
    archive along the key, testing each row's vector out of TOAST (a word the planner has no
    statistics of, estimated at 1%, made it choose that: 30 ms at 10,000 documents)."""
    titled = " | ".join(f"({g})" for g in _title_groups(node, False))
    score = compiler.title_score(node)
    untitled = text(f"NOT document_search.title @@ CAST(:{compiler.param(titled)} AS tsquery)")
    document_id = SEARCH.c.document_id
    first: Select[Any] = select(
        document_id.label("id"), score.label("score"), SEARCH.c.published.label("when")
    )
    first = _from_search(compiler, filters, first)
    first = first.where(compiler.lookup(f"({query}) & ({titled})"), *conditions)
    rest: Select[Any] = select(
        document_id.label("id"), literal(0.0).label("score"), SEARCH.c.published
    )
    rest = _from_search(compiler, filters, rest).where(
        compiler.lookup(query), untitled, *conditions
    )
    newest: Any = select(func.max(SEARCH.c.document_id)).scalar_subquery()
    if after is not None:
        last_score, last_id = float(after[0]), after[1]
        first = first.where(_after(score, document_id, last_score, last_id))
        if last_score <= 0:  # past the title hits
            rest = rest.where(document_id < last_id)
            newest = literal(last_id - 1)
    first = first.order_by(score.desc(), document_id.desc()).limit(limit)
    recent = (
        rest.where(document_id > newest - RECENT)
        .order_by(document_id.desc())
        .limit(limit)
        .cte("recent")
    )
    found = select(func.count()).select_from(recent).scalar_subquery()
    # "+ 0": not the key's order, so the planner reads the bitmap (see above)
    everywhere = rest.where(found < limit).order_by((document_id + 0).desc()).limit(limit)
    both = union_all(first, select(recent).where(found >= limit), everywhere).subquery("ranked")
    return select(both.c.id, both.c.score, both.c.when).order_by(
        both.c.score.desc(), both.c.id.desc()
    )


def _fts_match(compiler: _Compiler, expression: str) -> ColumnElement[bool]:
    """The rows of document_fts matching an FTS5 expression (passed as a parameter)."""
    return text(f"document_fts MATCH :{compiler.param(expression)}")  # type: ignore[return-value]


def _fts_ids(compiler: _Compiler, expression: str) -> Select[Any]:
    """The rowids matching an FTS5 expression (listed once per statement where used by IN)."""
    return select(FTS.c.rowid).where(_fts_match(compiler, expression)).correlate(None)


def _after(key: Any, document_id: Any, last_key: Any, last_id: int) -> ColumnElement[bool]:
    """The rows that come after a cursor's (key, id) in descending order: a keyset page."""
    return or_(key < last_key, and_(key == last_key, document_id < last_id))


def _top_sqlite(
    compiler: _Compiler,
    node: Node,
    expression: str,
    conditions: list[ColumnElement[bool]],
    after: tuple[float | str, int] | None,
    limit: int | None,
) -> Select[Any]:
    """The first ``limit`` candidates (None: all) in the order of :func:`_ranked_postgresql`,
    in two reads that score only what they return: the matches of ``expression``
    (:func:`_fts_lookup`) whose title has a word of the query, then the newest others.

    Without ``conditions`` (the candidate test and filters, on the document's row) both are
    read from FTS5 alone, which reads its doclists from the highest rowid and stops after
    ``limit`` (0.1–1 ms, where scoring every match and sorting them costs 3). With them, each
    lookup is a list of ids built once, and the document's rows are read newest first against
    it. bm25 (SQLite's ranking before) was computed for every match: ~0.8 µs each, 6 ms of a
    search for a word in 7,000 of 10,000 documents."""
    groups = _title_groups(node, True)
    titled = " OR ".join(f"({g})" for g in groups)
    key: Any = Document.id if conditions else FTS.c.rowid
    when = _when() if conditions else null()

    def matching(expression: str) -> ColumnElement[bool]:
        if conditions:
            return key.in_(_fts_ids(compiler, expression))
        return _fts_match(compiler, expression)

    # one word: every title hit has it (no second lookup); else count them per title hit
    hits = [cast(key.in_(_fts_ids(compiler, g)), Integer) for g in groups if len(groups) > 1]
    score = cast(sum(hits[1:], hits[0]), Float) if hits else literal(1.0)
    scored = score.label("score")
    first = select(key.label("id"), scored, when.label("when"))
    first = first.where(matching(f"({expression}) AND ({titled})"), *conditions)
    rest = select(key.label("id"), literal(0.0).label("score"), when.label("when"))
    rest = rest.where(matching(f"({expression}) NOT ({titled})"), *conditions)
    titles_left = True
    if after is not None:
        last_score, last_id = float(after[0]), after[1]
        first = first.where(_after(score, key, last_score, last_id))
        if last_score <= 0:  # past the title hits
            titles_left, rest = False, rest.where(key < last_id)
    if not conditions:
        first, rest = first.select_from(FTS), rest.select_from(FTS)
    reads = [rest.order_by(key.desc()).limit(limit)]
    if titles_left:
        reads.insert(0, first.order_by(scored.desc(), key.desc()).limit(limit))
    both = union_all(*(select(r.subquery()) for r in reads)).subquery("ranked")
    return select(both.c.id, both.c.score, both.c.when).order_by(
        both.c.score.desc(), both.c.id.desc()
    )


def _when() -> ColumnElement[Any]:
    return func.coalesce(Document.published_at, Document.fetched_at)


def candidate_statement(
    session: Session,
    node: Node,
    filters: DocumentFilter | None,
    sort: Sort,
    after: tuple[float | str, int] | None,
    limit: int | None = None,
) -> tuple[Select[Any], dict[str, str]]:
    """The candidates of ``node`` that pass ``filters``, in ``sort`` order, after a cursor;
    the caller reads at most ``limit`` of them (None: it says nothing). A relevance score
    (how many of the query's words the title has) depends on that document alone, so the
    score a cursor carries is the document's score now."""
    compiler = _Compiler(session)
    when = _when()
    wanted = filters or DocumentFilter()
    if not compiler.sqlite and sort == "relevance" and limit is not None and not compiler.partial:
        conditions = []
        if (query := compiler.tsquery(node)) is None:  # a field: SQL around the lookups
            query = compiler.tsquery(Any_(tuple(_positive_tokens(node))))
            conditions = [compiler.candidates(node)]
        if query is not None:
            stmt = _top_postgresql(compiler, node, query, conditions, wanted, after, limit)
            return stmt, compiler.params
    if compiler.sqlite:
        expression, whole = _fts_lookup(compiler, node)
        conditions = [*([] if whole else [compiler.candidates(node)]), *wanted.conditions()]
        if sort == "relevance":
            return _top_sqlite(
                compiler, node, expression, conditions, after, limit
            ), compiler.params
        # MATERIALIZED: the lookup runs once, before the join. Otherwise SQLite's planner may
        # walk an index of document (a filter on source) and run the MATCH once per row.
        fts = _fts_ids(compiler, expression).cte("fts").prefix_with("MATERIALIZED")
        stmt = select(Document.id, literal(0.0).label("score"), when.label("when"))
        stmt = stmt.join(fts, fts.c.rowid == Document.id).where(*conditions)
    else:
        stmt = _ranked_postgresql(compiler, node, wanted, sort)
    inner = stmt.subquery("ranked")
    ranked = select(inner.c.id, inner.c.score, inner.c.when)
    if sort == "relevance":
        if after is not None:
            ranked = ranked.where(_after(inner.c.score, inner.c.id, float(after[0]), after[1]))
        return ranked.order_by(inner.c.score.desc(), inner.c.id.desc()), compiler.params
    if after is not None:
        last_when = datetime.fromisoformat(str(after[0]))
        ranked = ranked.where(_after(inner.c.when, inner.c.id, last_when, after[1]))
    return ranked.order_by(inner.c.when.desc(), inner.c.id.desc()), compiler.params


def iter_candidates(
    session: Session,
    node: Node,
    filters: DocumentFilter | None = None,
    sort: Sort = "relevance",
    after: tuple[float | str, int] | None = None,
    batch: int = 50,
) -> Iterator[Candidate]:
    """Every candidate in order, read ``batch`` at a time, each batch one query that resumes
    after the last candidate read (ranking all candidates is the index's work; reading them
    all is not): a caller that stops once its page is full never pays for the rest."""
    while True:
        stmt, params = candidate_statement(session, node, filters, sort, after, batch)
        rows = _rows(session, stmt.limit(batch), params)
        for row in rows:
            yield Candidate(int(row.id), float(row.score or 0.0), row.when)
        if len(rows) < batch:
            return
        last = rows[-1]
        after = (
            (float(last.score or 0.0), last.id)
            if sort == "relevance"
            else (_key(last.when), last.id)
        )
        batch = min(batch * 2, 1000)


def _key(when: datetime | None) -> str:
    return (when or datetime(1970, 1, 1)).isoformat()


def count_candidates(session: Session, node: Node, filters: DocumentFilter | None = None) -> int:
    """How many documents are candidates of ``node`` and pass ``filters``."""
    compiler = _Compiler(session)
    wanted = filters or DocumentFilter()
    if compiler.sqlite:
        stmt = wanted.apply(select(func.count()).select_from(Document))
    else:
        stmt = _from_search(compiler, wanted, select(func.count()))
    stmt = stmt.where(compiler.candidates(node))
    return int(_rows(session, stmt, compiler.params)[0][0] or 0)


def _rows(session: Session, stmt: Select[Any], params: dict[str, str]) -> Sequence[Row[Any]]:
    """Run a candidate statement. On PostgreSQL, with its GIN index: the planner does not
    count the cost of reading each row's TOASTed tsvector, so for a common word it prefers
    a sequential scan that reads them all (10x slower at 10,000 documents)."""
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(stmt, params).all()
    session.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        return session.execute(stmt, params).all()
    finally:
        session.execute(text("SET LOCAL enable_seqscan TO DEFAULT"))


# Per transaction: one search builds several statements, and a web page runs a search and
# its count; a document archived meanwhile is seen by the next transaction.
_PARTIAL: WeakKeyDictionary[SessionTransaction, bool] = WeakKeyDictionary()


@event.listens_for(Session, "after_flush")
def _forget_partial(session: Session, _context: Any) -> None:
    """A flush may have written a partially indexed document: ask again."""
    transaction = session.get_transaction()
    if transaction is not None:
        _PARTIAL.pop(transaction, None)


def partial_candidates(session: Session) -> bool:
    """Whether some document's index is partial (every search must then verify them)."""
    transaction = session.get_transaction()
    if transaction is not None and transaction in _PARTIAL:
        return _PARTIAL[transaction]
    found = session.scalar(select(Document.id).where(PARTIAL).limit(1)) is not None
    if transaction is not None:
        _PARTIAL[transaction] = found
    return found


__all__ = [
    "EVERYTHING",
    "All",
    "Any_",
    "Candidate",
    "FieldIs",
    "Node",
    "Tokens",
    "Without",
    "count_candidates",
    "fts_phrase_supported",
    "has_tag",
    "iter_candidates",
]
