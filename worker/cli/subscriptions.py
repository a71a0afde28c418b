"""``tipwatch subscribe``, ``subscriptions`` and ``unsubscribe``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from worker.cli.common import (
    JsonOpt,
    app,
    console,
    engine,
    fail,
    iso,
    load_settings,
    print_json,
)

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
        raise fail(f"invalid query: {exc}", 2) from exc
    for url in notify:
        try:
            validate_notify_url(url)
        except ValueError as exc:
            raise fail(str(exc), 2) from exc
    settings = load_settings()
    try:
        with session_scope(engine(settings)) as session:
            add_subscription(session, name, query, list(notify))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    console.print(
        f"subscribed [bold]{name}[/bold]: {query} → " + ", ".join(redact_url(u) for u in notify)
    )


@app.command()
def subscriptions(as_json: JsonOpt = False) -> None:
    """List subscriptions (secrets in notification URLs are masked)."""
    from worker.notify import redact_url
    from worker.storage.db import session_scope
    from worker.storage.repo import list_subscriptions

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        rows: list[dict[str, Any]] = [
            {
                "name": s.name,
                "query": s.query,
                "active": s.active,
                "notify": [redact_url(u) for u in s.notify_urls],
                "created_at": iso(s.created_at),
            }
            for s in list_subscriptions(session)
        ]
    if as_json:
        print_json(rows)
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

    settings = load_settings()
    try:
        with session_scope(engine(settings)) as session:
            remove_subscription(session, name)
    except NotFound as exc:
        raise fail(str(exc)) from exc
    console.print(f"unsubscribed [bold]{name}[/bold]")
