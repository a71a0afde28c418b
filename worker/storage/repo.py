"""Queries the CLI, the web UI and the tasks share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from worker.storage.models import (
    Alert,
    AlertDocument,
    Base,
    Document,
    SourceState,
    Subscription,
)


class NotFound(LookupError):
    """No row by that name or id."""


def upsert(
    session: Session, model: type[Base], key: dict[str, Any], values: dict[str, Any]
) -> None:
    """Insert a row or update it in one statement, safe when two workers race on the same key."""
    row = {**key, **values}
    if session.get_bind().dialect.name == "postgresql":
        pg = pg_insert(model).values(**row)
        session.execute(pg.on_conflict_do_update(index_elements=list(key), set_=values))
    else:
        lite = sqlite_insert(model).values(**row)
        session.execute(lite.on_conflict_do_update(index_elements=list(key), set_=values))


def insert_missing(
    session: Session, model: type[Base], row: dict[str, Any], conflict: tuple[str, ...]
) -> bool:
    """Insert ``row`` unless a row with the same ``conflict`` key exists (race-free). True
    when this call inserted it."""
    if session.get_bind().dialect.name == "postgresql":
        pg = pg_insert(model).values(**row)
        result = session.execute(pg.on_conflict_do_nothing(index_elements=list(conflict)))
    else:
        lite = sqlite_insert(model).values(**row)
        result = session.execute(lite.on_conflict_do_nothing(index_elements=list(conflict)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def document_summary(d: Document) -> dict[str, Any]:
    """A document's metadata as JSON-ready values (CLI ``--json`` and the web API alike)."""
    return {
        "id": d.id,
        "source": d.source,
        "kind": d.kind,
        "title": d.title,
        "issue_number": d.issue_number,
        "language": d.language,
        "published_at": d.published_at.isoformat() if d.published_at else None,
        "archived_at": d.archived_at.isoformat() if d.archived_at else None,
        "url": d.url,
        "canonical_url": d.canonical_url,
        "size_bytes": d.size_bytes,
        "content_sha256": d.content_sha256,
        "pages": d.page_count,
        "version": d.version,
        "previous_id": d.previous_id,
        "series": d.series,
        "publication_id": d.publication_id,
        "extract_status": d.extract_status,
        "extract_error": d.extract_error,
    }


def get_document(session: Session, document_id: int) -> Document:
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"no document with id {document_id}")
    return document


def source_states(session: Session) -> dict[str, SourceState]:
    return {s.name: s for s in session.scalars(select(SourceState))}


def document_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Document.source, func.count()).group_by(Document.source))
    return {name: count for name, count in rows}


def get_subscription(session: Session, name: str) -> Subscription:
    subscription = session.scalar(select(Subscription).where(Subscription.name == name))
    if subscription is None:
        raise NotFound(f"no subscription named {name!r}")
    return subscription


def alerts_for_document(session: Session, document_id: int) -> list[AlertDocument]:
    """Every alert the document is part of, with why it matched (one per subscription)."""
    return list(
        session.scalars(
            select(AlertDocument)
            .where(AlertDocument.document_id == document_id)
            .order_by(AlertDocument.id)
        )
    )


def list_alerts(session: Session, *, status: str | None = None, limit: int = 50) -> list[Alert]:
    """The outbox, newest first."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status:
        query = query.where(Alert.status == status)
    return list(session.scalars(query))
