"""The process's settings and database engine, built once and shared by CLI, tasks and web."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine

from config.settings import Settings, get_settings
from worker.storage.db import get_engine


@lru_cache(maxsize=1)
def settings() -> Settings:
    return get_settings()


def engine(current: Settings | None = None) -> Engine:
    return get_engine((current or settings()).resolved_database_url)


def reset() -> None:
    """Forget cached settings (tests change the environment between runs)."""
    settings.cache_clear()
