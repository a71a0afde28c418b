"""The default blob store: originals on local disk, under the archive directory."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from worker.blobs.base import CHUNK, KEY_PREFIX, BlobMissing, BlobStore


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

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

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
        base = self.root / KEY_PREFIX
        if base.is_dir():
            for path in base.glob("*/*/*"):
                if path.is_file() and not path.name.startswith("."):
                    yield path.name
