"""Signed, expiring links and hashed tokens: what a subscriber's email links carry.

A signed value is ``payload.signature``: the payload (purpose, value, expiry) in base64url, and
an HMAC-SHA256 of it under the server's secret key, so a link cannot be forged or moved to
another purpose, and says itself when it stops working. Random tokens (a confirmation link)
are stored only as their SHA-256: a copy of the database opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import Settings

MANAGE = "manage"  # purposes: a link signed for one never opens another
UNSUBSCRIBE = "unsubscribe"


class BadSignature(ValueError):
    """The link was altered, made for another purpose, or signed with another key."""


class Expired(ValueError):
    """The link was genuine but its time is over."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, payload: str) -> str:
    key = hashlib.sha256(f"tipwatch:{purpose}:{secret}".encode()).digest()
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def sign(secret: str, purpose: str, value: Any, max_age: float, now: float | None = None) -> str:
    """``value`` (JSON-able) signed for ``purpose``, valid for ``max_age`` seconds."""
    expires = int((now if now is not None else time.time()) + max_age)
    payload = _b64(json.dumps([value, expires], separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, purpose, payload)}"


def unsign(secret: str, purpose: str, signed: str, now: float | None = None) -> Any:
    """The value ``signed`` carries; :class:`BadSignature` or :class:`Expired` otherwise."""
    payload, _, signature = signed.partition(".")
    if not payload or not hmac.compare_digest(signature, _mac(secret, purpose, payload)):
        raise BadSignature("this link is not valid")
    try:
        value, expires = json.loads(_unb64(payload))
    except (ValueError, TypeError) as exc:
        raise BadSignature("this link is not valid") from exc
    if (now if now is not None else time.time()) > expires:
        raise Expired("this link has expired")
    return value


def new_token() -> str:
    """A random token for a link (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def keyed_hash(secret: str, value: str) -> str:
    """A value (a client's IP address) kept only as a keyed hash, to be counted, not read."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def _secret(settings: Settings) -> str:
    if not settings.secret_key:
        raise RuntimeError("TIPWATCH_SECRET_KEY is not set: email links cannot be signed")
    return settings.secret_key


def _link(settings: Settings, path: str) -> str:
    return f"{settings.web_base_url.rstrip('/')}{path}"


def manage_link(settings: Settings, owner: str) -> str:
    """The page where an email address sees and edits its own subscriptions (and no other)."""
    days = settings.manage_link_days
    return _link(settings, f"/manage/{sign(_secret(settings), MANAGE, owner, days * 86400)}")


def unsubscribe_link(settings: Settings, subscription_id: int) -> str:
    """One subscription's unsubscribe URL: a page, and the RFC 8058 one-click POST target.
    It lasts as long as a manage link: mail clients offer it long after the message came."""
    days = settings.manage_link_days
    signed = sign(_secret(settings), UNSUBSCRIBE, subscription_id, days * 86400)
    return _link(settings, f"/unsubscribe/{signed}")


def verify(settings: Settings, purpose: str, signed: str) -> Any:
    """The value a link of ``purpose`` carries (:class:`BadSignature`, :class:`Expired`)."""
    return unsign(_secret(settings), purpose, signed)
