"""Concept tags as readers browse them: counts per tag (facets), a document's tags with their
names, and checking a tag typed on the command line. Shared by the CLI and the web page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from worker.storage.filters import DocumentFilter
from worker.storage.models import Document, DocumentTag
from worker.taxonomy import Taxonomy, load_taxonomy


def _describe(taxonomy: Taxonomy, tag: str) -> dict[str, Any]:
    concept = taxonomy.get(tag)
    return {
        "tag": tag,
        "label": concept.label if concept else tag,
        "kind": concept.kind if concept else None,
    }


def tag_counts(
    session: Session, filters: DocumentFilter | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """Every tag of the (filtered) archive with how many documents mention it and how many
    times in all, most documents first: the facets."""
    taxonomy = load_taxonomy()
    stmt: Any = (
        select(
            DocumentTag.tag,
            func.count(DocumentTag.document_id).label("documents"),
            func.sum(DocumentTag.count).label("mentions"),
        )
        .join(Document, Document.id == DocumentTag.document_id)
        .group_by(DocumentTag.tag)
    )
    stmt = (filters or DocumentFilter()).apply(stmt)
    rows = [
        {**_describe(taxonomy, tag), "documents": int(n), "mentions": int(m or 0)}
        for tag, n, m in session.execute(stmt).all()
    ]
    if kind is not None:
        rows = [r for r in rows if r["kind"] == kind]
    return sorted(rows, key=lambda r: (-r["documents"], -r["mentions"], r["tag"]))


def document_tags(document: Document) -> list[dict[str, Any]]:
    """A document's tags, most mentioned first, with their names and kinds."""
    taxonomy = load_taxonomy()
    rows = sorted(document.tags, key=lambda t: (-t.count, t.tag))
    return [{**_describe(taxonomy, t.tag), "count": t.count} for t in rows]


def check_tags(tags: Iterable[str], kind: str | None = None) -> list[str]:
    """The tags as ids of the taxonomy (case-folded); ValueError naming an unknown one, or one
    of another kind than ``kind`` (``--country`` takes countries only)."""
    taxonomy = load_taxonomy()
    out = []
    for raw in tags:
        tag = raw.strip().casefold()
        concept = taxonomy.get(tag)
        if concept is None:
            known = ", ".join(taxonomy.ids(kind)[:12])
            raise ValueError(f"unknown tag {raw!r} (known: {known}, …; see `archive tags`)")
        if kind is not None and concept.kind != kind:
            raise ValueError(f"{raw!r} is a {concept.kind}, not a {kind}")
        out.append(tag)
    return out
