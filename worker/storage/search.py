"""Full-text search: the one module with dialect-specific SQL (SQLite FTS5, PostgreSQL tsvector)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

_WORDS = re.compile(r"\w+\*?", re.UNICODE)


@dataclass
class SearchHit:
    document_id: int
    title: str | None
    snippet: str
    rank: float


def _fts5_query(query: str) -> str:
    """User words and "phrases" as an FTS5 query: every term required, syntax never injected."""
    parts = []
    for phrase, bare in re.findall(r'"([^"]*)"|(\S+)', query):
        words = _WORDS.findall(phrase or bare)
        if not words:
            continue
        if len(words) == 1 and words[0].endswith("*"):
            parts.append(f'"{words[0][:-1]}"*')
        else:
            parts.append('"' + " ".join(w.rstrip("*") for w in words) + '"')
    return " ".join(parts)


def search(session: Session, query: str, limit: int = 20) -> list[SearchHit]:
    """Documents matching every word of ``query``, best first, with a highlighted snippet."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        fts = _fts5_query(query)
        if not fts:
            return []
        rows = session.execute(
            text(
                "SELECT d.id, d.title, snippet(document_fts, 1, '«', '»', '…', 24),"
                " bm25(document_fts)"
                " FROM document_fts JOIN document d ON d.id = document_fts.rowid"
                " WHERE document_fts MATCH :q ORDER BY bm25(document_fts) LIMIT :n"
            ),
            {"q": fts, "n": limit},
        )
    else:
        vector = "to_tsvector('simple', tipwatch_unaccent(coalesce(d.title, '') || ' ' || d.text))"
        tsquery = "plainto_tsquery('simple', tipwatch_unaccent(:q))"
        rows = session.execute(
            text(
                "SELECT d.id, d.title,"
                f" ts_headline('simple', d.text, {tsquery},"
                "   'StartSel=«, StopSel=», MaxWords=30, MinWords=12'),"
                f" ts_rank({vector}, {tsquery})"
                f" FROM document d WHERE {vector} @@ {tsquery}"
                " ORDER BY 4 DESC LIMIT :n"
            ),
            {"q": query, "n": limit},
        )
    return [SearchHit(r[0], r[1], " ".join((r[2] or "").split()), float(r[3] or 0)) for r in rows]
