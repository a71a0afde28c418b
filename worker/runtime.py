"""The process's settings and database engine, built once and shared by CLI, tasks and web."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from config.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@lru_cache(maxsize=1)
def settings() -> Settings:
    return get_settings()


def engine(current: Settings | None = None) -> Engine:
    from worker.storage.db import get_engine  # SQLAlchemy + Alembic: ~0.5 s, not for --help

    return get_engine((current or settings()).resolved_database_url)


def reset() -> None:
    """Forget cached settings (tests change the environment between runs)."""
    settings.cache_clear()
