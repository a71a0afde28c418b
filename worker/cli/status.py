"""``tipwatch status``: queues, last polls, the outbox and late newsletters at a glance."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from worker.cli.common import (
    JsonOpt,
    app,
    console,
    engine,
    line,
    load_settings,
    print_json,
    styled,
)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show broker queue lengths, each source's last poll, alerts by status, overdue series."""
    from worker.status import collect_status

    settings = load_settings()
    report = collect_status(engine(settings), settings)
    if as_json:
        print_json(report)
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    broker = report["broker"]
    if broker["reachable"]:
        queues = ", ".join(f"{name} {n}" for name, n in broker["queues"].items())
        console.print(f"broker {broker['url']}: queued {queues}")
    elif broker["reachable"] is False:
        console.print(line((f"broker {broker['url']}: {broker['error']}", "red")))
    else:
        console.print(line((f"broker {broker['url']}: {broker['error']}", "dim")))

    table = Table(title="Sources")
    for column in ("name", "documents", "last poll", "status", "failed URLs", "last error"):
        table.add_column(column)
    for row in report["sources"]:
        state = row["last_status"] or "never polled"
        error = (row["last_error"] or "").splitlines()
        table.add_row(
            row["name"],
            str(row["documents"]),
            (row["last_poll"] or "-")[:19],
            styled(state),
            str(row["failed"]),
            error[0][:80] if error else "",
        )
    console.print(table)

    extraction = report["extraction"]
    console.print(
        f"documents awaiting extraction: {extraction['pending']}, "
        f"archived with an extraction error: {extraction['errors']}"
    )
    alerts = report["alerts"]
    console.print("alerts: " + ", ".join(f"{n} {status}" for status, n in alerts.items()))
    pending = report["subscriptions"]["pending_confirmation"]
    console.print(f"email subscriptions awaiting confirmation: {pending}")
    for series in report["series"]:
        if series["overdue"]:
            late = f"{series['name']}: next issue overdue by {series['days_late']} days"
            console.print(line((late, "red"), f" (latest n°{series['latest_issue']})"))
        elif series["latest_issue"]:
            console.print(f"{series['name']}: on schedule (latest n°{series['latest_issue']})")
        else:
            console.print(line((f"{series['name']}: no issue seen yet", "dim")))
