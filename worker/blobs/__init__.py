"""Stage 3: keep the original bytes, content-addressed by sha256, so nothing fetched is lost.

Blobs live under ``sha256/ab/cd/<hash>``, on local disk by default (:mod:`worker.blobs.local`)
or in any object store (S3-compatible: MinIO, Garage, …, :mod:`worker.blobs.s3`) when
``TIPWATCH_BLOB_URL`` is set; both implement :class:`BlobStore`
(:mod:`worker.blobs.base`), the one interface the pipeline, the CLI and the web UI use.
The factory lives here, above the backends, so the base never imports a backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.blobs.base import BlobMissing, BlobStore, sha256_file
from worker.blobs.local import LocalBlobStore

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["BlobMissing", "BlobStore", "LocalBlobStore", "open_blob_store", "sha256_file"]


def open_blob_store(settings: Settings) -> BlobStore:
    """The store ``settings`` name: ``TIPWATCH_BLOB_URL`` if set, else the archive directory."""
    if settings.blob_url:
        from worker.blobs.s3 import ObjectBlobStore  # the s3 extra is optional: import on use

        return ObjectBlobStore.from_settings(settings)
    return LocalBlobStore(settings.resolved_archive_dir)
