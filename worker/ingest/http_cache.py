"""Conditional GET: what a URL's last fetch left (validators, the bytes that stand for it), so
an unchanged resource costs a 304 and the archived copy is read instead of the network's."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.engine import Engine

from worker.blobs import BlobStore
from worker.fetch import Fetcher, FetchError, FetchResult
from worker.storage.db import session_scope
from worker.storage.models import Document, HttpResource
from worker.storage.repo import upsert
from worker.urls import canonical_url, netloc


class HttpCache:
    """A source's fetcher with its memory of each URL; counts each host's timeouts in a row."""

    def __init__(
        self, engine: Engine, blobs: BlobStore, fetcher: Fetcher, max_page_bytes: int
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.fetcher = fetcher
        self.max_page_bytes = max_page_bytes
        self.timeouts: Counter[str] = Counter()  # host -> timeouts in a row

    def get(self, url: str, *, archived: bool = False, page: bool = False) -> FetchResult:
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
                max_text_bytes=self.max_page_bytes if page else None,
            )
        except FetchError as exc:
            self.timeouts[host] = self.timeouts[host] + 1 if exc.timed_out else 0
            raise
        self.timeouts[host] = 0
        return result

    def archived(self, url: str) -> tuple[str, str | None]:
        """After a 304: the sha256 of the bytes that stand for ``url`` and, when they are an
        archived document's, its kind."""
        with session_scope(self.engine) as session:
            known = session.get(HttpResource, canonical_url(url))
            sha = known.content_sha256 if known else None
            kind = sha and session.scalar(
                select(Document.kind).where(Document.content_sha256 == sha).limit(1)
            )
        if not sha or not self.blobs.exists(sha):
            raise FetchError(url, "304 Not Modified but no archived copy to read")
        return sha, kind or None

    def remember(self, result: FetchResult, content_sha256: str | None = None) -> None:
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
