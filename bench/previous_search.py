"""The archive search TIP Watch had before one text engine (issue 15), kept for ``bench search``
to measure the new engine against, side by side, in the same run and database.

It is the previous code with its own tables (``prev_document`` and, on SQLite, the FTS5 table
``prev_document_fts``; on PostgreSQL a generated ``english``/``french`` tsvector over unaccented
text): words AND-ed, "exact phrases" and prefix* only, matched by FTS5 or PostgreSQL's own
tokenizer and stemmers, snippets cut by a second implementation of the words. Bench-only code:
nothing in worker/ imports it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.text import (
    Span,
    all_stems,
    languages_for,
    nfc,
    stem,
    stem_table,
    term_words,
    word_spans,
    words,
)

_QUERY_PART = re.compile(r'"([^"]*)"|(\S+)')
_SPACES = re.compile(r"\s+")
_PG_CONFIGS = ("english", "french", "simple")
PG_VECTOR = (
    "to_tsvector(CASE language WHEN 'fr' THEN 'french'::regconfig WHEN 'en' THEN"
    " 'english'::regconfig ELSE 'simple'::regconfig END,"
    " tipwatch_unaccent(coalesce(title, '') || ' ' || text))"
)


def document_stems(title: str | None, text: str, language: str | None) -> str:
    folded = words(f"{title or ''}\n{text}")
    tables = [stem_table(folded, lang) for lang in languages_for(language)]
    joined = {word: " ".join(dict.fromkeys(table[word] for table in tables)) for word in tables[0]}
    return " ".join(joined[word] for word in folded)


def create_tables(conn: sa.Connection) -> None:
    """The previous engine's index, beside the current one."""
    if conn.dialect.name == "sqlite":
        conn.execute(
            sa.text(
                "CREATE TABLE prev_document (id INTEGER PRIMARY KEY, title TEXT, text TEXT,"
                " language TEXT, stems TEXT)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE VIRTUAL TABLE prev_document_fts USING fts5(title, text, stems,"
                " content='prev_document', content_rowid='id',"
                " tokenize='unicode61 remove_diacritics 2')"
            )
        )
    else:
        conn.execute(
            sa.text(
                "CREATE TABLE prev_document (id INTEGER PRIMARY KEY, title TEXT, text TEXT,"
                f" language TEXT, fts_vector tsvector GENERATED ALWAYS AS ({PG_VECTOR}) STORED)"
            )
        )


