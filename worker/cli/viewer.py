"""Hand an archived original to the desktop's viewer, or say where it is when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from worker.blobs import BlobStore


def viewable_copy(
    store: BlobStore, archive_dir: Path, document_id: int, sha: str, kind: str
) -> Path:
    """A file the viewer can open: the blob itself on disk, else a copy with an extension.

    Viewers pick the program by extension; blobs have none, so local ones are still opened
    directly (xdg-open and macOS sniff content) while remote ones are fetched to a cache.
    """
    local = store.local_path(sha)
    if local is not None:
        if not local.is_file():
            from worker.blobs import BlobMissing

            raise BlobMissing(sha)
        return local
    suffix = ".pdf" if kind == "pdf" else ".html.txt"
    target = archive_dir / ".open" / f"tipwatch-{document_id}-{sha[:12]}{suffix}"
    if not target.is_file():
        store.copy_to(sha, target)
    return target


def open_with_viewer(path: Path) -> bool:
    """True when a viewer was started; False without a desktop (SSH, containers, CI)."""
    if sys.platform == "darwin":
        command = ["open", str(path)]
    elif os.name == "nt":  # pragma: no cover - not tested on Windows
        os.startfile(str(path))  # type: ignore[attr-defined]
        return True
    else:
        opener = shutil.which("xdg-open")
        if not opener or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False
        command = [opener, str(path)]
    try:
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return False
    return True
