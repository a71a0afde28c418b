"""The ``tipwatch`` command: poll, manage subscriptions, inspect the archive.

Every listing prints a table for people and, with ``--json``, JSON for scripts.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

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


def _settings() -> Settings:
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


def _engine(settings: Settings) -> Any:
    return runtime.engine(settings)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


# -- poll -------------------------------------------------------------------------------------


@app.command()
def poll(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Poll only this source (repeatable).")
    ] = None,
    notify: Annotated[bool, typer.Option(help="Deliver the alerts this poll creates.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Run one poll cycle in this process (no broker needed) and deliver the alerts."""
    from worker.notify import deliver_pending
    from worker.pipeline import poll_source
    from worker.ratelimit import make_pacer

    settings = _settings()
    engine = _engine(settings)
    try:
        sources = (
            [settings.source(n) for n in source]
            if source
            else [s for s in settings.source_list if s.enabled]
        )
    except ConfigError as exc:
        raise _fail(str(exc), 2) from exc
    pacer = make_pacer(settings)  # shared: sources on one host share its budget
    reports = []
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[url]}", style="dim"),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        overall = bar.add_task("sources", total=len(sources), url="")
        for src in sources:
            task = bar.add_task(src.name, total=None, url="")

            def progress(event: str, url: str, task: Any = task) -> None:
                bar.update(task, advance=1, url=url[-60:])

            reports.append(poll_source(engine, settings, src, progress, pacer))
            bar.remove_task(task)
            bar.advance(overall)
    delivered = deliver_pending(engine, settings) if notify else {}
    if as_json:
        _print_json({"sources": [r.as_dict() for r in reports], "alerts": delivered})
        return
    table = Table(title="Poll results")
    for column in ("source", "status", "new", "changed", "unchanged", "failed", "alerts"):
        table.add_column(column, justify="right" if column not in ("source", "status") else "left")
    for r in reports:
        style = {"ok": "green", "partial": "yellow", "failed": "red"}[r.status]
        table.add_row(
            r.source,
            f"[{style}]{r.status}[/{style}]",
            str(r.new),
            str(r.changed),
            str(r.unchanged),
            str(r.failed),
            str(r.alerts),
        )
    console.print(table)
    for r in reports:
        if r.error:
            console.print(f"[red]{r.source} failed:[/red] {r.error}")
        for failure in r.failures[:10]:
            if not r.error or failure not in r.error:
                console.print(f"[yellow]{r.source}:[/yellow] {failure}")
        if len(r.failures) > 10:
            console.print(f"[yellow]{r.source}:[/yellow] … and {len(r.failures) - 10} more")
    if delivered:
        console.print("alerts: " + ", ".join(f"{n} {status}" for status, n in delivered.items()))


# -- sources ----------------------------------------------------------------------------------


@app.command()
def sources(as_json: JsonOpt = False) -> None:
    """List configured sources with their last poll status."""
    from worker.storage.db import session_scope
    from worker.storage.repo import document_counts, source_states

    settings = _settings()
    with session_scope(_engine(settings)) as session:
        states = source_states(session)
        counts = document_counts(session)
    rows: list[dict[str, Any]] = []
    for src in settings.source_list:
        state = states.get(src.name)
        rows.append(
            {
                "name": src.name,
                "kind": src.kind,
                "title": src.title,
                "base_url": src.base_url,
                "enabled": src.enabled,
                "interval_minutes": src.interval_minutes,
                "documents": counts.get(src.name, 0),
                "last_poll": _iso(state.last_poll_finished_at) if state else None,
                "last_status": state.last_status if state else None,
                "last_error": state.last_error if state else None,
                "last_counts": state.last_counts if state else {},
            }
        )
    if as_json:
        _print_json(rows)
        return
    table = Table(title="Sources")
    for column in ("name", "kind", "every", "documents", "last poll", "status", "last error"):
        table.add_column(column)
    for row in rows:
        status = row["last_status"] or "never polled"
        style = {"ok": "green", "partial": "yellow", "failed": "red"}.get(status, "dim")
        error = (row["last_error"] or "").splitlines()
        table.add_row(
            row["name"],
            row["kind"],
            f"{row['interval_minutes']} min",
            str(row["documents"]),
            (row["last_poll"] or "-")[:19],
            f"[{style}]{status}[/{style}]",
            (error[0][:80] + (f" (+{len(error) - 1})" if len(error) > 1 else "")) if error else "",
        )
    console.print(table)


