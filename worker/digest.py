"""Daily and weekly digests: one message listing every match since the last one.

A digest subscription's alerts stay ``pending`` in the outbox until its slot comes (the
configured hour, and weekday for weekly ones); then, per endpoint, the alerts it has not yet
received go out in one message, and each alert records that endpoint as done.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from config.settings import Settings
from worker.dates import as_utc
from worker.notify import Message, redact_url, send, template_env
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


def render_digest(subscription: Subscription, alerts: list[Alert], settings: Settings) -> Message:
    env = template_env(settings)
    base = settings.web_base_url.rstrip("/")
    context: dict[str, Any] = {
        "subscription": subscription,
        "items": [
            {
                "document": a.document,
                "explanation": a.explanation or {"terms": []},
                "archive_url": f"{base}/documents/{a.document_id}",
            }
            for a in alerts
        ],
    }
    title = " ".join(env.get_template("digest_title.j2").render(context).split())
    return Message(
        title=title,
        text=env.get_template("digest.txt.j2").render(context),
        html=env.get_template("digest.html.j2").render(context),
        short=env.get_template("digest.txt.j2").render(context),
    )


def send_digests(engine: Engine, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Send every digest that is due; returns counts of digests sent and failed."""
    now = now or datetime.now(UTC)
    counts = {"sent": 0, "failed": 0}
    with session_scope(engine) as session:
        subscriptions = session.scalars(
            select(Subscription).where(
                Subscription.active.is_(True), Subscription.delivery.in_(("daily", "weekly"))
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


def _send_one(engine: Engine, settings: Settings, subscription_id: int, now: datetime) -> list[str]:
    with session_scope(engine) as session:
        claimed = (
            session.execute(
                update(Alert)
                .where(Alert.subscription_id == subscription_id, Alert.status == "pending")
                .values(status="sending", claimed_at=now, attempts=Alert.attempts + 1)
                .returning(Alert.id)
            )
            .scalars()
            .all()
        )
    if not claimed:
        return []
    outcomes = []
    with session_scope(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        alerts = list(
            session.scalars(select(Alert).where(Alert.id.in_(claimed)).order_by(Alert.id))
        )
        errors: list[str] = []
        for index, url in enumerate(subscription.notify_urls):
            owed = [a for a in alerts if str(index) not in (a.deliveries or {})]
            if not owed:
                continue
            message = render_digest(subscription, owed, settings)
            key = f"digest-{subscription_id}-{owed[0].id}-{owed[-1].id}"
            result = send(url, message, key=key)
            if result.ok:
                stamp = datetime.now(UTC).isoformat()
                for alert in owed:
                    alert.deliveries = {**(alert.deliveries or {}), str(index): stamp}
                outcomes.append("sent")
            else:
                errors.append(f"{redact_url(url)}: {result.log or 'delivery failed'}")
                outcomes.append("failed")
        for alert in alerts:
            if errors:
                parked = alert.attempts >= settings.notify_max_attempts
                alert.status = "dead" if parked else "pending"
                alert.last_error = "\n".join(errors)
            else:
                alert.status, alert.sent_at, alert.last_error = "sent", now, None
    return outcomes
