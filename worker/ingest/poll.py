"""One poll of one source: traverse its feeds and listings to items and documents, fetch each
within the poll's budgets, archive what is new, and hand each new version to the extraction
job (in this process, or a PDF to the ``extract`` queue). Its report says what happened.

Everything here is a plain function over an engine and settings; the CLI calls it in-process
and the Celery tasks call the very same function. A failure is recorded against the URL that
caused it and the cycle goes on: one bad page or PDF never hides the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from config.settings import Settings, SourceConfig
from worker.blobs import open_blob_store
from worker.dates import issue_number
from worker.discover import Link, Page, SourceKind, kind_for
from worker.extract.formats import sniff_kind
from worker.extract.job import extract_document
from worker.fetch import (
    Fetcher,
    FetchError,
    FetchRecord,
    FetchResult,
    HostPacer,
    RobotsCache,
    charset_of,
    clean_spool,
    media_type_of,
)
from worker.ingest.archiver import Archived, Archiver, Found
from worker.ingest.http_cache import HttpCache
from worker.ratelimit import make_pacer
from worker.storage.db import session_scope
from worker.storage.models import Document, FetchLog, SourceState
from worker.storage.repo import upsert
from worker.urls import canonical_url, is_allowed, netloc

log = logging.getLogger(__name__)

# After this many timeouts in a row, a host is left alone for the rest of the poll: a site
# that trickles every response would otherwise cost one download deadline per URL.
MAX_TIMEOUTS_IN_A_ROW = 3

Progress = Callable[[str, str], None]  # (event, url)
DeferExtraction = Callable[[int], None]  # queue a pending PDF's extraction job


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
    baseline: bool = False  # the source's first poll: what it archives alerts nobody
    requests: int = 0  # HTTP requests made (robots.txt, redirects and retries included)
    bytes_received: int = 0
    not_modified: int = 0  # answered 304
    not_due: int = 0  # archived items and files left alone: no sign of change, not due
    seconds: float = 0.0  # wall time of the poll

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
            "baseline": self.baseline,
            "requests": self.requests,
            "bytes_received": self.bytes_received,
            "not_modified": self.not_modified,
            "not_due": self.not_due,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Target:
    link: Link
    depth: int
    found_on: str | None
    item_title: str | None = None  # the title of the item (article, feed entry) linking it
    parent_id: int | None = None  # that item's document, when it is new or changed this poll
    entry_sha256: str | None = None  # what the feeds and listings say of an item


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
        robots: RobotsCache | None = None,
    ) -> None:
        self.engine = engine
        self.defer_extraction = defer_extraction
        self.settings = settings
        self.source = source
        self.kind: SourceKind = kind_for(source.kind, source.options)
        self.blobs = blobs = open_blob_store(settings)
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
            robots=robots,
        )
        self.http = HttpCache(engine, blobs, self.fetcher, settings.max_page_bytes, source.revisit)
        self.archiver = Archiver(engine, blobs, settings, source.name, source.language)
        self.ends_at = time.monotonic() + settings.poll_deadline
        # Pages whose files were left for the next poll (a budget, the deadline, a slow host):
        # they stay due, so the next poll reaches the rest.
        self.backlog: set[str] = set()

    # -- the cycle --------------------------------------------------------------------------

    def run(self) -> SourceReport:
        clock = time.monotonic()
        started = datetime.now(UTC)
        self._save_state(started=started)
        self.report.baseline = self.settings.quiet_first_poll and self._before_baseline()
        try:
            self._prepare_spool()
            items, documents = self._discover()
            self._each("items", items.values(), lambda t: self._process_item(t, documents))
            self._each("documents", self._within_budget(documents), self._process_document)
            self.http.due_now(self.backlog)
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
        self.report.seconds = time.monotonic() - clock
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
                self._left(pending[index:])
                self.report.skip(
                    len(pending) - index,
                    f"poll deadline reached ({self.settings.poll_deadline:g} s,"
                    f" TIPWATCH_POLL_DEADLINE): {len(pending) - index} {what}"
                    " left for the next poll",
                )
                break
            host = netloc(target.link.url)
            if self.http.timeouts[host] >= MAX_TIMEOUTS_IN_A_ROW:
                slow[host] += 1
                self._left([target])
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
        self._left([documents[key] for key in ordered[limit:] if key not in known])
        return [documents[key] for key in ordered[:limit]]

    def _left(self, targets: Iterable[_Target]) -> None:
        self.backlog.update(t.found_on for t in targets if t.found_on)

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
            unchanged = False  # the entry page answered 304: its next pages are as archived
            while pages and len(seen_pages) < self.source.max_pages * len(self.source.entry_urls):
                url = pages.pop(0)
                if canonical_url(url) in seen_pages:
                    continue
                seen_pages.add(canonical_url(url))
                try:
                    if url != entry_url and unchanged and (stored := self._stored_page(url)):
                        page = stored
                    else:
                        page, not_modified = self._get_page(url)
                        unchanged = unchanged or (url == entry_url and not_modified)
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
        files: dict[str, list[str]] = {}  # item -> the file URLs its entry lists, as written
        for target in documents.values():
            if target.found_on:
                files.setdefault(canonical_url(target.found_on), []).append(target.link.url)
        for key, target in items.items():
            target.entry_sha256 = entry_signature(target.link, files.get(key, []))
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

    def _due(self, target: _Target, found_on: str | None = None) -> bool:
        """Whether to ask for an item or file this poll (see :meth:`HttpCache.not_due`)."""
        reason = self.http.not_due(target.link.url, target.entry_sha256, found_on)
        if reason is None:
            return True
        self.report.not_due += 1
        log.debug("not fetching %s: %s", target.link.url, reason)
        return False

    def _process_item(self, target: _Target, documents: dict[str, _Target]) -> None:
        url = target.link.url
        self.progress("item", url)
        if not self._due(target):
            return
        try:
            with self.http.get(url, archived=True, page=True) as result:
                page = self._page_from(result, url)
                parent_id = self._take(result, target)
        except FetchError as exc:
            self._failed(url, exc)
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
                _offer(
                    documents,
                    key,
                    _Target(inherited, target.depth + 1, url, target.link.title, parent_id),
                )

    def _process_document(self, target: _Target) -> None:
        url = target.link.url
        self.progress("document", url)
        if not self._due(target, found_on=target.found_on):
            return
        try:
            with self.http.get(url, archived=True) as result:
                self._take(result, target)
        except FetchError as exc:
            self._failed(url, exc)
        except Exception as exc:
            log.exception("document %s failed", url)
            self.report.fail(url, f"{type(exc).__name__}: {exc}")

    def _take(self, result: FetchResult, target: _Target) -> int | None:
        """Archive a fetched item or document, remember its validators, hand it off. Returns
        the id of the new version kept, if any."""
        link = target.link
        found = Found(
            link.url,
            target.found_on,
            link.title,
            link.published_at,
            link.language,
            expect_pdf=link.role == "document",
            parent_id=target.parent_id,
        )
        if result.not_modified:
            refused = self.http.refused(link.url)
            if refused:  # the body refused last time, unchanged: still refused
                raise FetchError(link.url, f"{refused} (unchanged since)", result=result)
            self.report.unchanged += 1
            self.archiver.add_alias(found)
            self.http.remember(result, entry_sha256=target.entry_sha256)
            return None
        try:
            archived = self.archiver.archive(result, found)
        except FetchError as exc:
            exc.result = result  # refused bytes: their validators make the retry conditional
            raise
        # before the hand-off: a folded PDF re-points them
        self.http.remember(result, entry_sha256=target.entry_sha256)
        return self._hand_off(archived, link.url)

    def _failed(self, url: str, exc: FetchError) -> None:
        """A URL failed: reported, and remembered so it is retried after a backoff."""
        self.report.fail(url, exc.reason)
        self.http.remember_failure(url, exc.reason, exc.result)

    def _hand_off(self, archived: Archived, url: str) -> int | None:
        """Run the extraction job on a new version: here, or for a PDF under Celery on the
        ``extract`` queue. Should the broker refuse, the document stays pending and the
        sweeper queues it again: nothing is lost."""
        if archived.document_id is None:
            self.report.unchanged += 1
            return None
        document_id = archived.document_id
        if archived.kind == "pdf" and self.defer_extraction is not None:
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
        else:
            outcome = extract_document(self.engine, self.settings, document_id)
            if outcome.status == "same-text":  # new bytes, nothing new to read
                self.report.unchanged += 1
                return None
            self.report.alerts += outcome.alerts
        if archived.version > 1:
            self.report.changed += 1
        else:
            self.report.new += 1
        self.report.document_ids.append(document_id)
        return document_id

    # -- fetching -----------------------------------------------------------------------------

    def _allowed(self, url: str) -> bool:
        if is_allowed(url, self.source.allowed_netlocs):
            return True
        log.debug("not following %s: host outside %s", url, sorted(self.source.allowed_netlocs))
        return False

    def _get_page(self, url: str) -> tuple[Page, bool]:
        """A listing or feed: the fresh body, or the archived one when the server says 304
        (True)."""
        with self.http.get(url, page=True) as result:
            page = self._page_from(result, url)
            if not result.not_modified:
                self.blobs.put_bytes(page.body)
            self.http.remember(result, hashlib.sha256(page.body).hexdigest())
        return page, result.not_modified

    def _stored_page(self, url: str) -> Page | None:
        """A listing's next page as last fetched, without a request: when its first page is
        unchanged, so are the others (SPIP paginates newest first). None if never fetched."""
        try:
            page = self._archived_page(url, url)
        except FetchError:
            return None
        return page if page.body else None

    def _archived_page(self, url: str, page_url: str, served: FetchResult | None = None) -> Page:
        """The archived body that stands for ``url``, typed as it was served (else as
        ``served`` says); a PDF's is not read (it has no links). Raises FetchError when
        nothing is archived."""
        sha, kind, content_type = self.http.archived(url)
        body = b"" if kind == "pdf" else self.blobs.read(sha)
        return Page(
            page_url,
            body,
            media_type_of(content_type or "") or (served.media_type if served else ""),
            charset_of(content_type or "") or (served.charset if served else None),
        )

    def _page_from(self, result: FetchResult, url: str) -> Page:
        """The body to parse for links, fresh or archived (after a 304). A PDF has no links and
        may be huge: it is not read. An HTML page over ``max_page_bytes`` (sent as a file
        type, so the fetcher's cap for pages did not apply) is refused unread: pages are
        parsed in memory, at many times their size."""
        if result.not_modified:  # the archived body, with the type it was served with
            return self._archived_page(url, result.final_url, result)
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

    # -- bookkeeping --------------------------------------------------------------------------

    def _flush_log(self) -> None:
        report = self.report
        report.requests += len(self.records)
        report.bytes_received += sum(r.bytes_received for r in self.records)
        report.not_modified += sum(r.status_code == 304 for r in self.records)
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

    def _before_baseline(self) -> bool:
        """True until the source's first successful poll has finished."""
        with session_scope(self.engine) as session:
            state = session.get(SourceState, self.source.name)
            return state is None or state.baseline_at is None

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
                    "requests": report.requests,
                    "bytes_received": report.bytes_received,
                    "not_modified": report.not_modified,
                    "not_due": report.not_due,
                },
            )
        with session_scope(self.engine) as session:
            upsert(session, SourceState, {"name": self.source.name}, values)
            if finished and self.report.status != "failed":
                session.execute(  # the baseline ends with the first poll that succeeds
                    update(SourceState)
                    .where(SourceState.name == self.source.name, SourceState.baseline_at.is_(None))
                    .values(baseline_at=finished)
                )


def poll_source(
    engine: Engine,
    settings: Settings,
    source: SourceConfig,
    progress: Progress | None = None,
    pacer: HostPacer | None = None,
    defer_extraction: DeferExtraction | None = None,
    robots: RobotsCache | None = None,
) -> SourceReport:
    """Poll one source once; never raises for a network or content problem. Sources polled
    together share ``pacer`` (a host's request spacing) and ``robots`` (its robots.txt)."""
    return SourcePoll(engine, settings, source, progress, pacer, defer_extraction, robots).run()


def entry_signature(link: Link, files: list[str]) -> str:
    """What the feeds and listings say of an item: its title, date and files. When it changes,
    the item is fetched whatever its revisit schedule."""
    said = [
        link.title or "",
        link.published_at.isoformat() if link.published_at else "",
        *sorted(files),
    ]
    return hashlib.sha256(json.dumps(said).encode()).hexdigest()
