"""Filters shared by listing, search, export and the web UI: one definition, both dialects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from worker.storage.models import Document, DocumentTag


def has_tag(tag: str, document_id: ColumnElement[int] | None = None) -> ColumnElement[bool]:
    """The document (whose id is ``document_id``, by default ``document.id``) mentions the
    taxonomy concept ``tag`` (an EXISTS on its tag index)."""
    row = aliased(DocumentTag)  # a query of tags (the facets) may filter by tag too
    outer = Document.id if document_id is None else document_id
    return (
        select(row.document_id)
        .where(row.document_id == outer, row.tag == tag)
        .correlate_except(row)
        .exists()
    )


@dataclass
class DocumentFilter:
    """Which documents a listing shows. Dates are on the publication date, or the fetch date
    when the publisher gave none, so undated documents are not silently left out."""

    sources: list[str] = field(default_factory=list)
    language: str | None = None
    kind: str | None = None
    issue: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive
    publication: int | None = None
    tags: list[str] = field(default_factory=list)  # every one of these concepts (AND)

    def conditions(self) -> list[ColumnElement[bool]]:
        when = func.coalesce(Document.published_at, Document.fetched_at)
        conditions: list[ColumnElement[bool]] = []
        if self.sources:
            conditions.append(Document.source.in_(self.sources))
        if self.language:
            conditions.append(Document.language == self.language)
        if self.kind:
            conditions.append(Document.kind == self.kind)
        if self.issue is not None:
            conditions.append(Document.issue_number == self.issue)
        if self.publication is not None:
            conditions.append(Document.publication_id == self.publication)
        conditions.extend(has_tag(tag) for tag in self.tags)
        if self.since:
            conditions.append(when >= datetime.combine(self.since, time.min, UTC))
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time.min, UTC)
            conditions.append(when < end)
        return conditions

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.where(*self.conditions())

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.sources,
            "language": self.language,
            "kind": self.kind,
            "issue": self.issue,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "publication": self.publication,
            "tag": self.tags,
        }


def _newest_first(stmt: Select[Any]) -> Select[Any]:
    return stmt.order_by(Document.archived_at.desc(), Document.id.desc())


def list_filtered(
    session: Session, filters: DocumentFilter | None = None, limit: int = 50, offset: int = 0
) -> list[Document]:
    """Newest archived first."""
    stmt = _newest_first((filters or DocumentFilter()).apply(select(Document)))
    return list(session.scalars(stmt.limit(limit).offset(offset)))


def iter_filtered(
    session: Session, filters: DocumentFilter | None = None, batch: int = 100
) -> Iterator[Document]:
    """Every matching document, loaded ``batch`` at a time so an export never holds them all."""
    stmt = _newest_first((filters or DocumentFilter()).apply(select(Document)))
    result = session.scalars(stmt.execution_options(yield_per=batch))
    yield from result
