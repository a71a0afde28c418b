"""Throwaway databases for tests and benches: a SQLite file, or a PostgreSQL database created on
``TIPWATCH_TEST_PG``'s server and dropped afterwards (so two runs never share state)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from worker.storage.db import dispose_engines

PG_ADMIN = os.environ.get("TIPWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        with sa.create_engine(PG_ADMIN).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False


@contextmanager
def throwaway_database(
    dialect: str, directory: Path, prefix: str = "tipwatch"
) -> Iterator[str | None]:
    """A fresh database URL of ``dialect``, or None when PostgreSQL is unreachable."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if dialect == "sqlite":
        try:
            yield f"sqlite:///{directory / f'{name}.db'}"
        finally:
            dispose_engines()
        return
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        yield None
        return
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_for_test(dialect: str, directory: Path) -> Iterator[str]:
    """:func:`throwaway_database` for a test: an unreachable PostgreSQL fails the test on CI
    (where it must run) and skips it elsewhere."""
    with throwaway_database(dialect, directory) as url:
        if url is None:
            message = f"PostgreSQL is not reachable at {PG_ADMIN}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        yield url