@app.command()
def series(as_json: JsonOpt = False) -> None:
    """Newsletter series: latest issue, its languages, and whether the next one is overdue."""
    from worker.newsletter import series_status
    from worker.storage.db import session_scope

    settings = _settings()
    with session_scope(_engine(settings)) as session:
        rows = [s.as_dict() for s in series_status(session, settings)]
    if as_json:
        _print_json(rows)
        return
    table = Table(title="Newsletter series")
    for column in (
        "series",
        "latest",
        "published",
        "languages",
        "issues",
        "next expected",
        "status",
    ):
        table.add_column(column)
    for row in rows:
        status = (
            f"[red]overdue by {row['days_late']} days[/red]"
            if row["overdue"]
            else "[green]on schedule[/green]"
            if row["latest_issue"]
            else "[dim]none seen[/dim]"
        )
        table.add_row(
            row["name"],
            f"n°{row['latest_issue']}" if row["latest_issue"] else "-",
            (row["latest_date"] or "-")[:10],
            ", ".join(row["languages"]),
            str(row["issues"]),
            (row["expected_by"] or "-")[:10],
            status,
        )
    console.print(table)


# -- subscriptions ----------------------------------------------------------------------------


@app.command()
def subscribe(
    name: str,
    query: Annotated[str, typer.Option("--query", "-q", help="What to look for (see README).")],
    notify: Annotated[
        list[str], typer.Option("--notify", "-n", help="An apprise URL (repeatable).")
    ],
) -> None:
    """Create a subscription: alert NOTIFY URLs about new documents matching QUERY."""
    from worker.match import QueryError, parse_query
    from worker.notify import redact_url, validate_notify_url
    from worker.storage.db import session_scope
    from worker.storage.repo import add_subscription

    try:
        parse_query(query)
    except QueryError as exc:
        raise _fail(f"invalid query: {exc}", 2) from exc
    for url in notify:
        try:
            validate_notify_url(url)
        except ValueError as exc:
            raise _fail(str(exc), 2) from exc
    settings = _settings()
    try:
        with session_scope(_engine(settings)) as session:
            add_subscription(session, name, query, list(notify))
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"subscribed [bold]{name}[/bold]: {query} → " + ", ".join(redact_url(u) for u in notify)
    )


