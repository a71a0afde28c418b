"""``tipwatch poll``, ``sources`` and ``series``: run the pipeline and see how sources fare."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from config.settings import ConfigError
from worker.cli.common import (
    JsonOpt,
    app,
    console,
    engine,
    err,
    fail,
    human_bytes,
    line,
    load_settings,
    print_json,
    styled,
)

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
    from worker.alerts.deliver import deliver_pending
    from worker.alerts.digest import send_digests
    from worker.extract.job import extract_pending
    from worker.fetch import RobotsCache
    from worker.ingest.poll import poll_source
    from worker.ratelimit import make_pacer

    settings = load_settings()
    db = engine(settings)
    try:
        sources = (
            [settings.source(n) for n in source]
            if source
            else [s for s in settings.source_list if s.enabled]
        )
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
    # An unusable archive is the operator's to fix: one configuration error, not a failed
    # poll per source (a Celery poll reports it as the source's error instead).
    (settings.resolved_archive_dir / ".spool").mkdir(parents=True, exist_ok=True)
    pacer = make_pacer(settings)  # shared: sources on one host share its budget
    robots = RobotsCache()  # and its robots.txt, read once
    reports = []
    with Progress(
        SpinnerColumn(),
        # The URLs come from the sites: shown as they are, never read as markup.
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[url]}", style="dim", markup=False),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        overall = bar.add_task("sources", total=len(sources), url="")
        for src in sources:
            task = bar.add_task(src.name, total=None, url="")

            def progress(event: str, url: str, task: Any = task) -> None:
                bar.update(task, advance=1, url=url[-60:])

            reports.append(poll_source(db, settings, src, progress, pacer, robots=robots))
            bar.remove_task(task)
            bar.advance(overall)
    leftovers = extract_pending(db, settings)  # PDFs a Celery worker archived but never read
    delivered: dict[str, int] = {}
    if notify:
        delivered = deliver_pending(db, settings)
        digests = send_digests(db, settings)
        if any(digests.values()):
            delivered.update({f"digests {k}": v for k, v in digests.items() if v})
    extracted = [o.as_dict() for o in leftovers]
    if as_json:
        print_json(
            {"sources": [r.as_dict() for r in reports], "extracted": extracted, "alerts": delivered}
        )
        return
    table = Table(title="Poll results")
    columns = (
        "source",
        "status",
        "new",
        "changed",
        "unchanged",
        "not due",
        "failed",
        "skipped",
        "alerts",
        "requests",
        "304",
        "bytes",
    )
    for column in columns:
        table.add_column(column, justify="right" if column not in ("source", "status") else "left")
    for r in reports:
        table.add_row(
            r.source,
            styled(r.status),
            str(r.new),
            str(r.changed),
            str(r.unchanged),
            str(r.not_due),
            str(r.failed),
            str(r.skipped),
            str(r.alerts),
            str(r.requests),
            str(r.not_modified),
            human_bytes(r.bytes_received),
        )
    console.print(table)
    for r in reports:
        if r.error:
            console.print(line((f"{r.source} failed:", "red"), f" {r.error}"))
        for failure in r.failures[:10]:
            if not r.error or failure not in r.error:
                console.print(line((f"{r.source}:", "yellow"), f" {failure}"))
        if len(r.failures) > 10:
            more = f" … and {len(r.failures) - 10} more"
            console.print(line((f"{r.source}:", "yellow"), more))
        for warning in r.warnings:
            console.print(line((f"{r.source}: warning:", "yellow"), f" {warning}"))
        if r.baseline and r.status != "failed":
            console.print(
                line(
                    (f"{r.source}:", "cyan"),
                    f" baseline: {r.new} documents archived, no alerts (the source's first"
                    " poll; later polls alert on what is new, --backfill on the rest)",
                )
            )
    if extracted:
        alerts = sum(o.alerts for o in leftovers)
        console.print(f"extracted {len(extracted)} pending documents ({alerts} alerts)")
    if delivered:
        console.print("alerts: " + ", ".join(f"{n} {status}" for status, n in delivered.items()))


# -- sources ----------------------------------------------------------------------------------


@app.command()
def sources(as_json: JsonOpt = False) -> None:
    """List configured sources with their last poll status."""
    from worker.status import poll_state, poll_states
    from worker.storage.db import session_scope
    from worker.storage.repo import document_counts

    settings = load_settings()
    # a poll that started and never finished: interrupted, unless a worker holds its lock
    states, running = poll_states(engine(settings), settings.broker_url)
    with session_scope(engine(settings)) as session:
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
                **poll_state(state, running),
                "last_counts": state.last_counts if state else {},
            }
        )
    if as_json:
        print_json(rows)
        return
    table = Table(title="Sources")
    columns = ("name", "kind", "every", "documents", "last poll", "status")
    for column in (*columns, "requests / 304 / bytes", "not due", "last error"):
        table.add_column(column)
    for row in rows:
        status = row["last_status"] or "never polled"
        error = (row["last_error"] or "").splitlines()
        counts = row["last_counts"] or {}
        traffic = (
            f"{counts['requests']} / {counts['not_modified']} / "
            f"{human_bytes(counts['bytes_received'])}"
            if "requests" in counts
            else ""
        )
        table.add_row(
            row["name"],
            row["kind"],
            f"{row['interval_minutes']} min",
            str(row["documents"]),
            (row["last_poll"] or "-")[:19],
            styled(status),
            traffic,
            str(counts.get("not_due", "")),
            (error[0][:80] + (f" (+{len(error) - 1})" if len(error) > 1 else "")) if error else "",
        )
    console.print(table)


@app.command()
def series(as_json: JsonOpt = False) -> None:
    """Newsletter series: latest issue, its languages, and whether the next one is overdue."""
    from worker.newsletter import series_status
    from worker.storage.db import session_scope

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        rows = [s.as_dict() for s in series_status(session, settings)]
    if as_json:
        print_json(rows)
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
            line((f"overdue by {row['days_late']} days", "red"))
            if row["overdue"]
            else line(("on schedule", "green"))
            if row["latest_issue"]
            else line(("none seen", "dim"))
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
