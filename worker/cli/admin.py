"""``tipwatch db …`` and ``tipwatch web``."""

from __future__ import annotations

from typing import Annotated

import typer

from worker.cli.common import (
    app,
    console,
    db_app,
    engine,
    load_settings,
)

# -- maintenance ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done automatically on first use)."""
    from worker.storage.db import current_revision

    settings = load_settings()
    db = engine(settings)
    console.print(f"database at revision {current_revision(db)}")


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the read-only archive browser and JSON API."""
    import uvicorn

    from worker.web import create_app

    settings = load_settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
