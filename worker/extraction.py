"""From archived bytes to searchable, matchable text: the extract → keywords → match step.

A poll run from the CLI extracts each document as it archives it. Under Celery, a poll only
archives a PDF's bytes and marks it ``pending``; :func:`extract_document` then runs on the
``extract`` queue, so CPU-heavy PDFs never hold up polls or alert delivery. Both paths fill a
document through the same :func:`apply_extraction` and :func:`create_alerts`.

A deferred extraction is idempotent and crash-safe: each attempt is recorded (with its start
time, a lease) before PDFium runs, so a PDF that kills or hangs its worker is retried a few
times and then archived with an error, never retried forever; only the attempt that turns the
document from ``pending`` to ``done`` creates its alerts.
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
from worker.alerting import match_document
from worker.archive import BlobMissing, open_blob_store
from worker.dates import as_utc, issue_number, parse_date
from worker.extract import Extracted
from worker.extract_pool import extract_pdf_isolated
from worker.keywords import extract_keywords
from worker.newsletter import series_of
from worker.storage.db import session_scope
from worker.storage.models import Alert, Document, DocumentLink, DocumentPage, Subscription
from worker.storage.repo import insert_missing

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def lease_seconds(settings: Settings) -> float:
    """How long an attempt may run before another may take the document over: the extract
    task's hard time limit, after which its worker is surely gone."""
    return settings.extract_timeout + 60


def choose_title(kind: str, link_title: str | None, extracted: Extracted) -> str | None:
    """An HTML page's own title wins; a PDF's metadata title only when it is not a file name
    (``Microsoft Word - lettre.docx``) — the linking page's title is better then."""
    if kind == "html":
        return extracted.title or link_title
    meta = extracted.title
    if meta and len(meta) > 8 and not meta.lower().endswith((".doc", ".docx", ".pdf", ".indd")):
        return meta
    return link_title or meta


def link_issue_number(title: str | None, url: str) -> int | None:
    """The issue number the link says: its title's, else its file name's."""
    return issue_number(title) or issue_number(url.rsplit("/", 1)[-1])


def same_text(previous_text_sha256: str | None, extracted: Extracted) -> bool:
    """True when new bytes say nothing new: the previous version's text, read without error.

    Identity of a version is its text, not its bytes: an article page whose furniture changes,
    or a PDF re-rendered on every request (a timestamp inside), must not become a new version
    and a new alert at every poll. A text-less new version alerts nobody either."""
    return (
        previous_text_sha256 is not None
        and extracted.error is None
        and previous_text_sha256 == extracted.text_sha256
    )


def fold_into_previous(session: Session, document: Document, previous: Document) -> None:
    """Drop a pending version found to repeat ``previous``: its links become the previous
    version's, so the URL stays attached to the archived text; its bytes stay in the blob
    store for a later 304 to be answered from."""
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
    session.execute(
        update(Document).where(Document.previous_id == document.id).values(previous_id=previous.id)
    )
    session.execute(delete(DocumentLink).where(DocumentLink.document_id == document.id))
    session.expunge(document)
    session.execute(delete(Document).where(Document.id == document.id))


def apply_extraction(document: Document, extracted: Extracted, settings: Settings) -> None:
    """Fill the fields that come from the text. The values the poll took from the linking
    page (title, date, language) are on the row already and serve as fallbacks."""
    first_page = extracted.pages[0][:600] if extracted.pages else ""
    document.title = choose_title(document.kind, document.title, extracted)
    document.language = extracted.language or document.language
    document.issue_number = link_issue_number(document.title, document.url) or (
        issue_number(first_page) if document.kind == "pdf" else None
    )
    document.published_at = document.published_at or parse_date(first_page)
    document.series = series_of(
        settings, document.issue_number, f"{document.title or ''} {document.url}"
    )
    document.text = extracted.text
    document.text_sha256 = extracted.text_sha256
    document.page_count = len(extracted.pages) if document.kind == "pdf" else 0
    document.extract_error = extracted.error
    document.keywords = extract_keywords(extracted.pages, document.language)
    document.pages = [
        DocumentPage(page_number=i, text=t) for i, t in enumerate(extracted.pages, start=1)
    ]
    document.extract_status = "done"


def create_alerts(session: Session, document: Document, pages: list[str]) -> int:
    """Queue one alert per matching subscription created before the document was archived.

    Every active subscription goes through one cached :class:`Matcher`, whose Aho-Corasick
    prefilter fully evaluates only those whose required terms occur in the document."""
    subscriptions = session.scalars(
        select(Subscription).where(
            Subscription.active.is_(True), Subscription.created_at <= document.archived_at
        )
    ).all()
    if not subscriptions:
        return 0
    matches = match_document(subscriptions, document, pages)
    created = 0
    for subscription_id, explanation in matches:
        exists = session.scalar(
            select(Alert.id).where(
                Alert.subscription_id == subscription_id, Alert.document_id == document.id
            )
        )
        if exists is None:
            session.add(
                Alert(
                    subscription_id=subscription_id,
                    document_id=document.id,
                    explanation=explanation,
                )
            )
            created += 1
    return created


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
        # Claim the attempt in one conditional UPDATE (as alert delivery claims an alert), so
        # two tasks for the same document never both extract it.
        claimed = session.execute(
            update(Document)
            .where(
                Document.id == document_id,
                Document.extract_status == "pending",
                or_(
                    Document.extract_started_at.is_(None),
                    Document.extract_started_at <= now - timedelta(seconds=lease),
                ),
            )
            .values(extract_attempts=Document.extract_attempts + 1, extract_started_at=now)
        )
        document = session.get(Document, document_id)
        if document is None:
            return ExtractionOutcome(document_id, "missing")
        if document.extract_status != "pending":
            return ExtractionOutcome(document_id, "done")
        if not claimed.rowcount:  # type: ignore[attr-defined]
            assert document.extract_started_at is not None
            held = (now - as_utc(document.extract_started_at)).total_seconds()
            return ExtractionOutcome(document_id, "busy", retry_in=lease - held + 1)
        attempts = document.extract_attempts
        sha256 = document.content_sha256
        context = {"source": document.source, "url": document.url, "document_id": document_id}
    # Committed: if PDFium now kills or hangs this process, the attempt still counts.
    if attempts > MAX_ATTEMPTS:
        extracted = Extracted(
            error=f"extraction abandoned after {MAX_ATTEMPTS} attempts that crashed or hung"
        )
    else:
        extracted = _extract_blob(settings, sha256)
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
        if previous is not None and same_text(previous.text_sha256, extracted):
            fold_into_previous(session, document, previous)
            log.info(
                "document %s repeats version %s: folded", document_id, previous.id, extra=context
            )
            return ExtractionOutcome(document_id, "same-text")
        apply_extraction(document, extracted, settings)
        alerts = create_alerts(session, document, extracted.pages)
    status = "gave-up" if attempts > MAX_ATTEMPTS else "extracted"
    if extracted.error:
        log.warning("document %s: %s", document_id, extracted.error, extra=context)
    log.info("extracted document %s (%d alerts)", document_id, alerts, extra=context)
    return ExtractionOutcome(document_id, status, alerts, extracted.error)


def _extract_blob(settings: Settings, sha256: str) -> Extracted:
    blobs = open_blob_store(settings)
    path = blobs.local_path(sha256)
    if path is not None and path.exists():
        return extract_pdf_isolated(path, settings.extract_timeout)
    try:  # an object store: PDFium needs a file
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
