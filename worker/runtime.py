"""The process's settings and database engine, built once and shared by CLI, tasks and web."""

from __future__ import annotations

import errno
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import ConfigError, Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@lru_cache(maxsize=1)
def settings() -> Settings:
    return get_settings()


def engine(current: Settings | None = None) -> Engine:
    from worker.storage.db import get_engine  # SQLAlchemy + Alembic: ~0.5 s, not for --help

    return get_engine((current or settings()).resolved_database_url)


def database_error(
    current: Settings, exc: BaseException, *, opening: bool = False
) -> ConfigError | None:
    """The configuration error behind ``exc`` when it is a failure to open the database (bad
    URL, unknown dialect, server unreachable; with ``opening``, raised by :func:`engine`, also
    a missing driver or an unusable SQLite directory); None for anything else, a failed
    statement included (that keeps its traceback). For commands: tasks retry instead."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    if isinstance(exc, DBAPIError) and exc.statement is None:  # failed to connect
        reason = str(exc.orig) if exc.orig is not None else str(exc)
    elif isinstance(exc, ArgumentError) or (opening and isinstance(exc, ImportError | OSError)):
        reason = str(exc)
    else:
        return None
    from worker.redact import masked_url

    key = "TIPWATCH_DATABASE_URL" if current.database_url else "TIPWATCH_DATA_DIR"
    url = masked_url(current.resolved_database_url)
    return ConfigError(f"{key}: cannot open the database {url}: {' '.join(reason.split())}")


_UNUSABLE = {errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS}


def directory_error(current: Settings, exc: BaseException) -> ConfigError | None:
    """The configuration error behind ``exc`` when it says the archive or data directory is
    unusable (not a directory, not writable, read-only); None for anything else (a missing
    blob, a full disk)."""
    if not isinstance(exc, OSError) or exc.errno not in _UNUSABLE or not exc.filename:
        return None
    path = Path(str(exc.filename)).absolute()
    archive = current.resolved_archive_dir.absolute()
    data = current.data_dir.absolute()
    if path == archive or archive in path.parents:
        key = "TIPWATCH_ARCHIVE_DIR" if current.archive_dir else "TIPWATCH_DATA_DIR"
        what = "the archive directory"
        directory = archive
    elif path == data or data in path.parents:
        key, what, directory = "TIPWATCH_DATA_DIR", "the data directory", data
    else:
        return None
    reason = exc.strerror or type(exc).__name__
    return ConfigError(f"{key}: cannot use {what} {directory}: {reason} ({exc.filename})")


def reset() -> None:
    """Forget cached settings (tests change the environment between runs)."""
    settings.cache_clear()
