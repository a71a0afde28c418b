"""Daily and weekly digests: one message listing every match since the last one.

A digest subscription's alerts stay ``pending`` in the outbox until its slot comes (the
configured hour, and weekday for weekly ones); then they are claimed like any delivery (a
digest left ``sending`` by a dead worker is taken again once ``notify_claim_lease`` has
passed) and, per endpoint, the alerts it has not yet received go out in one message. Each
endpoint's success is committed before the next one is tried, so a crash never resends a
digest to an endpoint that already accepted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from config.settings import Settings
from worker.alerts.deliver import (
    EndpointError,
    claim_alerts,
    endpoints,
    failure,
    finish_alerts,
    record_delivery,
    send,
)
from worker.alerts.render import Message, render_digest
from worker.dates import as_utc
from worker.storage.db import session_scope
from worker.storage.models import Alert, Subscription


def next_slot(delivery: str, after: datetime, settings: Settings) -> datetime:
    """The first digest time strictly after ``after``."""
    after = as_utc(after)
    slot = after.replace(hour=settings.digest_hour, minute=0, second=0, microsecond=0)
    if slot <= after:
        slot += timedelta(days=1)
    if delivery == "weekly":
        slot += timedelta(days=(settings.digest_weekday - slot.weekday()) % 7)
    return slot


def send_digests(engine: Engine, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Send every digest that is due; returns counts of digests sent and failed."""
    now = now or datetime.now(UTC)
    counts = {"sent": 0, "failed": 0}
    with session_scope(engine) as session:
        subscriptions = session.scalars(
            select(Subscription).where(
                Subscription.active.is_(True),
                Subscription.confirmed_at.is_not(None),
                Subscription.delivery.in_(("daily", "weekly")),
            )
        ).all()
        due = []
        for sub in subscriptions:
            last = session.scalar(
                select(func.max(Alert.sent_at)).where(Alert.subscription_id == sub.id)
            )
            if now >= next_slot(sub.delivery, last or sub.created_at, settings):
                due.append(sub.id)
    for subscription_id in due:
        for outcome in _send_one(engine, settings, subscription_id, now):
            counts[outcome] += 1
    return counts


@dataclass
class _Owed:
    """One endpoint's share of a digest: the alerts it has not received, as one message."""

    index: int
    url: str
    alert_ids: list[int]
    message: Message
    key: str


def _owed(
    engine: Engine, settings: Settings, subscription_id: int, claimed: list[int]
) -> list[_Owed]:
    with session_scope(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        alerts = list(
            session.scalars(
                select(Alert)
                .options(selectinload(Alert.document))
                .where(Alert.id.in_(claimed))
                .order_by(Alert.id)
            )
        )
        owed = []
        for index, url in enumerate(endpoints(subscription, settings)):
            those = [a for a in alerts if str(index) not in (a.deliveries or {})]
            if those:
                owed.append(
                    _Owed(
                        index,
                        url,
                        [a.id for a in those],
                        render_digest(subscription, those, settings),
                        f"digest-{subscription_id}-{those[0].id}-{those[-1].id}",
                    )
                )
        return owed


def _send_one(engine: Engine, settings: Settings, subscription_id: int, now: datetime) -> list[str]:
    lease = settings.notify_claim_lease
    claimed = claim_alerts(
        engine,
        Alert.subscription_id == subscription_id,
        lease=lease,
        now=now,
        poll_deadline=settings.poll_deadline,
    )
    if not claimed:
        return []
    outcomes = []
    errors: list[str] = []
    try:
        owed = _owed(engine, settings, subscription_id, claimed)
    except EndpointError as exc:  # retried at the next slot, then parked dead, with the reason
        owed, errors, outcomes = [], [str(exc)], ["failed"]
    for share in owed:
        result = send(share.url, share.message, key=share.key)
        if result.ok:
            record_delivery(engine, share.alert_ids, share.index)  # before the next send
            outcomes.append("sent")
        else:
            errors.append(failure(share.url, result))
            outcomes.append("failed")
    finish_alerts(engine, claimed, errors, settings, sent_at=now)
    return outcomes
