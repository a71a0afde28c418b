"""Stage 3: keep the original bytes, content-addressed by sha256, so nothing fetched is lost.

Blobs live under ``sha256/ab/cd/<hash>``, on local disk by default or in any object store
(S3-compatible: MinIO, Garage, …) when ``TIPWATCH_BLOB_URL`` is set; both implement
:class:`BlobStore`, the one interface the pipeline, the CLI and the web UI use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

CHUNK = 1 << 20


class BlobMissing(FileNotFoundError):
    """No blob with that hash in the store."""


class BlobStore(ABC):
    """Content-addressed originals: a blob's name is the sha256 of its bytes."""

    location: str  # for people: a directory or a URL

    @staticmethod
    def key(sha256: str) -> str:
        return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def put_file(self, source: Path, sha256: str) -> None:
        """Move ``source`` (already hashed while downloading) into the store."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; returns its sha256."""

    @abstractmethod
    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob's bytes, streamed; raises :class:`BlobMissing`."""

    @abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Every stored hash (the names, not re-verified)."""

    def local_path(self, sha256: str) -> Path | None:
        """A file holding the blob, when the store is a local directory."""
        return None

    def read(self, sha256: str) -> bytes:
        return b"".join(self.iter_chunks(sha256))

    def rehash(self, sha256: str) -> str:
        """The sha256 of the stored bytes now, to detect silent corruption."""
        digest = hashlib.sha256()
        for chunk in self.iter_chunks(sha256):
            digest.update(chunk)
        return digest.hexdigest()

    def copy_to(self, sha256: str, target: Path) -> Path:
        """Write the blob to ``target`` (for viewers that need a file with an extension)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            for chunk in self.iter_chunks(sha256):
                handle.write(chunk)
        os.replace(tmp, target)
        return target


class LocalBlobStore(BlobStore):
    """Blobs on local disk, written to a temporary file, fsynced and renamed, so a crash never
    leaves a half-written file under a valid name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def path(self, sha256: str) -> Path:
        return self.root / self.key(sha256)

    def local_path(self, sha256: str) -> Path | None:
        return self.path(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_file(self, source: Path, sha256: str) -> None:
        target = self.path(sha256)
        if target.is_file():
            source.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
        shutil.move(str(source), tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        return sha256

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        try:
            handle = open(self.path(sha256), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as exc:
            raise BlobMissing(sha256) from exc
        with handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    def iter_hashes(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for path in base.glob("*/*/*"):
                if path.is_file() and not path.name.startswith("."):
                    yield path.name


def open_blob_store(settings: Settings) -> BlobStore:
    """The store ``settings`` name: ``TIPWATCH_BLOB_URL`` if set, else the archive directory."""
    if settings.blob_url:
        from worker.objectstore import ObjectBlobStore

        return ObjectBlobStore.from_settings(settings)
    return LocalBlobStore(settings.resolved_archive_dir)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
