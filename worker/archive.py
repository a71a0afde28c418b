"""Stage 3: keep the original bytes, content-addressed by sha256, so nothing fetched is lost.

Blobs live at ``<archive_dir>/sha256/ab/cd/<hash>``; a blob is written to a temporary file,
fsynced and renamed, so a crash never leaves a half-written file under a valid name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class BlobStore:
    """Local-disk content-addressed store."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_file(self, source: Path, sha256: str) -> Path:
        """Move ``source`` (already hashed while downloading) into the store."""
        target = self.path(sha256)
        if target.is_file():
            source.unlink(missing_ok=True)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
        shutil.move(str(source), tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return target

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

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def iter_hashes(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for path in base.glob("*/*/*"):
                if path.is_file() and not path.name.startswith("."):
                    yield path.name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
