"""Originals in an object store, so replicas share one archive: S3-compatible, via obstore.

Any S3-compatible service works (MinIO, Garage, SeaweedFS, AWS).
Optional (``pip install 'tipwatch[s3]'``): selected by ``TIPWATCH_BLOB_URL=s3://bucket/prefix``,
with ``TIPWATCH_BLOB_ENDPOINT`` / ``TIPWATCH_BLOB_REGION``; credentials come from the usual
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` variables. ``file:///dir`` and ``memory://``
URLs give obstore's local and in-memory stores, through exactly the same code path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from worker.blobs.base import KEY_PREFIX, BlobMissing, BlobStore

if TYPE_CHECKING:
    from config.settings import Settings


class ObjectBlobStore(BlobStore):
    """A :class:`BlobStore` over any obstore store; writes are atomic in every backend."""

    def __init__(self, store: Any, location: str) -> None:
        self.store = store
        self.location = location

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectBlobStore:
        url = settings.blob_url or ""
        return cls(make_store(url, settings.blob_endpoint, settings.blob_region), url)

    def exists(self, sha256: str) -> bool:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            obstore.head(self.store, self.key(sha256))
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    def delete(self, sha256: str) -> None:
        import obstore
        from obstore.exceptions import NotFoundError

        with suppress(NotFoundError, FileNotFoundError):
            obstore.delete(self.store, self.key(sha256))

    def put_file(self, source: Path, sha256: str) -> None:
        import obstore

        if not self.exists(sha256):
            obstore.put(self.store, self.key(sha256), Path(source))
        Path(source).unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        import obstore

        sha256 = hashlib.sha256(data).hexdigest()
        if not self.exists(sha256):
            obstore.put(self.store, self.key(sha256), data)
        return sha256

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            result = obstore.get(self.store, self.key(sha256))
        except (NotFoundError, FileNotFoundError) as exc:
            raise BlobMissing(sha256) from exc
        for chunk in result.stream(min_chunk_size=1 << 20):
            yield bytes(chunk)

    def iter_hashes(self) -> Iterator[str]:
        import obstore

        for batch in obstore.list(self.store, prefix=f"{KEY_PREFIX}/"):
            for meta in batch:
                name = str(meta["path"]).rsplit("/", 1)[-1]
                if len(name) == 64 and not name.startswith("."):
                    yield name


def make_store(url: str, endpoint: str | None = None, region: str | None = None) -> Any:
    """An obstore store for ``s3://bucket/prefix``, ``file:///dir`` or ``memory://``."""
    try:
        from obstore.store import LocalStore, MemoryStore, S3Store
    except ImportError as exc:  # the optional extra is not installed
        raise RuntimeError(
            "TIPWATCH_BLOB_URL needs the s3 extra: pip install 'tipwatch[s3]'"
        ) from exc
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return MemoryStore()
    if parts.scheme == "file":
        return LocalStore(parts.path, mkdir=True)
    if parts.scheme == "s3":
        options: dict[str, Any] = {}
        if endpoint:
            options["endpoint"] = endpoint
        if region:
            options["region"] = region
        client: Any = {"allow_http": True} if (endpoint or "").startswith("http://") else None
        prefix = parts.path.strip("/") or None
        return S3Store(parts.netloc, prefix=prefix, client_options=client, **options)
    raise ValueError(f"TIPWATCH_BLOB_URL: unsupported scheme in {url!r} (s3, file, memory)")
