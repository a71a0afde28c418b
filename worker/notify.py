"""Stage 6: deliver alerts from the outbox through apprise, once each.

An alert row is claimed (``pending`` → ``sending``) in its own transaction before anything is
sent, every endpoint that accepted it is recorded at once, and only the endpoints still owed
are tried again, so retries, restarts and a second worker never send an alert twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import apprise
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from config.settings import CONFIG_DIR, Settings
from worker.redact import EMAIL_SCHEMES, WEBHOOK_SCHEMES, redact_text, redact_url, remember
from worker.storage.db import session_scope
from worker.storage.models import Alert, Subscription

log = logging.getLogger(__name__)


@dataclass
class Message:
    title: str
    text: str
    html: str
    short: str


@dataclass
class SendResult:
    ok: bool
    log: str


# -- rendering --------------------------------------------------------------------------------


def _highlight(text: str) -> Markup:
    """Turn the matcher's «term» marks into <mark> tags, escaping everything else."""
    return Markup(re.sub(r"«(.*?)»", r"<mark>\1</mark>", str(escape(text))))


def template_env(settings: Settings) -> Environment:
    loaders = []
    if settings.templates_dir:
        loaders.append(FileSystemLoader(str(settings.templates_dir)))
    loaders.append(FileSystemLoader(str(CONFIG_DIR / "templates")))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
    )
    env.filters["highlight"] = _highlight
    return env


def render(alert: Alert, settings: Settings) -> Message:
    env = template_env(settings)
    try:
        source_title = settings.source(alert.document.source).title or alert.document.source
    except Exception:
        source_title = alert.document.source
    context: dict[str, Any] = {
        "subscription": alert.subscription,
        "document": alert.document,
        "explanation": alert.explanation or {"terms": []},
        "source_title": source_title,
        "archive_url": f"{settings.web_base_url.rstrip('/')}/documents/{alert.document_id}",
    }
    title = " ".join(env.get_template("alert_title.j2").render(context).split())
    return Message(
        title=title,
        text=env.get_template("alert.txt.j2").render(context),
        html=env.get_template("alert.html.j2").render(context),
        short=env.get_template("alert_short.txt.j2").render(context),
    )


# -- sending ----------------------------------------------------------------------------------


def validate_notify_url(url: str) -> None:
    """Raise ValueError unless apprise knows how to send to ``url``."""
    remember(url)  # apprise's debug log echoes the URL
    if not apprise.Apprise().add(url):
        raise ValueError(f"apprise does not understand the URL {redact_url(url)!r}")


HEADER_SCHEMES = (*EMAIL_SCHEMES, *WEBHOOK_SCHEMES)
IDEMPOTENCY_HEADER = "X-TIPWatch-Alert"


