"""``tipwatch subscribe``, ``subscriptions`` (list, ``preview``) and ``unsubscribe``."""

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
    line,
    load_settings,
    print_json,
)

subscriptions_app = typer.Typer(
    help="List subscriptions; `subscriptions preview NAME` shows what they would match.",
    invoke_without_command=True,
)
app.add_typer(subscriptions_app, name="subscriptions")


@app.command()
def subscribe(
    name: str,
    query: Annotated[str, typer.Option("--query", "-q", help="What to look for (see README).")],
    notify: Annotated[
        list[str], typer.Option("--notify", "-n", help="An apprise URL (repeatable).")
    ],
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only documents of this source.")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Only documents in this language.")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only documents of this kind: pdf, html.")
    ] = None,
    thesaurus: Annotated[
        bool, typer.Option("--thesaurus", help="Also find EN↔FR equivalents of known terms.")
    ] = False,
    backfill: Annotated[
        bool, typer.Option("--backfill", help="Also alert on what the archive already holds.")
    ] = False,
    delivery: Annotated[
        str,
        typer.Option(help="immediate, or a daily / weekly digest (TIPWATCH_DIGEST_HOUR)."),
    ] = "immediate",
) -> None:
    """Create a subscription: alert NOTIFY URLs about new documents matching QUERY."""
    from worker.redact import redact_url
    from worker.storage.db import session_scope
    from worker.subscriptions import SubscriptionError, SubscriptionRequest, check, create

    request = SubscriptionRequest(
        query=query,
        notify_urls=tuple(notify),
        sources=tuple(source or ()),
        languages=tuple(language or ()),
        kinds=tuple(kind or ()),
        thesaurus=thesaurus,
        delivery=delivery,
    )
    try:
        check(request)
    except SubscriptionError as exc:
        raise fail(exc.for_option(), 2) from exc
    settings = load_settings()
    try:
        with session_scope(engine(settings)) as session:
            _, queued = create(session, name, request, backfill=backfill)
    except SubscriptionError as exc:
        raise fail(str(exc)) from exc
    urls = ", ".join(redact_url(u) for u in notify)
    console.print(line("subscribed ", (name, "bold"), f": {query} → {urls}"))
    if backfill:
        console.print(f"{queued} alert(s) queued for documents already archived")


@subscriptions_app.callback()
def subscriptions(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List subscriptions (secrets in notification URLs are masked)."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy import select

    from worker.storage.db import session_scope
    from worker.storage.models import Subscription
    from worker.subscriptions import describe

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        everyone = session.scalars(select(Subscription).order_by(Subscription.name))
        rows: list[dict[str, Any]] = [describe(s) for s in everyone]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Subscriptions")
    for column in ("name", "query", "options", "notify", "created"):
        table.add_column(column)
    for row in rows:
        options = [f"{k}: {', '.join(v)}" for k, v in row["filters"].items()]
        options += ["thesaurus"] if row["thesaurus"] else []
        notify = list(row["notify"])
        if row["channel"] != "operator":  # self-service: its owner, confirmed or not
            pending = "" if row["confirmed"] else " (awaiting confirmation)"
            notify.append(f"{row['channel']}: {row['owner']}{pending}")
        table.add_row(
            row["name"],
            row["query"],
            "\n".join(options),
            "\n".join(notify),
            (row["created_at"] or "")[:19],
        )
    console.print(table)


@subscriptions_app.command()
def preview(
    name: str,
    limit: Annotated[int, typer.Option(help="Show at most this many documents.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show what in the archive the subscription matches, and why, without alerting."""
    from worker.alerts.create import spec_of
    from worker.storage.db import session_scope
    from worker.storage.repo import NotFound, get_subscription
    from worker.subscriptions import preview as archive_preview

    settings = load_settings()
    rows: list[dict[str, Any]] = []
    try:
        with session_scope(engine(settings)) as session:
            subscription = get_subscription(session, name)
            for document, explanation in archive_preview(session, spec_of(subscription), limit):
                rows.append(
                    {
                        "document": document.id,
                        "title": document.title,
                        "kind": document.kind,
                        "language": document.language,
                        "source": document.source,
                        "archived_at": iso(document.archived_at),
                        "explanation": explanation,
                    }
                )
    except NotFound as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(line("nothing in the archive matches ", (name, "bold")))
        return
    for row in rows:
        console.print(
            line((f"#{row['document']}", "bold"), f" {row['title'] or ''} ({row['kind']})")
        )
        for term in row["explanation"]["terms"]:
            where = f" p. {','.join(map(str, term['pages'][:5]))}" if row["kind"] == "pdf" else ""
            console.print(f"  {term['term']} ×{term['count']}{where}")
            for snippet in term["snippets"][:1]:
                console.print(f"    {snippet['text']}", highlight=False)


@app.command()
def unsubscribe(name: str) -> None:
    """Delete a subscription and its alerts."""
    from worker.storage.db import session_scope
    from worker.storage.repo import NotFound, get_subscription
    from worker.subscriptions import remove

    settings = load_settings()
    try:
        with session_scope(engine(settings)) as session:
            remove(session, get_subscription(session, name))
    except NotFound as exc:
        raise fail(str(exc)) from exc
    console.print(line("unsubscribed ", (name, "bold")))


@subscriptions_app.command("test")
def test_message(name: str) -> None:
    """Send a test message to every URL of subscription NAME and show apprise's answer."""
    from markupsafe import escape

    from worker.alerts.deliver import EndpointError, endpoints, send
    from worker.alerts.render import Message
    from worker.redact import redact_url
    from worker.storage.db import session_scope
    from worker.storage.repo import NotFound, get_subscription

    settings = load_settings()
    try:
        with session_scope(engine(settings)) as session:
            subscription = get_subscription(session, name)
            if subscription.confirmed_at is None:
                raise fail(
                    f"subscription {name!r} awaits its owner's confirmation: nothing is sent "
                    "to an address before it confirms"
                )
            urls, query = endpoints(subscription, settings), subscription.query
    except (NotFound, EndpointError) as exc:
        raise fail(str(exc)) from exc
    if not urls:
        raise fail(f"subscription {name!r} has nowhere to send (no notification URL)")
    text = (
        f"This is a test from TIP Watch for the subscription {name!r} ({query}).\n"
        "Alerts about matching documents will arrive here."
    )
    message = Message(
        title=f"[TIP Watch] test message for {name}",
        text=text,
        html=f"<p>{escape(text)}</p>",
        short=text,
    )
    failed = 0
    for url in urls:
        result = send(url, message, key=f"test-{name}")
        mark = ("ok", "green") if result.ok else ("failed", "red")
        console.print(line(mark, f" {redact_url(url)}"))
        if result.log:
            console.print(result.log, highlight=False, style="dim")
        failed += not result.ok
    if failed:
        raise typer.Exit(1)
