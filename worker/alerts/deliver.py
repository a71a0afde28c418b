"""The outbox: deliver alerts through apprise, once each, whatever crashes in between.

An alert row is claimed (``pending`` → ``sending``) in its own transaction before anything is
sent, every endpoint that accepted it is recorded at once, and only the endpoints still owed
are tried again, so retries, restarts and a second worker never send an alert twice. The
claim and record helpers here serve the digests too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import apprise
from sqlalchemy import ColumnElement, case, exists, func, select, update
from sqlalchemy.engine import Engine

from config.settings import Settings
from worker.alerts.render import Message, render
from worker.redact import EMAIL_SCHEMES, WEBHOOK_SCHEMES, redact_text, redact_url, remember
from worker.storage.db import session_scope
from worker.storage.lease import claim
from worker.storage.models import Alert, Document, SourceState, Subscription

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    ok: bool
    log: str


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


class EndpointError(Exception):
    """A subscription's endpoints cannot be built (its channel is not configured): the alert
    is not sent, and says why, until the operator fixes the settings."""


def endpoints(subscription: Subscription, settings: Settings) -> list[str]:
    """The apprise URLs a subscription's alerts and digests go to, in a fixed order (an
    alert's ``deliveries`` are recorded by index into this list).

    The operator's subscriptions name them (``--notify``). A self-service subscription's are
    built here from its owner and the settings, so that no server credential is copied into
    its row. Raises :class:`EndpointError` when its channel is not configured."""
    if subscription.channel == "matrix":
        return [matrix_endpoint(subscription.owner or "", settings)]
    if subscription.channel == "email":  # self-service by email
        from worker.email_channel import endpoint as email_endpoint

        try:
            return [email_endpoint(subscription, settings)]
        except RuntimeError as exc:  # no TIPWATCH_MAIL_URL: wait and say why, never drop
            raise EndpointError(str(exc)) from exc
    return list(subscription.notify_urls)


def matrix_endpoint(room_id: str, settings: Settings) -> str:
    """The apprise URL that posts in a Matrix room as the bot account (``matrixs://`` for an
    https homeserver). A room id without a server part (room version 12) is sent as it is
    (``hsreq=no``); a token goes in the query, where :func:`redact_url` masks it."""
    problem = settings.matrix_problem()
    if problem is not None:
        raise EndpointError(f"matrix room {room_id}: {problem}")
    assert settings.matrix_homeserver is not None
    server = urlsplit(settings.matrix_homeserver)
    scheme = "matrixs" if server.scheme == "https" else "matrix"
    query = ["hsreq=no"] if ":" not in room_id else []
    if settings.matrix_token is not None:
        userinfo = ""
        query.append(f"token={quote(settings.matrix_token.get_secret_value(), safe='')}")
    else:
        assert settings.matrix_user is not None and settings.matrix_password is not None
        password = quote(settings.matrix_password.get_secret_value(), safe="")
        userinfo = f"{quote(settings.matrix_user, safe='')}:{password}@"
    path = quote(room_id, safe="!:")
    return f"{scheme}://{userinfo}{server.netloc}/{path}" + (f"?{'&'.join(query)}" if query else "")


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


def failure(url: str, result: SendResult) -> str:
    """One line of an alert's ``last_error``: the endpoint (secrets masked) and apprise's log."""
    return f"{redact_url(url)}: {result.log or 'delivery failed'}"


# -- claim and record: the outbox's bookkeeping, for single alerts and digests alike ----------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def settled(now: datetime, poll_deadline: float) -> ColumnElement[bool]:
    """An alert is ready once the polls that find its publication's documents are over and
    none of its files waits for extraction: the message then names every language and file
    of an issue found together. A poll that started longer ago than ``poll_deadline`` seconds
    is over (it ended or died)."""
    file_pending = exists().where(
        Document.publication_id == Alert.publication_id, Document.extract_status == "pending"
    )
    started = SourceState.last_poll_started_at
    polling = exists().where(
        Document.publication_id == Alert.publication_id,
        SourceState.name == Document.source,
        started > func.coalesce(SourceState.last_poll_finished_at, EPOCH),
        started > now - timedelta(seconds=poll_deadline),
    )
    return ~file_pending & ~polling


def claim_alerts(
    engine: Engine,
    *where: ColumnElement[bool],
    lease: float,
    now: datetime,
    poll_deadline: float,
) -> list[int]:
    """Take the settled alerts matching ``where`` for this worker (``pending`` → ``sending``,
    one more attempt): those pending, and those left ``sending`` for longer than ``lease``
    seconds by a worker that died. Committed before anything is sent; returns the ids
    taken."""
    with session_scope(engine) as session:
        return claim(
            session,
            Alert,
            *where,
            settled(now, poll_deadline),
            Alert.status.in_(("pending", "sending")),
            free=Alert.status == "pending",
            since=Alert.claimed_at,
            lease=lease,
            now=now,
            values={"status": "sending", "attempts": Alert.attempts + 1},
        )


def record_delivery(engine: Engine, alert_ids: Sequence[int], index: int) -> None:
    """Record, committed at once, that endpoint ``index`` of the subscription accepted these
    alerts: no retry sends them there again."""
    stamp = datetime.now(UTC).isoformat()
    with session_scope(engine) as session:
        for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids))):
            alert.deliveries = {**(alert.deliveries or {}), str(index): stamp}


def finish_alerts(
    engine: Engine,
    alert_ids: Sequence[int],
    errors: Sequence[str],
    settings: Settings,
    sent_at: datetime,
) -> dict[int, str]:
    """End a delivery attempt: ``sent`` when no endpoint failed, else back to ``pending`` for a
    retry, or parked ``dead`` once out of attempts. Returns each alert's new status."""
    values: dict[str, Any]
    if errors:
        parked = Alert.attempts >= settings.notify_max_attempts
        values = {
            "status": case((parked, "dead"), else_="pending"),
            "last_error": "\n".join(errors),
        }
    else:
        values = {"status": "sent", "sent_at": sent_at, "last_error": None}
    with session_scope(engine) as session:
        rows = session.execute(
            update(Alert)
            .where(Alert.id.in_(alert_ids))
            .values(values)
            .returning(Alert.id, Alert.status)
        )
        return {alert_id: status for alert_id, status in rows}