def with_idempotency_key(url: str, key: str) -> str:
    """Add an ``X-TIPWatch-Alert`` header (apprise's ``+Header=value`` syntax) to email and
    webhook URLs: a message re-sent after a crash carries the same key, so a receiver can
    drop the duplicate."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in HEADER_SCHEMES:
        return url
    extra = f"+{IDEMPOTENCY_HEADER}={quote(key, safe='')}"
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def send(url: str, message: Message, key: str | None = None) -> SendResult:
    """Send to one apprise URL: HTML by email (apprise adds the text part), the full text to
    webhooks, and the short form to chat services."""
    remember(url)  # apprise's and urllib3's debug logs echo the URL's secrets
    client = apprise.Apprise()
    if not client.add(with_idempotency_key(url, key) if key else url):
        return SendResult(False, f"invalid notification URL {redact_url(url)}")
    scheme = urlsplit(url).scheme.lower()
    if scheme in EMAIL_SCHEMES:
        body, body_format = message.html, apprise.NotifyFormat.HTML
    elif scheme in WEBHOOK_SCHEMES:
        body, body_format = message.text, apprise.NotifyFormat.TEXT
    else:
        body, body_format = message.short, apprise.NotifyFormat.TEXT
    with apprise.LogCapture(level=logging.INFO) as output:
        try:
            ok = bool(client.notify(body=body, title=message.title, body_format=body_format))
        except Exception as exc:  # a plugin bug must not lose the alert
            ok = False
            output.write(f"{type(exc).__name__}: {exc}\n")
        text = output.getvalue()
    return SendResult(bool(ok), redact_text(text.strip(), [url]))


# -- the outbox -------------------------------------------------------------------------------


def _claim(engine: Engine, alert_id: int, lease: float) -> bool:
    """Take the alert for this worker; a claim older than ``lease`` belonged to a dead one."""
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=lease)
    with session_scope(engine) as session:
        result = session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .where(
                or_(
                    Alert.status == "pending",
                    (Alert.status == "sending") & (Alert.claimed_at < stale),
                )
            )
            .values(status="sending", claimed_at=now, attempts=Alert.attempts + 1)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def deliver_alert(engine: Engine, settings: Settings, alert_id: int) -> str:
    """Deliver one alert to every endpoint still owed it. Returns the alert's new status."""
    if not _claim(engine, alert_id, settings.notify_claim_lease):
        with session_scope(engine) as session:
            alert = session.get(Alert, alert_id)
            return alert.status if alert else "missing"
    with session_scope(engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        urls = list(alert.subscription.notify_urls)
        done = dict(alert.deliveries or {})
        message = render(alert, settings)
        attempts = alert.attempts
    errors = []
    for index, url in enumerate(urls):
        if str(index) in done:
            continue
        result = send(url, message, key=f"alert-{alert_id}")
        if result.ok:
            done[str(index)] = datetime.now(UTC).isoformat()
            with session_scope(engine) as session:  # record each success before the next send
                session.execute(update(Alert).where(Alert.id == alert_id).values(deliveries=done))
        else:
            errors.append(f"{redact_url(url)}: {result.log or 'delivery failed'}")
    if errors:
        status = "dead" if attempts >= settings.notify_max_attempts else "pending"
        values: dict[str, Any] = {"status": status, "last_error": "\n".join(errors)}
    else:
        status = "sent"
        values = {"status": status, "sent_at": datetime.now(UTC), "last_error": None}
    with session_scope(engine) as session:
        session.execute(update(Alert).where(Alert.id == alert_id).values(**values))
    log.info("alert %s %s", alert_id, status, extra={"alert_id": alert_id})
    return status


def pending_alert_ids(engine: Engine, document_ids: Sequence[int] | None = None) -> list[int]:
    """Alerts owed an immediate delivery (digest subscriptions wait for their digest), all or
    those of the given documents."""
    statement = (
        select(Alert.id)
        .join(Subscription, Subscription.id == Alert.subscription_id)
        .where(Alert.status == "pending", Subscription.delivery == "immediate")
        .order_by(Alert.id)
    )
    if document_ids is not None:
        if not document_ids:
            return []
        statement = statement.where(Alert.document_id.in_(document_ids))
    with session_scope(engine) as session:
        return list(session.scalars(statement))


def retry_alerts(engine: Engine, ids: list[int] | None = None, dead: bool = False) -> int:
    """Put parked (dead) or failed alerts back in the queue with a fresh attempt budget."""
    statement = update(Alert).values(status="pending", attempts=0, claimed_at=None)
    if ids:
        statement = statement.where(Alert.id.in_(ids), Alert.status.in_(("dead", "pending")))
    elif dead:
        statement = statement.where(Alert.status == "dead")
    else:
        return 0
    with session_scope(engine) as session:
        return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def deliver_pending(engine: Engine, settings: Settings) -> dict[str, int]:
    """Deliver every pending alert in this process (the broker-less path)."""
    counts: dict[str, int] = {}
    for alert_id in pending_alert_ids(engine):
        status = deliver_alert(engine, settings, alert_id)
        counts[status] = counts.get(status, 0) + 1
    return counts


def alert_summary(alert: Alert) -> dict[str, Any]:
    """An outbox row fit to show: its error text has the endpoints' secrets removed."""
    return {
        "id": alert.id,
        "subscription": alert.subscription.name,
        "document_id": alert.document_id,
        "title": alert.document.title,
        "status": alert.status,
        "attempts": alert.attempts,
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
        "sent_at": alert.sent_at.isoformat() if alert.sent_at else None,
        "last_error": redact_text(alert.last_error or "", alert.subscription.notify_urls) or None,
    }
