"""Who may see the operator's pages: the archive is public, the outbox and status are not.

``/alerts``, ``/status`` and their APIs show every subscription's deliveries and the
installation's state: they need the operator's HTTP Basic credentials
(``TIPWATCH_OPERATOR_USER`` / ``TIPWATCH_OPERATOR_PASSWORD``), or a user name in the header
an authenticating reverse proxy sets (``TIPWATCH_AUTH_PROXY_HEADER``), believed only when the
request comes from one of ``TIPWATCH_TRUSTED_PROXIES``: anyone else could send that header.
With neither configured the pages are closed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from fastapi import HTTPException, Request

from config.settings import Settings

REALM = 'Basic realm="TIP Watch operator", charset="UTF-8"'


def trusted_proxy(host: str, settings: Settings) -> bool:
    """Whether ``host`` (an IP address) is one of ``TIPWATCH_TRUSTED_PROXIES``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for trusted in settings.trusted_proxies:
        try:
            if address in ipaddress.ip_network(trusted, strict=False):
                return True
        except ValueError:
            continue
    return False


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def operator(request: Request, settings: Settings) -> str:
    """The operator's name for this request, or HTTP 401 (with a Basic challenge)."""
    header = settings.auth_proxy_header
    if header and trusted_proxy(request.client.host if request.client else "", settings):
        user = request.headers.get(header, "").strip()
        if user:
            return user
    given = _basic(request)
    if settings.operator_password and given is not None:
        user_ok = hmac.compare_digest(given[0].encode(), settings.operator_user.encode())
        password_ok = hmac.compare_digest(given[1].encode(), settings.operator_password.encode())
        if user_ok and password_ok:
            return given[0]
    detail = (
        "operator credentials required"
        if settings.operator_password or header
        else "operator pages are closed: set TIPWATCH_OPERATOR_PASSWORD"
    )
    raise HTTPException(401, detail, headers={"WWW-Authenticate": REALM})
