"""``tipwatch alerts``: the outbox — what was sent, what waits, what is parked — and retries."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from worker.cli.common import (
    JsonOpt,
    app,
    console,
    engine,
    fail,
    load_settings,
    print_json,
    styled,
)
from worker.storage import ALERT_STATUSES as STATUSES

alerts_app = typer.Typer(
    help="The alert outbox: list, and retry parked alerts.", invoke_without_command=True
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(STATUSES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many alerts.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List alerts, newest first, with their delivery status and last error."""
    if ctx.invoked_subcommand is not None:
        return
    from worker.alerts.deliver import alert_summary
    from worker.storage.db import session_scope
    from worker.storage.repo import list_alerts

    if status is not None and status not in STATUSES:
        raise fail(f"unknown status {status!r} (one of {', '.join(STATUSES)})", 2)
    settings = load_settings()
    with session_scope(engine(settings)) as session:
        rows = [alert_summary(a) for a in list_alerts(session, status=status, limit=limit)]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Alerts")
    columns = (
        "id",
        "subscription",
        "publication",
        "docs",
        "status",
        "tries",
        "created",
        "last error",
    )
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["subscription"],
            f"{row['publication_id'] or ''}: {(row['publication'] or row['title'] or '')[:50]}",
            ", ".join(str(d) for d in row["documents"]) or str(row["document_id"]),
            styled(row["status"]),
            str(row["attempts"]),
            (row["created_at"] or "")[:19],
            (row["last_error"] or "")[:70],
        )
    console.print(table)


@alerts_app.command("retry")
def retry(
    alert_ids: Annotated[list[int] | None, typer.Argument(help="Alert ids to retry.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Retry every parked alert.")] = False,
    deliver: Annotated[bool, typer.Option(help="Deliver them now, in this process.")] = True,
) -> None:
    """Put parked or failed alerts back in the outbox (and deliver them now)."""
    from worker.alerts.deliver import deliver_alert, retry_alerts

    if not alert_ids and not dead:
        raise fail("name alert ids, or --dead for every parked alert", 2)
    settings = load_settings()
    db = engine(settings)
    count = retry_alerts(db, list(alert_ids or []), dead=dead)
    console.print(f"{count} alert{'s' if count != 1 else ''} queued again")
    if deliver:
        from worker.alerts.deliver import pending_alert_ids

        ids = set(alert_ids or []) or set(pending_alert_ids(db, settings))
        outcomes = [deliver_alert(db, settings, i) for i in sorted(ids)]
        console.print(", ".join(f"{outcomes.count(s)} {s}" for s in sorted(set(outcomes))))
