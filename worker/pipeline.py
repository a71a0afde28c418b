"""The poll cycle of one source: fetch → discover → archive → extract → match → (queue) notify.

Everything here is a plain function over an engine and settings; the CLI calls it in-process
and the Celery tasks call the very same functions. A failure is recorded against the URL that
caused it and the cycle goes on: one bad page or PDF never hides the others.

Given ``defer_extraction``, a new PDF is archived ``pending`` and handed to that callback
(Celery's ``extract`` queue) instead of being extracted here: see :mod:`worker.extraction`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from config.settings import Settings, SourceConfig
from worker.archive import open_blob_store
from worker.dates import issue_number
from worker.discover import Link, Page, SourceKind, kind_for
from worker.extract import Extracted, extract_html, sniff_kind
from worker.extract_pool import extract_pdf_isolated
from worker.extraction import apply_extraction, create_alerts, link_issue_number, same_text
from worker.fetch import Fetcher, FetchError, FetchRecord, FetchResult, HostPacer, clean_spool
from worker.ratelimit import make_pacer
from worker.storage.db import session_scope
from worker.storage.models import Document, DocumentLink, FetchLog, HttpResource, SourceState
from worker.storage.repo import insert_missing, upsert
from worker.urls import canonical_url, is_allowed, netloc

log = logging.getLogger(__name__)

# After this many timeouts in a row, a host is left alone for the rest of the poll: a site
# that trickles every response would otherwise cost one download deadline per URL.
MAX_TIMEOUTS_IN_A_ROW = 3

Progress = Callable[[str, str], None]  # (event, url)
DeferExtraction = Callable[[int], None]  # queue a pending document's extraction


class SourceFailed(Exception):
    """No entry page of a source could be read: the whole poll failed."""


@dataclass
class SourceReport:
    source: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    alerts: int = 0
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    document_ids: list[int] = field(default_factory=list)
    deferred: int = 0  # documents handed to the extract queue (their alerts come later)
    skipped: int = 0  # URLs left for the next poll: a budget or the deadline ran out
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "partial" if self.failed else "ok"

    def fail(self, url: str, reason: str) -> None:
        self.failed += 1
        self.failures.append(f"{url}: {reason}")

    def skip(self, count: int, reason: str) -> None:
        """``count`` URLs were not requested this poll, for ``reason`` (said once)."""
        self.skipped += count
        self.warnings.append(reason)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "status": self.status,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "alerts": self.alerts,
            "error": self.error,
            "failures": self.failures,
            "document_ids": self.document_ids,
            "deferred": self.deferred,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


@dataclass
class _Target:
    link: Link
    depth: int
    found_on: str | None
    item_title: str | None = None  # the title of the item (article, feed entry) linking it


def _offer(documents: dict[str, _Target], key: str, candidate: _Target) -> None:
    """Keep one target per document, preferring the item of the document's own issue.

    The same newsletter PDF is often attached to other articles (a round table that cites
    it); its date and title must come from the issue's own article, not from those.
    """
    current = documents.get(key)
    if current is None or (_own_issue(candidate) and not _own_issue(current)):
        documents[key] = candidate


def _own_issue(target: _Target) -> bool:
    number = issue_number(target.link.url.rsplit("/", 1)[-1]) or issue_number(target.link.title)
    return number is not None and issue_number(target.item_title) == number


class SourcePoll:
    """One poll of one source. Use :func:`poll_source`."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        source: SourceConfig,
        progress: Progress | None = None,
        pacer: HostPacer | None = None,
        defer_extraction: DeferExtraction | None = None,
    ) -> None:
        self.engine = engine
        self.defer_extraction = defer_extraction
        self.settings = settings
        self.source = source
        self.kind: SourceKind = kind_for(source.kind, source.options)
        self.blobs = open_blob_store(settings)
        self.report = SourceReport(source.name)
        self.progress = progress or (lambda event, url: None)
        self.records: list[FetchRecord] = []
        self.spool = spool = settings.resolved_archive_dir / ".spool"
        self.fetcher = Fetcher(
            allowed_netlocs=source.allowed_netlocs,
            user_agent=settings.user_agent,
            timeout=settings.http_timeout,
            max_bytes=settings.max_download_bytes,
            deadline=settings.download_deadline,
            pacer=pacer or make_pacer(settings, default_url=settings.broker_url),
            spool_dir=spool,
            on_request=self.records.append,
        )
        self.ends_at = time.monotonic() + settings.poll_deadline
        self.timeouts: Counter[str] = Counter()  # host -> timeouts in a row

    # -- the cycle --------------------------------------------------------------------------

    def run(self) -> SourceReport:
        started = datetime.now(UTC)
        self._save_state(started=started)
        try:
            self._prepare_spool()
            items, documents = self._discover()
            self._each("items", items.values(), lambda t: self._process_item(t, documents))
            self._each("documents", self._within_budget(documents), self._process_document)
        except SourceFailed as exc:
            self.report.error = str(exc)
        except OperationalError:
            raise  # the database is unavailable: the task is retried, nothing is recorded
        except Exception as exc:  # a bug must show as a failed poll, not as a silent "ok"
            log.exception(
                "poll of %s crashed", self.source.name, extra={"source": self.source.name}
            )
            self.report.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self.fetcher.close()
        self._flush_log()
        self._save_state(finished=datetime.now(UTC))
        return self.report

    def _prepare_spool(self) -> None:
        """The folder downloads stream to, cleared of the bodies a killed process left (no
        download or extraction lives an hour). An unusable archive fails the poll plainly."""
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceFailed(
                f"archive directory {self.spool.parent} is not usable: {exc.strerror or exc}"
            ) from exc
        settings = self.settings
        clean_spool(self.spool, max(3600.0, settings.download_deadline + settings.extract_timeout))

    def _each(
        self, what: str, targets: Iterable[_Target], process: Callable[[_Target], None]
    ) -> None:
        """Process targets until the poll's deadline; skip the hosts that keep timing out."""
        pending = list(targets)
        slow: Counter[str] = Counter()
        for index, target in enumerate(pending):
            if time.monotonic() > self.ends_at:
                self.report.skip(
                    len(pending) - index,
                    f"poll deadline reached ({self.settings.poll_deadline:g} s,"
                    f" TIPWATCH_POLL_DEADLINE): {len(pending) - index} {what}"
                    " left for the next poll",
                )
                break
            host = netloc(target.link.url)
            if self.timeouts[host] >= MAX_TIMEOUTS_IN_A_ROW:
                slow[host] += 1
                continue
            process(target)
        for host, count in slow.items():
            self.report.skip(
                count,
                f"{host} timed out {MAX_TIMEOUTS_IN_A_ROW} times in a row:"
                f" {count} {what} left for the next poll",
            )

    def _within_budget(self, documents: dict[str, _Target]) -> list[_Target]:
        """At most ``max_documents`` documents per poll, those never archived first, so a
        backlog is worked through poll after poll instead of re-checking the same ones."""
        keys = list(documents)
        known: set[str] = set()
        with session_scope(self.engine) as session:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                known.update(
                    session.scalars(
                        select(Document.canonical_url).where(Document.canonical_url.in_(chunk))
                    )
                )
        ordered = sorted(keys, key=lambda key: key in known)  # stable: page order kept
        limit = self.source.max_documents
        if len(ordered) > limit:
            left = len(ordered) - limit
            self.report.skip(
                left,
                f"{len(ordered)} documents found, at most {limit} fetched per poll"
                f" (max_documents): {left} left for the next poll",
            )
        return [documents[key] for key in ordered[:limit]]

    def _take_documents(self, url: str, links: list[Link]) -> list[Link]:
        """The links of one page, with at most ``max_documents_per_page`` documents."""
        limit = self.source.max_documents_per_page
        count = sum(1 for link in links if link.role == "document")
        if count <= limit:
            return links
        self.report.skip(
            count - limit,
            f"{url} links {count} documents: took the first {limit} (max_documents_per_page)",
        )
        kept: list[Link] = []
        taken = 0
        for link in links:
            if link.role == "document":
                if taken == limit:
                    continue
                taken += 1
            kept.append(link)
        return kept

    def _discover(self) -> tuple[dict[str, _Target], dict[str, _Target]]:
        """Read entry pages (and their pagination) into item and document targets."""
        items: dict[str, _Target] = {}
        documents: dict[str, _Target] = {}
        entry_errors = []
        for entry_url in self.source.entry_urls:
            pages = [entry_url]
            seen_pages: set[str] = set()
            while pages and len(seen_pages) < self.source.max_pages * len(self.source.entry_urls):
                url = pages.pop(0)
                if canonical_url(url) in seen_pages:
                    continue
                seen_pages.add(canonical_url(url))
                try:
                    page = self._get_page(url)
                    links = self.kind.parse_entry(page)
                    if not links:
                        self._nothing_found(page)
                except FetchError as exc:
                    self.report.fail(url, exc.reason)
                    if url == entry_url:
                        entry_errors.append(f"{url}: {exc.reason}")
                    continue
                page_count = len(seen_pages)
                for link in self._take_documents(url, links):
                    if not self._allowed(link.url):
                        continue
                    key = canonical_url(link.url)
                    if link.role == "page":
                        if page_count < self.source.max_pages:
                            pages.append(link.url)
                    elif link.role == "item" and self.source.max_depth >= 1:
                        if key not in items and len(items) < self.source.max_items:
                            items[key] = _Target(link, 1, page.url)
                    elif link.role == "document" and self.source.max_depth >= 1:
                        _offer(
                            documents, key, _Target(link, 1, link.found_on or page.url, link.title)
                        )
        if entry_errors and len(entry_errors) == len(self.source.entry_urls):
            raise SourceFailed("; ".join(entry_errors))
        return items, documents

    def _nothing_found(self, page: Page) -> None:
        """An entry page without a single link: garbage is an error, an empty page a warning
        (the site's layout may have changed under its selectors)."""
        if not page.is_feed and sniff_kind(page.body[:2048], page.media_type, page.url) != "html":
            raise FetchError(
                page.url,
                f"neither a feed nor an HTML page ({page.media_type or 'no Content-Type'},"
                f" {len(page.body)} bytes): no links can be read from it",
            )
        self.report.warnings.append(f"{page.url}: no links found (has the site's layout changed?)")

    def _process_item(self, target: _Target, documents: dict[str, _Target]) -> None:
        url = target.link.url
        self.progress("item", url)
        try:
            with self._fetch(url, archived=True, page=True) as result:
                page = self._page_from(result, url)
                if not result.not_modified:
                    self._remember(result, self._archive(result, target, page.body))
                else:
                    self.report.unchanged += 1
                    self._remember(result)
        except FetchError as exc:
            self.report.fail(url, exc.reason)
            return
        except Exception as exc:  # a parser or extractor bug: record it, keep polling
            log.exception("item %s failed", url)
            self.report.fail(url, f"{type(exc).__name__}: {exc}")
            return
        if target.depth + 1 > self.source.max_depth:
            return
        for link in self._take_documents(url, self.kind.parse_item(page)):
            if not self._allowed(link.url):
                continue
            key = canonical_url(link.url)
            if link.role == "document":
                inherited = Link(
                    link.url,
                    "document",
                    link.title,
                    target.link.published_at,
                    link.language or target.link.language,
                )
                _offer(documents, key, _Target(inherited, target.depth + 1, url, target.link.title))

    def _process_document(self, target: _Target) -> None:
        url = target.link.url
        self.progress("document", url)
        try:
            with self._fetch(url, archived=True) as result:
                if result.not_modified:
                    self.report.unchanged += 1
                    self._add_alias(canonical_url(url), target)
                    self._remember(result)
                else:
                    self._remember(result, self._archive(result, target, None))
        except FetchError as exc:
            self.report.fail(url, exc.reason)
        except Exception as exc:
            log.exception("document %s failed", url)
            self.report.fail(url, f"{type(exc).__name__}: {exc}")

    # -- fetching -----------------------------------------------------------------------------

    def _allowed(self, url: str) -> bool:
        if is_allowed(url, self.source.allowed_netlocs):
            return True
        log.debug("not following %s: host outside %s", url, sorted(self.source.allowed_netlocs))
        return False

    def _fetch(self, url: str, *, archived: bool = False, page: bool = False) -> FetchResult:
        """GET with the stored validators. With ``archived``, only when the URL already has an
        archived document: a page first read as a listing (validators stored) and only later
        seen as an item must still be downloaded once to be archived. With ``page``, a body
        the server calls text must fit ``max_page_bytes`` (it is parsed in memory)."""
        key = canonical_url(url)
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, key)
            etag = known.etag if known else None
            modified = known.last_modified if known else None
            sha = known.content_sha256 if known else None
            if archived and known is not None:
                has_document = session.scalar(
                    select(Document.id).where(Document.canonical_url == key).limit(1)
                )
                if has_document is None:
                    etag = modified = None
        if sha and not self.blobs.exists(sha):
            etag = modified = None  # lost the body: a 304 would leave nothing to parse
        host = netloc(url)
        try:
            result = self.fetcher.get(
                url,
                etag=etag,
                last_modified=modified,
                max_text_bytes=self.settings.max_page_bytes if page else None,
            )
        except FetchError as exc:
            self.timeouts[host] = self.timeouts[host] + 1 if exc.timed_out else 0
            raise
        self.timeouts[host] = 0
        return result

    def _get_page(self, url: str) -> Page:
        """A listing or feed: the fresh body, or the archived one when the server says 304."""
        with self._fetch(url, page=True) as result:
            page = self._page_from(result, url)
            if not result.not_modified:
                self.blobs.put_bytes(page.body)
            self._remember(result, hashlib.sha256(page.body).hexdigest())
        return page

    def _page_from(self, result: FetchResult, url: str) -> Page:
        """The body to parse for links, fresh or archived (after a 304). A PDF has no links and
        may be huge: it is not read. An HTML page over ``max_page_bytes`` (sent as a file
        type, so the fetcher's cap for pages did not apply) is refused unread: pages are
        parsed in memory, at many times their size."""
        if result.not_modified:
            with session_scope(self.engine) as session:
                known = session.get(HttpResource, canonical_url(url))
                sha = known.content_sha256 if known else None
                kind = sha and session.scalar(
                    select(Document.kind).where(Document.content_sha256 == sha).limit(1)
                )
            if not sha or not self.blobs.exists(sha):
                raise FetchError(url, "304 Not Modified but no archived copy to read")
            if kind == "pdf":
                return Page(result.final_url, b"", result.media_type, result.charset)
            return Page(result.final_url, self.blobs.read(sha), result.media_type, result.charset)
        assert result.path is not None
        with open(result.path, "rb") as handle:
            head = handle.read(2048)
        if sniff_kind(head, result.media_type, url) == "pdf":
            return Page(result.final_url, b"", result.media_type, result.charset)
        if result.size > self.settings.max_page_bytes:
            raise FetchError(
                url,
                f"page too large to parse: {result.size} bytes >"
                f" {self.settings.max_page_bytes} (TIPWATCH_MAX_PAGE_BYTES)",
            )
        return Page(result.final_url, result.read_bytes(), result.media_type, result.charset)

    def _remember(self, result: FetchResult, content_sha256: str | None = None) -> None:
        """Store validators only once a resource was fully processed, so failures retry.
        ``content_sha256``: the archived bytes a later 304 stands for (default: these)."""
        values: dict[str, object] = {
            "last_status": result.status_code,
            "last_fetched_at": result.fetched_at,
        }
        if not result.not_modified:
            values["etag"] = result.etag
            values["last_modified"] = result.last_modified
            values["content_sha256"] = content_sha256 or result.sha256
        with session_scope(self.engine) as session:
            upsert(session, HttpResource, {"canonical_url": canonical_url(result.url)}, values)

    # -- archiving ----------------------------------------------------------------------------

    def _archive(self, result: FetchResult, target: _Target, body: bytes | None) -> str | None:
        """Archive a fetched body as a document version: new, changed, or unchanged.
        Returns the archived bytes that stand for this URL when they are not the fetched ones
        (a re-rendered PDF: the previous version's)."""
        assert result.path is not None and result.sha256 is not None
        url = result.url
        key = canonical_url(url)
        with open(result.path, "rb") as handle:
            head = handle.read(2048)
        kind = sniff_kind(head, result.media_type, url)
        if target.link.role == "document" and kind != "pdf":
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
                self._link(session, existing, url, key, target.found_on)
                self.report.unchanged += 1
                return None
            previous = session.scalar(
                select(Document)
                .where(Document.canonical_url == key)
                .order_by(Document.version.desc())
                .limit(1)
            )
        deferred = kind == "pdf" and self.defer_extraction is not None
        if deferred:
            extracted = Extracted()  # filled on the extract queue
        elif kind == "pdf":
            extracted = extract_pdf_isolated(result.path, self.settings.extract_timeout)
        else:
            extracted = extract_html(
                body if body is not None else result.read_bytes(), url, result.charset
            )
        if previous is not None and same_text(previous.text_sha256, extracted):
            self.report.unchanged += 1
            if kind == "pdf":
                # Re-rendered, same text: the archived version stands for this URL, and a
                # later 304 is answered from its bytes; these are not kept.
                return previous.content_sha256
            # Same article, only the page furniture changed: keep the bytes (a later 304 is
            # answered from them and its links parsed) but no new version.
            self.blobs.put_file(result.path, result.sha256)
            result.path = None
            return None
        self.blobs.put_file(result.path, result.sha256)
        result.path = None
        document = self._new_document(result, target, kind, previous)
        alerts = 0
        try:
            with session_scope(self.engine) as session:
                session.add(document)
                if deferred:
                    document.extract_status = "pending"
                else:
                    apply_extraction(document, extracted, self.settings)
                session.flush()
                self._link(session, document, url, key, target.found_on)
                if not deferred:
                    alerts = create_alerts(session, document, extracted.pages)
        except IntegrityError:  # another worker archived the same bytes a moment ago
            with session_scope(self.engine) as session:
                existing = session.scalar(
                    select(Document).where(Document.content_sha256 == document.content_sha256)
                )
                if existing is None:
                    raise
                self._link(session, existing, url, key, target.found_on)
            self.report.unchanged += 1
            return None
        if previous is None:
            self.report.new += 1
        else:
            self.report.changed += 1
        self.report.alerts += alerts
        self.report.document_ids.append(document.id)
        log.info(
            "archived %s as document %s%s",
            url,
            document.id,
            " (extraction queued)" if deferred else "",
            extra={"source": self.source.name, "url": url, "document_id": document.id},
        )
        if deferred:
            self._defer(document.id, url)
        return None

    def _defer(self, document_id: int, url: str) -> None:
        """Hand a pending document to the extract queue. Should the broker refuse, the
        document stays pending and the sweeper queues it again: nothing is lost."""
        assert self.defer_extraction is not None
        try:
            self.defer_extraction(document_id)
            self.report.deferred += 1
        except Exception as exc:
            log.warning(
                "could not queue the extraction of document %s: %s",
                document_id,
                exc,
                extra={"source": self.source.name, "url": url, "document_id": document_id},
            )

    def _new_document(
        self, result: FetchResult, target: _Target, kind: str, previous: Document | None
    ) -> Document:
        """A document from what the fetch and the linking page say; the text-derived fields
        are filled by :func:`apply_extraction`, here or on the extract queue."""
        link = target.link
        title = link.title
        return Document(
            content_sha256=result.sha256,
            source=self.source.name,
            url=result.url,
            canonical_url=canonical_url(result.url),
            found_on=target.found_on,
            kind=kind,
            media_type=result.media_type or None,
            title=title,
            language=link.language or self.source.language,
            issue_number=link_issue_number(title, result.url),
            published_at=link.published_at,
            fetched_at=result.fetched_at,
            size_bytes=result.size,
            http_headers=_kept_headers(result.headers),
            text="",
            version=(previous.version + 1) if previous else 1,
            previous_id=previous.id if previous else None,
        )

    def _link(
        self, session: Session, document: Document, url: str, key: str, found_on: str | None
    ) -> None:
        exists = session.scalar(
            select(DocumentLink.id).where(
                DocumentLink.document_id == document.id,
                DocumentLink.canonical_url == key,
                DocumentLink.found_on == found_on if found_on else DocumentLink.found_on.is_(None),
            )
        )
        if exists is None:  # another worker may add the same link meanwhile: no conflict error
            insert_missing(
                session,
                DocumentLink,
                {
                    "document_id": document.id,
                    "source": self.source.name,
                    "url": url,
                    "canonical_url": key,
                    "found_on": found_on,
                },
                conflict=("document_id", "canonical_url", "found_on"),
            )

    def _add_alias(self, key: str, target: _Target) -> None:
        with session_scope(self.engine) as session:
            document = session.scalar(
                select(Document)
                .where(Document.canonical_url == key)
                .order_by(Document.version.desc())
                .limit(1)
            )
            if document is not None:
                self._link(session, document, target.link.url, key, target.found_on)

    # -- bookkeeping --------------------------------------------------------------------------

    def _flush_log(self) -> None:
        if not self.records:
            return
        with session_scope(self.engine) as session:
            session.add_all(
                FetchLog(
                    source=self.source.name,
                    url=r.url,
                    status_code=r.status_code,
                    bytes_received=r.bytes_received,
                    duration_ms=r.duration_ms,
                    content_sha256=r.sha256,
                    error=r.error,
                )
                for r in self.records
            )
        self.records.clear()

    def _save_state(
        self, started: datetime | None = None, finished: datetime | None = None
    ) -> None:
        values: dict[str, object] = {}
        if started:
            values["last_poll_started_at"] = started
        if finished:
            report = self.report
            values.update(
                last_poll_finished_at=finished,
                last_status=report.status,
                last_error=report.error
                or "\n".join(report.failures[:20] + [f"warning: {w}" for w in report.warnings])
                or None,
                last_counts={
                    "new": report.new,
                    "changed": report.changed,
                    "unchanged": report.unchanged,
                    "failed": report.failed,
                    "alerts": report.alerts,
                    "skipped": report.skipped,
                },
            )
        with session_scope(self.engine) as session:
            upsert(session, SourceState, {"name": self.source.name}, values)


_HEADERS_KEPT = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "date",
    "server",
    "content-disposition",
)


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in _HEADERS_KEPT}


def poll_source(
    engine: Engine,
    settings: Settings,
    source: SourceConfig,
    progress: Progress | None = None,
    pacer: HostPacer | None = None,
    defer_extraction: DeferExtraction | None = None,
) -> SourceReport:
    """Poll one source once; never raises for a network or content problem."""
    return SourcePoll(engine, settings, source, progress, pacer, defer_extraction).run()