@app.command()
def subscriptions(as_json: JsonOpt = False) -> None:
    """List subscriptions (secrets in notification URLs are masked)."""
    from worker.notify import redact_url
    from worker.storage.db import session_scope
    from worker.storage.repo import list_subscriptions

    settings = _settings()
    with session_scope(_engine(settings)) as session:
        rows: list[dict[str, Any]] = [
            {
                "name": s.name,
                "query": s.query,
                "active": s.active,
                "notify": [redact_url(u) for u in s.notify_urls],
                "created_at": _iso(s.created_at),
            }
            for s in list_subscriptions(session)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table(title="Subscriptions")
    for column in ("name", "query", "notify", "created"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["query"], "\n".join(row["notify"]), (row["created_at"] or "")[:19]
        )
    console.print(table)


@app.command()
def unsubscribe(name: str) -> None:
    """Delete a subscription and its alerts."""
    from worker.storage.db import session_scope
    from worker.storage.repo import NotFound, remove_subscription

    settings = _settings()
    try:
        with session_scope(_engine(settings)) as session:
            remove_subscription(session, name)
    except NotFound as exc:
        raise _fail(str(exc)) from exc
    console.print(f"unsubscribed [bold]{name}[/bold]")


# -- archive ----------------------------------------------------------------------------------


def _documents_table(title: str, rows: list[dict[str, Any]], extra: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("id", "source", "kind", "lang", "n°", "published", "title"):
        table.add_column(column)
    if extra:
        table.add_column(extra)
    for row in rows:
        cells = [
            str(row["id"]),
            row["source"],
            row["kind"],
            row["language"] or "",
            str(row["issue_number"] or ""),
            (row["published_at"] or "")[:10],
            (row["title"] or row["url"])[:70],
        ]
        if extra:
            cells.append(row.get(extra.lower(), ""))
        table.add_row(*cells)
    return table


@archive_app.command("list")
def archive_list(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many documents.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List archived documents, newest first."""
    from worker.storage.db import session_scope
    from worker.storage.repo import document_summary, list_documents

    settings = _settings()
    with session_scope(_engine(settings)) as session:
        rows = [document_summary(d) for d in list_documents(session, source=source, limit=limit)]
    if as_json:
        _print_json(rows)
    else:
        console.print(_documents_table(f"Archive ({len(rows)} shown)", rows))


@archive_app.command("search")
def archive_search(
    query: str,
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Full-text search over titles and text (accent- and case-insensitive)."""
    from worker.storage.db import session_scope
    from worker.storage.repo import document_summary, get_document
    from worker.storage.search import search

    settings = _settings()
    with session_scope(_engine(settings)) as session:
        rows = []
        for hit in search(session, query, limit):
            row = document_summary(get_document(session, hit.document_id))
            row["snippet"] = hit.snippet
            rows.append(row)
    if as_json:
        _print_json(rows)
    else:
        console.print(_documents_table(f"Search: {query} ({len(rows)} found)", rows, "Snippet"))


@archive_app.command("show")
def archive_show(
    document_id: int,
    text: Annotated[bool, typer.Option("--text", help="Also print the extracted text.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show one document: metadata, keywords, where it was found, alerts."""
    from worker.newsletter import same_issue
    from worker.storage.db import session_scope
    from worker.storage.repo import (
        NotFound,
        alerts_for_document,
        document_summary,
        get_document,
    )

    settings = _settings()
    with session_scope(_engine(settings)) as session:
        try:
            document = get_document(session, document_id)
        except NotFound as exc:
            raise _fail(str(exc)) from exc
        row = document_summary(document)
        row["keywords"] = document.keywords
        row["found_on"] = sorted({link.found_on or "" for link in document.links} - {""})
        row["urls"] = sorted({link.url for link in document.links})
        row["series"] = document.series
        row["same_issue"] = [
            {"id": other.id, "kind": other.kind, "language": other.language, "title": other.title}
            for other in same_issue(session, document)
        ]
        row["alerts"] = [
            {
                "subscription": a.subscription.name,
                "status": a.status,
                "terms": [t["term"] for t in a.explanation.get("terms", [])],
            }
            for a in alerts_for_document(session, document_id)
        ]
        if text:
            row["text_pages"] = [p.text for p in document.pages]
    if as_json:
        _print_json(row)
        return
    table = Table(show_header=False, title=f"Document {document_id}")
    table.add_column(style="bold")
    table.add_column()
    for key in (
        "title",
        "source",
        "kind",
        "language",
        "issue_number",
        "published_at",
        "archived_at",
        "url",
        "canonical_url",
        "size_bytes",
        "pages",
        "version",
        "content_sha256",
        "extract_error",
    ):
        if row.get(key) not in (None, ""):
            table.add_row(key, str(row[key]))
    table.add_row("keywords", ", ".join(row["keywords"]))
    table.add_row("found on", "\n".join(row["found_on"]))
    if row["same_issue"]:
        table.add_row(
            "same issue",
            "\n".join(
                f"{o['id']}: {o['kind']} {o['language'] or '?'} — {o['title'] or ''}"
                for o in row["same_issue"]
            ),
        )
    table.add_row(
        "alerts",
        "\n".join(
            f"{a['subscription']}: {a['status']} ({', '.join(a['terms'])})" for a in row["alerts"]
        ),
    )
    console.print(table)
    if text:
        for number, page in enumerate(row["text_pages"], start=1):
            console.rule(f"page {number}")
            console.print(page, markup=False, highlight=False)


# -- maintenance ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done automatically on first use)."""
    from worker.storage.db import current_revision

    settings = _settings()
    engine = _engine(settings)
    console.print(f"database at revision {current_revision(engine)}")


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the read-only archive browser and JSON API."""
    import uvicorn

    from worker.web import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


if __name__ == "__main__":
    app()
