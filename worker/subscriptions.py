"""Subscriptions as a service: the one place that checks, creates, lists, pauses and removes them.

The CLI (``tipwatch subscribe``), the web page (self-service by email) and the chat bot each
only parse their input and print the outcome; the rules (a valid query, notification URLs
apprise understands, the delivery modes, who may see what) live here, so the three channels
accept and refuse exactly the same things, with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.alerts.create import Explanation, archive_matches
from worker.alerts.deliver import validate_notify_url
from worker.dates import iso
from worker.match import QueryError, SubscriptionSpec, parse_query
from worker.redact import redact_url
from worker.storage.models import Alert, Document, Subscription

DELIVERY_MODES = ("immediate", "daily", "weekly")
KINDS = ("pdf", "html")
CHANNELS = ("operator", "email", "matrix")  # who made it: Subscription.channel


class SubscriptionError(ValueError):
    """A request the service refuses; the message is meant for the person who made it, and
    ``field`` names what was wrong (``query``, ``notify``, ``delivery``, ``kind``) so a form
    can show it beside that field and the CLI name its option."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def for_option(self) -> str:
        """The message as the CLI says it: ``--delivery must be one of …``."""
        return f"--{self.field} {self}" if self.field in ("delivery", "kind") else str(self)


@dataclass(frozen=True)
class SubscriptionRequest:
    """What a person asks for, whatever the channel."""

    query: str
    notify_urls: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    thesaurus: bool = False
    delivery: str = "immediate"

    @property
    def filters(self) -> dict[str, list[str]]:
        """Subscription.filters: only the non-empty lists, lower-cased."""
        given = {"sources": self.sources, "languages": self.languages, "kinds": self.kinds}
        return {k: [v.casefold() for v in vs] for k, vs in given.items() if vs}

    def spec(self, key: int | str = 0) -> SubscriptionSpec:
        """The request as the matcher sees it (to preview it before it is stored)."""
        return SubscriptionSpec(key, self.query, self.filters, self.thesaurus)


def check(request: SubscriptionRequest) -> None:
    """Raise :class:`SubscriptionError` unless the request can be stored as it is: a valid
    query (the message points at the mistake), URLs apprise knows, a known delivery mode and
    document kinds."""
    try:
        parse_query(request.query)
    except QueryError as exc:
        raise SubscriptionError(f"invalid query: {exc}", "query") from exc
    for url in request.notify_urls:
        try:
            validate_notify_url(url)
        except ValueError as exc:
            raise SubscriptionError(str(exc), "notify") from exc
    if request.delivery not in DELIVERY_MODES:
        raise SubscriptionError(f"must be one of {', '.join(DELIVERY_MODES)}", "delivery")
    if bad := [k for k in request.kinds if k.casefold() not in KINDS]:
        raise SubscriptionError(f"must be pdf or html, not {bad[0]!r}", "kind")


def create(
    session: Session,
    name: str,
    request: SubscriptionRequest,
    *,
    channel: str = "operator",
    owner: str | None = None,
    confirmed: bool = True,
    backfill: bool = False,
) -> tuple[Subscription, int]:
    """Store a checked request as subscription ``name``; returns it and the number of alerts
    queued by ``backfill`` (what the archive already matches). An unconfirmed subscription
    (an email address that has not clicked its link yet) is stored but never matched."""
    check(request)
    if channel not in CHANNELS:
        raise SubscriptionError(f"unknown channel {channel!r}")
    if session.scalar(select(Subscription.id).where(Subscription.name == name)) is not None:
        raise SubscriptionError(f"a subscription named {name!r} already exists")
    now = datetime.now(UTC)
    subscription = Subscription(
        name=name,
        query=request.query,
        notify_urls=list(request.notify_urls),
        filters=request.filters,
        thesaurus=request.thesaurus,
        delivery=request.delivery,
        channel=channel,
        owner=owner,
        created_at=now,
        confirmed_at=now if confirmed else None,
    )
    session.add(subscription)
    session.flush()
    queued = 0
    if backfill:
        from worker.alerts.create import backfill as queue_backfill

        queued = queue_backfill(session, subscription)
    return subscription, queued


def confirm(session: Session, subscription: Subscription) -> None:
    """Mark the subscription confirmed (double opt-in done): alerts start with publications
    first seen from now on."""
    if subscription.confirmed_at is None:
        subscription.confirmed_at = datetime.now(UTC)  # it alerts on what is first seen after
        session.flush()


def set_active(session: Session, subscription: Subscription, active: bool) -> None:
    """Pause (no new alerts) or resume a subscription."""
    subscription.active = active
    session.flush()


def remove(session: Session, subscription: Subscription) -> None:
    """Delete a subscription and its alerts."""
    session.query(Alert).filter(Alert.subscription_id == subscription.id).delete()
    session.delete(subscription)
    session.flush()


def owned_by(session: Session, channel: str, owner: str) -> list[Subscription]:
    """The subscriptions one email address or room made, oldest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.channel == channel, Subscription.owner == owner)
            .order_by(Subscription.id)
        )
    )


def describe(subscription: Subscription) -> dict[str, Any]:
    """A subscription for listings and JSON: secrets in notification URLs masked."""
    return {
        "id": subscription.id,
        "name": subscription.name,
        "query": subscription.query,
        "filters": subscription.filters or {},
        "thesaurus": bool(subscription.thesaurus),
        "delivery": subscription.delivery,
        "active": subscription.active,
        "channel": subscription.channel,
        "owner": subscription.owner,
        "confirmed": subscription.confirmed_at is not None,
        "notify": [redact_url(u) for u in subscription.notify_urls],
        "created_at": iso(subscription.created_at),
        "confirmed_at": iso(subscription.confirmed_at),
    }


def preview(
    session: Session, spec: SubscriptionSpec | SubscriptionRequest, limit: int = 20
) -> list[tuple[Document, Explanation]]:
    """What the archive already holds that the subscription (stored or only asked for)
    matches, newest first, with the explanation an alert would give; nothing is sent."""
    if isinstance(spec, SubscriptionRequest):
        check(spec)
        spec = spec.spec()
    found: list[tuple[Document, Explanation]] = []
    matches: Iterator[tuple[Document, Explanation]] = archive_matches(session, spec)
    for pair in matches:
        found.append(pair)
        if len(found) >= limit:
            break
    return found


def names_in_use(session: Session, names: Sequence[str]) -> set[str]:
    """Which of ``names`` are taken (to pick a free name for a self-service subscription)."""
    taken = session.scalars(select(Subscription.name).where(Subscription.name.in_(list(names))))
    return set(taken)