def fill(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Copy documents (id, title, text, language) into the previous engine's tables."""
    if conn.dialect.name == "sqlite":
        for row in rows:
            row["stems"] = document_stems(row["title"], row["text"], row["language"])
        conn.execute(
            sa.text(
                "INSERT INTO prev_document (id, title, text, language, stems)"
                " VALUES (:id, :title, :text, :language, :stems)"
            ),
            rows,
        )
    else:
        conn.execute(
            sa.text(
                "INSERT INTO prev_document (id, title, text, language)"
                " VALUES (:id, :title, :text, :language)"
            ),
            rows,
        )


def finish(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(sa.text("INSERT INTO prev_document_fts(prev_document_fts) VALUES ('rebuild')"))
    else:
        conn.execute(
            sa.text("CREATE INDEX prev_document_fts_idx ON prev_document USING gin (fts_vector)")
        )
        conn.execute(sa.text("ANALYZE prev_document"))


@dataclass(frozen=True)
class Term:
    kind: Literal["word", "phrase", "prefix"]
    words: tuple[str, ...]

    @property
    def stems(self) -> tuple[str, ...]:
        return all_stems(self.words[0])


def parse_terms(query: str) -> list[Term]:
    terms: list[Term] = []
    for phrase, bare in _QUERY_PART.findall(query):
        raw = phrase or bare
        folded = tuple(term_words(raw))
        if not folded:
            continue
        if phrase and len(folded) > 1:
            terms.append(Term("phrase", folded))
        elif len(folded) == 1 and raw.endswith("*"):
            terms.append(Term("prefix", folded))
        else:
            terms.extend(Term("word", (w,)) for w in folded)
    return list(dict.fromkeys(terms))


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def fts5_query(terms: list[Term]) -> str:
    parts = []
    for term in terms:
        if term.kind == "word":
            parts.append("stems:(" + " OR ".join(_quote(s) for s in term.stems) + ")")
        elif term.kind == "phrase":
            parts.append("{title text}:" + _quote(" ".join(term.words)))
        else:
            parts.append("{title text}:" + _quote(term.words[0]) + "*")
    return " AND ".join(parts)


def pg_tsquery(terms: list[Term]) -> tuple[str, dict[str, Any]]:
    parts, params = [], {}
    for index, term in enumerate(terms):
        name = f"t{index}"
        if term.kind == "prefix":
            params[name] = term.words[0] + ":*"
            parts.append(f"to_tsquery('simple', :{name})")
            continue
        params[name] = " ".join(term.words)
        function = "phraseto_tsquery" if term.kind == "phrase" else "plainto_tsquery"
        variants = [f"{function}('{c}', tipwatch_unaccent(:{name}))" for c in _PG_CONFIGS]
        parts.append("(" + " || ".join(variants) + ")")
    return " && ".join(parts), params


def ranked_ids(session: Session, terms: list[Term]) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        sql = sa.text(
            "SELECT rowid AS id, -bm25(prev_document_fts, 4.0, 1.0, 1.0) AS score"
            " FROM prev_document_fts WHERE prev_document_fts MATCH :match"
        ).bindparams(match=fts5_query(terms))
    else:
        tsquery, params = pg_tsquery(terms)
        sql = sa.text(
            f"SELECT id, ts_rank(fts_vector, q) AS score"
            f" FROM prev_document, (SELECT {tsquery} AS q) AS query WHERE fts_vector @@ q"
        ).bindparams(**params)
    return sql.columns(sa.column("id", sa.Integer), sa.column("score", sa.Float)).subquery("r")


def _matches(
    tokens: list[Span], terms: list[Term], language: str | None
) -> Iterator[tuple[int, int, int]]:
    languages = languages_for(language)
    folded = [word for word, _, _ in tokens]
    stem_cache: dict[str, set[str]] = {}

    def stems_of(i: int) -> set[str]:
        word = folded[i]
        if word not in stem_cache:
            stem_cache[word] = {stem(word, lang) for lang in languages}
        return stem_cache[word]

    for index, term in enumerate(terms):
        first = term.words[0]
        wanted = set(term.stems) if term.kind == "word" else set()
        for i, word in enumerate(folded):
            if term.kind == "prefix":
                if word.startswith(first):
                    yield i, i, index
            elif term.kind == "word":
                if word == first or stems_of(i) & wanted:
                    yield i, i, index
            elif word == first and tuple(folded[i : i + len(term.words)]) == term.words:
                yield i, i + len(term.words) - 1, index


def make_snippet(text: str, terms: Iterable[Term], language: str | None, width: int = 30) -> str:
    text = nfc(text)
    tokens = word_spans(text)
    term_list = list(terms)
    if not tokens:
        return ""
    found = sorted(_matches(tokens, term_list, language)) if term_list else []
    firsts = [f for f, _, _ in found]
    start, best = 0, 0
    for first in firsts:
        lo = max(0, first - width // 3)
        window = found[bisect_left(firsts, lo) : bisect_left(firsts, lo + width)]
        score = len({t for _, last, t in window if last < lo + width})
        if score > best:
            best, start = score, lo
            if best == len(term_list):
                break
    end = min(len(tokens), start + width)
    marked = [(f, last) for f, last, _ in found if start <= f < end]
    cursor = tokens[start][1]
    out = ["…"] if start > 0 else []
    for first, last in sorted(set(marked)):
        a, b = tokens[first][1], tokens[min(last, end - 1)][2]
        if a < cursor:
            continue
        out += [text[cursor:a], "«", text[a:b], "»"]
        cursor = b
    out.append(text[cursor : tokens[end - 1][2]])
    return _SPACES.sub(" ", "".join(out))


PREV = sa.table(
    "prev_document",
    sa.column("id", sa.Integer),
    sa.column("title", sa.Text),
    sa.column("text", sa.Text),
    sa.column("language", sa.Text),
)


def search(session: Session, query: str, limit: int = 20) -> list[tuple[int, str]]:
    """The previous ``search()``: (id, highlighted snippet) of the best ``limit`` documents."""
    terms = parse_terms(query)
    if not terms:
        return []
    ranked = ranked_ids(session, terms)
    stmt = (
        sa.select(PREV.c.id, PREV.c.title, PREV.c.text, PREV.c.language)
        .join(ranked, ranked.c.id == PREV.c.id)
        .order_by(ranked.c.score.desc(), PREV.c.id.desc())
        .limit(limit)
    )
    return [
        (doc_id, make_snippet(text or title or "", terms, language))
        for doc_id, title, text, language in session.execute(stmt)
    ]


def count(session: Session, query: str) -> int:
    """How many documents the previous engine finds for ``query``."""
    terms = parse_terms(query)
    if not terms:
        return 0
    ranked = ranked_ids(session, terms)
    return int(session.scalar(sa.select(sa.func.count()).select_from(ranked)) or 0)
