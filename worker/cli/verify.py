"""``tipwatch archive verify``: every original re-hashed, so silent disk or bucket corruption
and lost files show up before someone needs the document."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy import select
from sqlalchemy.engine import Engine

from worker.blobs import BlobMissing, BlobStore
from worker.cli.common import err
from worker.storage.db import session_scope
from worker.storage.models import Document


@dataclass
class VerifyReport:
    checked: int = 0
    bytes_read: int = 0
    missing: dict[str, list[int]] = field(default_factory=dict)  # sha256 -> document ids
    corrupt: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def problems(self) -> list[tuple[str, str, list[int]]]:
        return [("missing", sha, ids) for sha, ids in self.missing.items()] + [
            ("corrupt", sha, ids) for sha, ids in self.corrupt.items()
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "bytes_read": self.bytes_read,
            "missing": [{"sha256": s, "documents": i} for s, i in self.missing.items()],
            "corrupt": [{"sha256": s, "documents": i} for s, i in self.corrupt.items()],
        }


def verify_archive(engine: Engine, store: BlobStore, show_progress: bool = True) -> VerifyReport:
    """Re-hash every blob documents refer to and every blob in the store."""
    referenced: dict[str, list[int]] = defaultdict(list)
    with session_scope(engine) as session:
        for doc_id, sha in session.execute(select(Document.id, Document.content_sha256)):
            referenced[sha].append(doc_id)
    hashes = sorted(set(referenced) | set(store.iter_hashes()))
    report = VerifyReport()
    progress = Progress(
        TextColumn("[bold]verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("verify", total=len(hashes))
        for sha in hashes:
            try:
                digest = hashlib.sha256()
                for chunk in store.iter_chunks(sha):
                    digest.update(chunk)
                    report.bytes_read += len(chunk)
                if digest.hexdigest() != sha:
                    report.corrupt[sha] = referenced.get(sha, [])
            except BlobMissing:
                report.missing[sha] = referenced.get(sha, [])
            report.checked += 1
            progress.advance(task)
    return report
