"""The email channel of self-service subscriptions: where their messages go, and the
confirmation email and tokens of double opt-in.

A self-service subscription stores only its owner's address: the SMTP server and its
credentials come from ``TIPWATCH_MAIL_URL`` when a message is sent, so no row copies a
secret. Every alert and digest to an address carries ``List-Unsubscribe`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), so a mail client can offer
its own unsubscribe button, which POSTs to the signed link from outside any browser.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apprise
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from worker.alerts.render import template_env
from worker.dates import as_utc
from worker.redact import redact_text, remember
from worker.signing import new_token, token_hash, unsubscribe_link
from worker.storage.models import EmailToken, Subscription

log = logging.getLogger(__name__)

CONFIRM = "confirm"


def mail_endpoint(settings: Settings, address: str, headers: dict[str, str] | None = None) -> str:
    """``TIPWATCH_MAIL_URL`` addressed to ``address`` (any ``to=`` in it replaced), with extra
    headers in apprise's ``+Name=value`` syntax."""
    if not settings.mail_url:
        raise RuntimeError("TIPWATCH_MAIL_URL is not set: self-service email cannot be sent")
    parts = urlsplit(settings.mail_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "to"]
    query.append(("to", address))
    query += [(f"+{name}", value) for name, value in (headers or {}).items()]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="@")))


def unsubscribe_headers(settings: Settings, subscription_id: int) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe headers for one subscription's messages."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_link(settings, subscription_id)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def endpoint(subscription: Subscription, settings: Settings) -> str:
    """Where an email subscription's alerts and digests go (deliver.endpoints)."""
    assert subscription.owner, "an email subscription has an owner address"
    return mail_endpoint(
        settings, subscription.owner, unsubscribe_headers(settings, subscription.id)
    )


# -- double opt-in ----------------------------------------------------------------------------


class TokenProblem(ValueError):
    """A confirmation link that opens nothing: ``reason`` is unknown, expired or used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def issue_confirm_token(session: Session, settings: Settings, subscription: Subscription) -> str:
    """A new single-use confirmation token for the subscription; only its hash is stored."""
    token = new_token()
    now = datetime.now(UTC)
    session.add(
        EmailToken(
            token_sha256=token_hash(token),
            purpose=CONFIRM,
            owner=subscription.owner or "",
            subscription_id=subscription.id,
            created_at=now,
            expires_at=now + timedelta(hours=settings.confirm_link_hours),
        )
    )
    session.flush()
    return token


def use_confirm_token(session: Session, token: str, *, spend: bool) -> Subscription:
    """The subscription a confirmation token is for; with ``spend``, the token is used up.
    Raises :class:`TokenProblem` for a token that is unknown, expired or already used."""
    row = session.scalar(
        select(EmailToken).where(
            EmailToken.token_sha256 == token_hash(token), EmailToken.purpose == CONFIRM
        )
    )
    if row is None or row.subscription_id is None:
        raise TokenProblem("unknown")
    if row.used_at is not None:
        raise TokenProblem("used")
    if as_utc(row.expires_at) < datetime.now(UTC):
        raise TokenProblem("expired")
    subscription = session.get(Subscription, row.subscription_id)
    if subscription is None:
        raise TokenProblem("unknown")
    if spend:
        row.used_at = datetime.now(UTC)
        session.flush()
    return subscription


def confirmations_sent(session: Session, owner: str, since: datetime) -> int:
    """How many confirmation emails went to ``owner`` since then (the per-address limit)."""
    return int(
        session.scalar(
            select(func.count()).where(
                EmailToken.owner == owner,
                EmailToken.purpose == CONFIRM,
                EmailToken.created_at >= since,
            )
        )
        or 0
    )


def pending_confirmations(session: Session) -> int:
    """Email subscriptions waiting for their address to confirm (``tipwatch status``)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Subscription.channel == "email", Subscription.confirmed_at.is_(None)
            )
        )
        or 0
    )


@dataclass
class Sent:
    ok: bool
    log: str


def send_confirmation(
    settings: Settings, subscription: Subscription, confirm_url: str, manage_url: str
) -> Sent:
    """Email the address its confirmation link: nothing else is ever sent before it clicks."""
    assert subscription.owner
    env = template_env(settings)
    context = {
        "subscription": subscription,
        "confirm_url": confirm_url,
        "manage_url": manage_url,
        "hours": settings.confirm_link_hours,
    }
    title = " ".join(env.get_template("confirm_title.j2").render(context).split())
    html = env.get_template("confirm.html.j2").render(context)
    url = mail_endpoint(settings, subscription.owner)
    remember(url)
    client = apprise.Apprise()
    if not client.add(url):
        return Sent(False, "TIPWATCH_MAIL_URL is not an email URL apprise understands")
    with apprise.LogCapture(level=logging.INFO) as output:
        try:
            ok = bool(client.notify(body=html, title=title, body_format=apprise.NotifyFormat.HTML))
        except Exception as exc:  # an SMTP or plugin failure is reported, not raised
            ok = False
            output.write(f"{type(exc).__name__}: {exc}\n")
        text = output.getvalue()
    result = Sent(ok, redact_text(text.strip(), [url]))
    if not ok:
        log.warning("confirmation email to subscription %s failed: %s", subscription.id, result.log)
    return result
