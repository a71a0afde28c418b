"""Shared pieces of the ``tipwatch`` command: the Typer apps, consoles, settings, output."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from config.settings import ConfigError, Settings
from worker import runtime
from worker.dates import iso  # noqa: F401  (re-exported for the commands)
from worker.logs import configure_logging


class TipwatchApp(typer.Typer):
    """The ``tipwatch`` command. A configuration error met anywhere in a command (a setting
    read late, an unreachable database, an archive directory that cannot be written) ends it
    with the one line ``configuration error: …`` and exit code 2, never a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            error = _as_config_error(exc)
            if error is None:
                raise
            raise SystemExit(config_exit(error).exit_code) from exc


def _as_config_error(exc: Exception) -> ConfigError | None:
    if isinstance(exc, ConfigError):
        return exc
    try:
        settings = runtime.settings()
    except ConfigError:
        return None
    return runtime.database_error(settings, exc) or runtime.directory_error(settings, exc)


app = TipwatchApp(
    help="TIP Watch: watch anti-trafficking publications and alert subscribers.",
    no_args_is_help=True,
    add_completion=False,
)
archive_app = typer.Typer(help="Inspect the archive of fetched documents.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")
app.add_typer(db_app, name="db")

# Titles, URLs, snippets and errors come from remote sites; names and queries from users. To
# rich they are data, never markup: a title holding ``[/b]`` or ``[link=javascript:…]`` must be
# printed as it is, not crash the command or hide text. So the consoles parse neither markup nor
# emoji codes (a string printed, or put in a table cell or title, shows literally), and the
# CLI's own colours are styles on ``Text``, assembled by ``line`` below.
console = Console(markup=False, emoji=False)
err = Console(stderr=True, markup=False, emoji=False)

Part = str | Text | tuple[str, str]


def line(*parts: Part) -> Text:
    """One line of output: a ``str`` part is shown literally, whatever brackets it holds; a
    ``(text, style)`` part is that text in that style (``("failed", "red")``)."""
    return Text.assemble(*parts)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_settings() -> Settings:
    try:
        settings = runtime.settings()
        settings.source_list  # noqa: B018 - validate the sources file up front
    except ConfigError as exc:
        raise config_exit(exc) from exc
    # The CLI reports through its tables; log lines only for warnings unless asked for more.
    level = settings.log_level if "TIPWATCH_LOG_LEVEL" in os.environ else "WARNING"
    configure_logging(settings.model_copy(update={"log_level": level}))
    return settings


def config_exit(exc: ConfigError) -> typer.Exit:
    """Print a configuration error on one line (never wrapped) and the exit to raise."""
    err.print(line(("configuration error:", "red"), f" {exc}"), soft_wrap=True)
    return typer.Exit(2)


def engine(settings: Settings) -> Any:
    try:
        return runtime.engine(settings)
    except Exception as exc:
        error = runtime.database_error(settings, exc, opening=True)
        if error is None:
            raise
        raise config_exit(error) from exc


def human_bytes(size: int) -> str:
    """1,234 B / 56 KiB / 7.8 MiB: a size at a glance."""
    if size < 10 * 1024:
        return f"{size:,} B"
    if size < 10 * 1024 * 1024:
        return f"{size / 1024:,.0f} KiB"
    return f"{size / 1024 / 1024:,.1f} MiB"


STATUS_COLOURS = {
    "ok": "green",
    "sent": "green",
    "partial": "yellow",
    "pending": "yellow",
    "sending": "yellow",
    "failed": "red",
    "dead": "red",
    "interrupted": "red",
    "running": "cyan",
}


def styled(status: str) -> Text:
    """A poll or alert status in its colour; unknown ones dimmed."""
    return Text(status, style=STATUS_COLOURS.get(status, "dim"))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(line(("error:", "red"), f" {message}"))
    return typer.Exit(code)
