"""The one extraction job: a pending document's archived bytes become its text, metadata and
alerts, exactly once, whether the poll runs it in-process or a worker runs it from the
``extract`` queue.

Every archived version starts ``pending``; :func:`extract_document` then claims it with a lease
(:func:`worker.storage.lease.claim`), so a PDF that kills or hangs its worker is retried a few
times and then archived with an error, never retried forever, and two workers never both
extract it. Only the attempt that turns the document from ``pending`` to ``done`` creates its
alerts. A version whose text repeats the previous one is folded into it (no version, no alert).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from config.settings import Settings
from worker.alerts.create import create_alerts
from worker.blobs import BlobMissing, open_blob_store
from worker.dates import as_utc
from worker.extract.enrich import apply_extraction, same_text
from worker.extract.formats import Extracted, extract_html
from worker.extract.isolate import extract_pdf_isolated
from worker.fetch import charset_of
from worker.publications import assign_publication, drop_if_empty
from worker.storage.db import session_scope
from worker.storage.lease import claim
from worker.storage.models import Document, DocumentLink, HttpResource
from worker.storage.repo import insert_missing

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def lease_seconds(settings: Settings) -> float:
    """How long an attempt may run before another may take the document over: the extract
    task's hard time limit, after which its worker is surely gone."""
    return settings.extract_timeout + 60


@dataclass
class ExtractionOutcome:
    """What one :func:`extract_document` call did.

    ``status``: ``extracted``; ``done`` (already extracted: a duplicate task); ``missing`` (no
    such document); ``busy`` (another attempt holds the lease: look again after ``retry_in``
    seconds); ``gave-up`` (archived with an error after too many crashed attempts);
    ``same-text`` (new bytes, the previous version's text: folded into that version).
    """

    document_id: int
    status: str
    alerts: int = 0
    error: str | None = None
    retry_in: float = 0.0
    publication_id: int | None = None  # where it was placed (or left, when folded)

    def as_dict(self) -> dict[str, object]:
        return {
            "document_id": self.document_id,
            "status": self.status,
            "alerts": self.alerts,
            "error": self.error,
        }


def extract_document(engine: Engine, settings: Settings, document_id: int) -> ExtractionOutcome:
    """Extract a pending document's text, then match it and create its alerts."""
    now = datetime.now(UTC)
    lease = lease_seconds(settings)
    with session_scope(engine) as session:
        claimed = claim(
            session,
            Document,
            Document.id == document_id,
            Document.extract_status == "pending",
            free=Document.extract_started_at.is_(None),
            since=Document.extract_started_at,
            lease=lease,
            now=now,
            values={"extract_attempts": Document.extract_attempts + 1},
        )
        document = session.get(Document, document_id)
        if document is None:
            return ExtractionOutcome(document_id, "missing")
        if document.extract_status != "pending":
            return ExtractionOutcome(document_id, "done")
        if not claimed:
            assert document.extract_started_at is not None
            held = (now - as_utc(document.extract_started_at)).total_seconds()
            return ExtractionOutcome(document_id, "busy", retry_in=lease - held + 1)
        attempts = document.extract_attempts
        kind, sha256 = document.kind, document.content_sha256
        charset = charset_of((document.http_headers or {}).get("content-type", ""))
        context = {"source": document.source, "url": document.url, "document_id": document_id}
    # Committed: if PDFium now kills or hangs this process, the attempt still counts.
    if attempts > MAX_ATTEMPTS:
        extracted = Extracted(
            error=f"extraction abandoned after {MAX_ATTEMPTS} attempts that crashed or hung"
        )
    else:
        extracted = _extract_blob(settings, kind, sha256, document.url, charset)
    folded = False
    alerts = 0
    with session_scope(engine) as session:
        won = session.execute(
            update(Document)
            .where(Document.id == document_id, Document.extract_status == "pending")
            .values(extract_status="done")
        )
        if not won.rowcount:  # type: ignore[attr-defined]
            return ExtractionOutcome(document_id, "done")  # another attempt finished first
        document = session.get(Document, document_id)
        assert document is not None
        previous = session.get(Document, document.previous_id) if document.previous_id else None
        publication_id = document.publication_id
        if previous is not None and same_text(previous.text_sha256, extracted):
            fold_into_previous(session, document, previous)
            folded = True
        else:
            apply_extraction(document, extracted, settings)
            # placed again: its text may name its issue
            publication_id = assign_publication(session, document, settings).id
            alerts = create_alerts(session, document, extracted.pages)
    if folded:
        log.info("document %s repeats its previous version: folded", document_id, extra=context)
        if kind == "pdf":
            _drop_unused_blob(engine, settings, sha256)
        return ExtractionOutcome(document_id, "same-text", publication_id=publication_id)
    status = "gave-up" if attempts > MAX_ATTEMPTS else "extracted"
    if extracted.error:
        log.warning("document %s: %s", document_id, extracted.error, extra=context)
    log.info("extracted document %s (%d alerts)", document_id, alerts, extra=context)
    return ExtractionOutcome(
        document_id, status, alerts, extracted.error, publication_id=publication_id
    )


