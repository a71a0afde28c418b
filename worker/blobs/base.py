"""The blob store's contract, shared by every backend: the interface, its error and key layout.

Originals are content-addressed: a blob's name is the sha256 of its bytes, stored under
``sha256/ab/cd/<hash>``. This module imports no backend; ``worker.blobs`` picks one.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
KEY_PREFIX = "sha256"


class BlobMissing(FileNotFoundError):
    """No blob with that hash in the store."""


class BlobStore(ABC):
    """Content-addressed originals: a blob's name is the sha256 of its bytes."""

    location: str  # for people: a directory or a URL

    @staticmethod
    def key(sha256: str) -> str:
        return f"{KEY_PREFIX}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

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

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove a blob nothing refers to any more; a missing one is not an error."""

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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