# -- the outbox -------------------------------------------------------------------------------


def deliver_alert(engine: Engine, settings: Settings, alert_id: int) -> str:
    """Deliver one alert to every endpoint still owed it. Returns the alert's new status."""
    now = datetime.now(UTC)
    lease, deadline = settings.notify_claim_lease, settings.poll_deadline
    if not claim_alerts(engine, Alert.id == alert_id, lease=lease, now=now, poll_deadline=deadline):
        with session_scope(engine) as session:
            alert = session.get(Alert, alert_id)
            if alert is None:
                return "missing"
            unsettled = alert.status == "pending" and not session.scalar(
                select(settled(now, deadline)).where(Alert.id == alert_id)
            )
            # held: the end of the poll or extraction it waits for queues it again
            return "held" if unsettled else alert.status
    with session_scope(engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        try:
            urls, errors = endpoints(alert.subscription, settings), []
        except EndpointError as exc:  # retried, then parked dead, with the reason
            urls, errors = [], [str(exc)]
        done = dict(alert.deliveries or {})
        message = render(alert, settings)
    for index, url in enumerate(urls):
        if str(index) in done:
            continue
        result = send(url, message, key=f"alert-{alert_id}")
        if result.ok:
            record_delivery(engine, [alert_id], index)  # before the next send
        else:
            errors.append(failure(url, result))
    statuses = finish_alerts(engine, [alert_id], errors, settings, sent_at=datetime.now(UTC))
    status = statuses.get(alert_id, "missing")
    log.info("alert %s %s", alert_id, status, extra={"alert_id": alert_id})
    return status


def pending_alert_ids(
    engine: Engine,
    settings: Settings,
    *,
    source: str | None = None,
    publication_ids: Sequence[int] | None = None,
) -> list[int]:
    """Settled alerts owed an immediate delivery (digest subscriptions wait for their digest):
    all, those about a document of ``source``, or those of these publications."""
    statement = (
        select(Alert.id)
        .join(Subscription, Subscription.id == Alert.subscription_id)
        .where(
            Alert.status == "pending",
            Subscription.delivery == "immediate",
            settled(datetime.now(UTC), settings.poll_deadline),
        )
        .order_by(Alert.id)
    )
    if source is not None:
        statement = statement.where(
            Alert.publication_id.in_(
                select(Document.publication_id).where(Document.source == source)
            )
        )
    if publication_ids is not None:
        statement = statement.where(Alert.publication_id.in_(publication_ids))
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
    for alert_id in pending_alert_ids(engine, settings):
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
        "publication_id": alert.publication_id,
        "publication": alert.publication.title if alert.publication else None,
        "documents": [m.document_id for m in alert.matches],
        "status": alert.status,
        "attempts": alert.attempts,
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
        "sent_at": alert.sent_at.isoformat() if alert.sent_at else None,
        "last_error": redact_text(alert.last_error or "", alert.subscription.notify_urls) or None,
    }
