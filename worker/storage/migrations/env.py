"""Alembic environment: runs on the connection handed over by ``worker.storage.db``."""

from alembic import context
from sqlalchemy import Connection, create_engine

from worker.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed over by worker.storage.db.upgrade
        _migrate(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as conn:
        _migrate(conn)
        conn.commit()


run()
