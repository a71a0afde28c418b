"""What the crawler remembers of each URL: validators for conditional GET (an unchanged
resource costs a 304 and the archived copy is read instead), when a revisit is due, and the
failures it backs off from.

Revisits go by evidence, not habit: an archived item page or file is asked for again when its
entry in a feed or listing changed, when it is linked from a new place, or when its revisit is
due (sooner for a young or recently changed page, see :class:`config.settings.RevisitConfig`);
a URL that failed waits out an exponential backoff, then is asked for conditionally too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from config.settings import RevisitConfig
from worker.blobs import BlobStore
from worker.dates import as_utc
from worker.fetch import Fetcher, FetchError, FetchResult
from worker.storage.db import session_scope
from worker.storage.models import Document, DocumentLink, HttpResource
from worker.storage.repo import upsert
from worker.urls import canonical_url, netloc

FIRST_BACKOFF = timedelta(hours=1)
MAX_BACKOFF = timedelta(days=7)


def backoff(failures: int) -> timedelta:
    """How long a URL that failed ``failures`` times in a row is left alone: 1 h, 2 h, 4 h…
    up to a week. A poll every 6 hours thus retries after one failure at its next run."""
    return min(FIRST_BACKOFF * 2 ** max(failures - 1, 0), MAX_BACKOFF)


def _archived(session: Session, key: str) -> bool:
    """An archived document stands for this URL: its own, or one it is an alias of."""
    return (
        session.scalar(select(Document.id).where(Document.canonical_url == key).limit(1))
        is not None
        or session.scalar(select(DocumentLink.id).where(DocumentLink.canonical_url == key).limit(1))
        is not None
    )


class HttpCache:
    """A source's fetcher with its memory of each URL; counts each host's timeouts in a row."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        fetcher: Fetcher,
        max_page_bytes: int,
        revisit: RevisitConfig | None = None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.fetcher = fetcher
        self.max_page_bytes = max_page_bytes
        self.revisit = revisit or RevisitConfig()
        self.timeouts: Counter[str] = Counter()  # host -> timeouts in a row

    def not_due(
        self,
        url: str,
        entry_sha256: str | None = None,
        found_on: str | None = None,
        now: datetime | None = None,
    ) -> str | None:
        """Why an item or file need not be asked for this poll, or None when it must: it is
        new, not archived yet, its entry changed (``entry_sha256``), it is linked from a new
        page or by a new URL (``found_on``), its revisit is due, or its backoff after a
        failure is over."""
        now = now or datetime.now(UTC)
        key = canonical_url(url)
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, key)
            if known is None:
                return None
            if known.retry_at is not None and now < as_utc(known.retry_at):
                until = as_utc(known.retry_at).isoformat(timespec="minutes")
                return f"failed {known.failures}× ({known.last_error}): next try after {until}"
            if known.failures or self.revisit.every_poll or not _archived(session, key):
                return None
            if entry_sha256 is not None and known.entry_sha256 != entry_sha256:
                return None
            if found_on is not None:  # linked there before, by this very URL (SPIP's ?id/hash)
                seen_there = session.scalar(
                    select(DocumentLink.id)
                    .where(DocumentLink.url == url, DocumentLink.found_on == found_on)
                    .limit(1)
                )
                if seen_there is None:
                    return None
            if known.next_visit_at is None or now >= as_utc(known.next_visit_at):
                return None
            return f"unchanged, next visit after {as_utc(known.next_visit_at):%Y-%m-%d %H:%M}"

    def due_now(self, urls: Iterable[str]) -> None:
        """Make these pages due at the next poll (files they link were left for it)."""
        keys = sorted({canonical_url(u) for u in urls})
        if not keys:
            return
        with session_scope(self.engine) as session:
            session.execute(
                update(HttpResource)
                .where(HttpResource.canonical_url.in_(keys))
                .values(next_visit_at=None)
            )

    def get(self, url: str, *, archived: bool = False, page: bool = False) -> FetchResult:
        """GET with the stored validators. With ``archived``, only when an archived document
        stands for the URL (its own or as an alias): a page first read as a listing (validators
        stored) and only later seen as an item must still be downloaded once to be archived.
        A URL whose last answer was refused (HTML where a PDF was linked) keeps its validators:
        the refusal stands while the server says 304. With ``page``, a body the server calls
        text must fit ``max_page_bytes`` (it is parsed in memory)."""
        key = canonical_url(url)
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, key)
            etag = known.etag if known else None
            modified = known.last_modified if known else None
            sha = known.content_sha256 if known else None
            refused = known is not None and known.failures > 0
            if archived and not refused and not _archived(session, key):
                etag = modified = None
        if sha and not refused and not self.blobs.exists(sha):
            etag = modified = None  # lost the body: a 304 would leave nothing to parse
        host = netloc(url)
        try:
            result = self.fetcher.get(
                url,
                etag=etag,
                last_modified=modified,
                max_text_bytes=self.max_page_bytes if page else None,
            )
        except FetchError as exc:
            self.timeouts[host] = self.timeouts[host] + 1 if exc.timed_out else 0
            raise
        self.timeouts[host] = 0
        return result

    def archived(self, url: str) -> tuple[str, str | None, str | None]:
        """After a 304: the sha256 of the bytes that stand for ``url``, their kind when they
        are an archived document's, and the content type they were served with."""
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, canonical_url(url))
            sha = known.content_sha256 if known else None
            content_type = known.content_type if known else None
            kind = sha and session.scalar(
                select(Document.kind).where(Document.content_sha256 == sha).limit(1)
            )
        if not sha or not self.blobs.exists(sha):
            raise FetchError(url, "304 Not Modified but no archived copy to read")
        return sha, kind or None, content_type

    def refused(self, url: str) -> str | None:
        """Why the content the URL's validators stand for was refused, if it was (see
        :meth:`get`): it failed, and those bytes are no archived document's."""
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, canonical_url(url))
            if known is None or not known.failures or known.content_sha256 is None:
                return None
            archived = session.scalar(
                select(Document.id).where(Document.content_sha256 == known.content_sha256)
            )
            return None if archived is not None else known.last_error

    def remember(
        self,
        result: FetchResult,
        content_sha256: str | None = None,
        entry_sha256: str | None = None,
    ) -> None:
        """Store validators only once a resource was fully processed, so failures retry.
        ``content_sha256``: the archived bytes a later 304 stands for (default: these);
        ``entry_sha256``: what the feed or listing said of it. Schedules the next visit."""
        now = datetime.now(UTC)
        key = canonical_url(result.url)
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, key)
            values: dict[str, object] = {
                "last_status": result.status_code,
                "last_fetched_at": result.fetched_at,
                "failures": 0,
                "last_error": None,
                "retry_at": None,
            }
            if entry_sha256 is not None:
                values["entry_sha256"] = entry_sha256
            changed = known.changed_at if known and known.changed_at else now
            if not result.not_modified:
                sha = content_sha256 or result.sha256
                values.update(
                    etag=result.etag,
                    last_modified=result.last_modified,
                    content_sha256=sha,
                    content_type=result.headers.get("content-type"),
                )
                if known is None or known.content_sha256 != sha:
                    changed = now
            values["changed_at"] = changed
            values["next_visit_at"] = now + self.revisit.interval(
                now - max(as_utc(changed), self._published(session, key) or as_utc(changed))
            )
            upsert(session, HttpResource, {"canonical_url": key}, values)

    def remember_failure(self, url: str, reason: str, result: FetchResult | None = None) -> None:
        """Count a failure and back off. A body that was fetched but refused keeps its
        validators: the next try is conditional, and a 304 means the refusal stands."""
        now = datetime.now(UTC)
        key = canonical_url(url)
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, key)
            failures = (known.failures if known else 0) + 1
            values: dict[str, object] = {
                "failures": failures,
                "last_error": reason[:2000],
                "retry_at": now + backoff(failures),
                "last_fetched_at": now,
            }
            if result is not None and not result.not_modified:
                values.update(
                    etag=result.etag,
                    last_modified=result.last_modified,
                    content_sha256=result.sha256,
                    last_status=result.status_code,
                )
            upsert(session, HttpResource, {"canonical_url": key}, values)

    @staticmethod
    def _published(session: Session, key: str) -> datetime | None:
        published = session.scalar(
            select(Document.published_at)
            .where(Document.canonical_url == key)
            .order_by(Document.version.desc())
            .limit(1)
        )
        return as_utc(published) if published else None
