"""Shared pieces of the ``tipwatch`` command: the Typer apps, consoles, settings, output."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from config.settings import ConfigError, Settings
from worker import runtime
from worker.logs import configure_logging

app = typer.Typer(
    help="TIP Watch: watch anti-trafficking publications and alert subscribers.",
    no_args_is_help=True,
    add_completion=False,
)
archive_app = typer.Typer(help="Inspect the archive of fetched documents.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")
app.add_typer(db_app, name="db")

console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_settings() -> Settings:
    try:
        settings = runtime.settings()
        settings.source_list  # noqa: B018 - validate the sources file up front
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    # The CLI reports through its tables; log lines only for warnings unless asked for more.
    level = settings.log_level if "TIPWATCH_LOG_LEVEL" in os.environ else "WARNING"
    configure_logging(settings.model_copy(update={"log_level": level}))
    return settings


def engine(settings: Settings) -> Any:
    return runtime.engine(settings)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


STATUS_COLOURS = {
    "ok": "green",
    "sent": "green",
    "partial": "yellow",
    "pending": "yellow",
    "sending": "yellow",
    "failed": "red",
    "dead": "red",
}


def styled(status: str) -> str:
    """A poll or alert status in its colour (rich markup); unknown ones dimmed."""
    colour = STATUS_COLOURS.get(status, "dim")
    return f"[{colour}]{status}[/{colour}]"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)
