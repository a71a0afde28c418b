"""Archive fetched bytes once: the same bytes under another URL are an alias of their document,
new bytes at a known URL are its next version; every version starts ``pending`` for the
extraction job."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import Settings
from worker.blobs import BlobStore
from worker.extract.enrich import link_issue_number
from worker.extract.formats import sniff_kind
from worker.fetch import FetchError, FetchResult
from worker.newsletter import series_of
from worker.publications import assign_publication
from worker.storage.db import session_scope
from worker.storage.models import Document, DocumentLink
from worker.storage.repo import insert_missing
from worker.urls import canonical_url

log = logging.getLogger(__name__)

HEADERS_KEPT = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "date",
    "server",
    "content-disposition",
)


@dataclass(frozen=True)
class Found:
    """Where a URL was found and what the linking page said of it."""

    url: str
    found_on: str | None
    title: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    expect_pdf: bool = False  # linked as a document: anything but a PDF is refused
    parent_id: int | None = None  # the new page version it was linked from in this poll


@dataclass
class Archived:
    """What :meth:`Archiver.archive` did: a new ``pending`` version (``document_id``), or
    nothing new (``document_id`` None: these bytes are already archived, now under this URL
    too)."""

    document_id: int | None
    kind: str
    version: int = 0


class Archiver:
    """Archives one source's fetched bodies into the blob store and the database."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        settings: Settings,
        source: str,
        language: str | None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.settings = settings
        self.source = source
        self.language = language

    def archive(self, result: FetchResult, found: Found) -> Archived:
        """Archive a fetched body. Raises FetchError for a body that is not what the link
        promised (an HTML page or garbage where a PDF was linked)."""
        assert result.path is not None and result.sha256 is not None
        url = result.url
        key = canonical_url(url)
        with open(result.path, "rb") as handle:
            head = handle.read(2048)
        kind = sniff_kind(head, result.media_type, url)
        if found.expect_pdf and kind != "pdf":
            what = "an HTML page" if kind == "html" else f"{result.media_type or 'unknown'} data"
            raise FetchError(
                url,
                f"expected a PDF but the server sent {what} "
                f"(Content-Type: {result.media_type or 'none'})",
            )
        with session_scope(self.engine) as session:
            existing = session.scalar(
                select(Document).where(Document.content_sha256 == result.sha256)
            )
            if existing is not None:
                self._link(session, existing.id, url, key, found.found_on)
                return Archived(None, existing.kind)
            previous = session.scalar(
                select(Document)
                .where(Document.canonical_url == key)
                .order_by(Document.version.desc())
                .limit(1)
            )
            previous_id = previous.id if previous else None
            version = previous.version + 1 if previous else 1
        self.blobs.put_file(result.path, result.sha256)
        number = link_issue_number(found.title, url)  # what the link says; the text may add
        result.path = None
        document = Document(
            content_sha256=result.sha256,
            source=self.source,
            url=url,
            canonical_url=key,
            found_on=found.found_on,
            kind=kind,
            media_type=result.media_type or None,
            title=found.title,
            language=found.language or self.language,
            issue_number=number,
            series=series_of(self.settings, number, f"{found.title or ''} {url}"),
            published_at=found.published_at,
            fetched_at=result.fetched_at,
            size_bytes=result.size,
            http_headers={k: v for k, v in result.headers.items() if k.lower() in HEADERS_KEPT},
            text="",
            version=version,
            previous_id=previous_id,
            parent_id=found.parent_id,
            extract_status="pending",
        )
        try:
            with session_scope(self.engine) as session:
                session.add(document)
                session.flush()
                self._link(session, document.id, url, key, found.found_on)
                # Placed now from what its link says: a pending file of an issue holds the
                # issue's alert until it is read.
                assign_publication(session, document, self.settings)
        except IntegrityError:  # another worker archived the same bytes a moment ago
            with session_scope(self.engine) as session:
                existing = session.scalar(
                    select(Document).where(Document.content_sha256 == result.sha256)
                )
                if existing is None:
                    raise
                self._link(session, existing.id, url, key, found.found_on)
                return Archived(None, existing.kind)
        log.info(
            "archived %s as document %s",
            url,
            document.id,
            extra={"source": self.source, "url": url, "document_id": document.id},
        )
        return Archived(document.id, kind, version)

    def add_alias(self, found: Found) -> None:
        """A URL answered 304: make sure it is linked from where it was found this time."""
        key = canonical_url(found.url)
        with session_scope(self.engine) as session:
            document_id = session.scalar(
                select(Document.id)
                .where(Document.canonical_url == key)
                .order_by(Document.version.desc())
                .limit(1)
            )
            if document_id is not None:
                self._link(session, document_id, found.url, key, found.found_on)

    def _link(
        self, session: Session, document_id: int, url: str, key: str, found_on: str | None
    ) -> None:
        exists = session.scalar(
            select(DocumentLink.id).where(
                DocumentLink.document_id == document_id,
                DocumentLink.canonical_url == key,
                DocumentLink.found_on == found_on if found_on else DocumentLink.found_on.is_(None),
            )
        )
        if exists is None:  # another worker may add the same link meanwhile: no conflict error
            insert_missing(
                session,
                DocumentLink,
                {
                    "document_id": document_id,
                    "source": self.source,
                    "url": url,
                    "canonical_url": key,
                    "found_on": found_on,
                },
                conflict=("document_id", "canonical_url", "found_on"),
            )