def fold_into_previous(session: Session, document: Document, previous: Document) -> None:
    """Drop a pending version found to repeat ``previous``: its links become the previous
    version's, so the URL stays attached to the archived text. For a PDF the URL's validators
    now stand for the previous version's bytes (a later 304 is answered from them); an HTML
    page keeps its own (its links are parsed from the newest bytes)."""
    for link in document.links:
        insert_missing(
            session,
            DocumentLink,
            {
                "document_id": previous.id,
                "source": link.source,
                "url": link.url,
                "canonical_url": link.canonical_url,
                "found_on": link.found_on,
            },
            conflict=("document_id", "canonical_url", "found_on"),
        )
    if document.kind == "pdf":
        session.execute(
            update(HttpResource)
            .where(HttpResource.content_sha256 == document.content_sha256)
            .values(content_sha256=previous.content_sha256)
        )
    session.execute(
        update(Document).where(Document.previous_id == document.id).values(previous_id=previous.id)
    )
    session.execute(delete(DocumentLink).where(DocumentLink.document_id == document.id))
    session.execute(
        update(Document).where(Document.parent_id == document.id).values(parent_id=previous.id)
    )
    publication_id = document.publication_id
    session.expunge(document)
    session.execute(delete(Document).where(Document.id == document.id))
    if publication_id is not None:
        drop_if_empty(session, publication_id)


def _drop_unused_blob(engine: Engine, settings: Settings, sha256: str) -> None:
    """A re-rendered PDF's bytes, once folded, are referenced by nothing: keeping them would
    grow the archive by one copy per poll."""
    with session_scope(engine) as session:
        used = session.scalar(
            select(Document.id).where(Document.content_sha256 == sha256).limit(1)
        ) or session.scalar(
            select(HttpResource.canonical_url).where(HttpResource.content_sha256 == sha256).limit(1)
        )
    if used is None:
        open_blob_store(settings).delete(sha256)


def _extract_blob(
    settings: Settings, kind: str, sha256: str, url: str, charset: str | None
) -> Extracted:
    """The text of archived bytes: HTML here, a PDF in an isolated process (PDFium needs a
    file: a blob in an object store is copied to a temporary one)."""
    blobs = open_blob_store(settings)
    try:
        if kind != "pdf":
            return extract_html(blobs.read(sha256), url, charset)
        path = blobs.local_path(sha256)
        if path is not None and path.exists():
            return extract_pdf_isolated(path, settings.extract_timeout)
        with tempfile.TemporaryDirectory(prefix="tipwatch-extract-") as tmp:
            local = blobs.copy_to(sha256, Path(tmp) / f"{sha256}.pdf")
            return extract_pdf_isolated(local, settings.extract_timeout)
    except BlobMissing:
        return Extracted(error="the archived bytes are missing from the blob store")


def pending_extractions(
    engine: Engine, settings: Settings, now: datetime | None = None, idle: float = 0.0
) -> list[int]:
    """Pending documents no attempt holds (no lease, or an expired one) and archived at least
    ``idle`` seconds ago: those whose task was lost, for the sweeper to queue again."""
    now = now or datetime.now(UTC)
    lease_start = now - timedelta(seconds=lease_seconds(settings))
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Document.id)
                .where(
                    Document.extract_status == "pending",
                    Document.archived_at <= now - timedelta(seconds=idle),
                    or_(
                        Document.extract_started_at.is_(None),
                        Document.extract_started_at <= lease_start,
                    ),
                )
                .order_by(Document.id)
            )
        )


def extract_pending(engine: Engine, settings: Settings) -> list[ExtractionOutcome]:
    """Finish, in this process, every pending extraction no worker holds: what a one-shot
    ``tipwatch poll`` does for documents a Celery deployment left behind."""
    return [
        extract_document(engine, settings, document_id)
        for document_id in pending_extractions(engine, settings)
    ]
