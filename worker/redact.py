"""Secrets out of everything TIP Watch shows or logs: one place for every redaction rule.

* :func:`redact_url` — a notification (apprise) URL fit to show: password, tokens, secret query
  values and chat services' path tokens replaced by ``***``.
* :func:`masked_url` — a service URL (broker, database, Redis) with only its password masked.
* :func:`redact_text` — a text (apprise's log of a delivery, an alert's error) without the
  secrets of the given URLs.
* :func:`redact_log` — any log text: credentials in URLs (``user:pass@``, ``?token=``, …) and
  every secret :func:`remember`-ed by this process (the notification URLs being delivered, the
  Matrix bot's credentials).
  :mod:`worker.logs` applies it to every record its handlers write, third-party ones included.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
EMAIL_SCHEMES = ("mailto", "mailtos")
WEBHOOK_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")

SECRET_PARAMS = re.compile(r"(?i)^(pass|password|token|key|apikey|secret|access_token|pw)$")
# apprise prefixes query keys: -name (a GET parameter), +name (a header), :name (payload)
_APPRISE_PREFIX = "-+:"
MIN_SECRET = 3  # shorter values would mask ordinary text


def _secret_key(key: str) -> bool:
    return bool(SECRET_PARAMS.match(unquote(key).lstrip(_APPRISE_PREFIX)))


def redact_url(url: str) -> str:
    """An apprise URL fit to show: password, tokens and secret query values replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(
        f"{k}=***" if _secret_key(k) else f"{k}={v}" if sep else k
        for k, sep, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    path = parts.path
    # Chat services put tokens in the path (tgram://bottoken/chat, slack://T/B/C, discord://id/token)
    if parts.scheme not in (*EMAIL_SCHEMES, *WEBHOOK_SCHEMES):
        netloc = re.sub(r"^[^@]{12,}$", MASK, netloc)
        path = re.sub(r"/[^/]{16,}", "/***", path)
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def masked_url(url: str) -> str:
    """A service URL (broker, database, Redis) fit to show: its password replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK
    if password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


_SPLIT = re.compile(r"([/:@?&=#])")


def _apprise_secrets(url: str) -> set[str]:
    """The values apprise itself masks in the URL (``url(privacy=True)``): plugin knowledge of
    which path parts are tokens (Telegram bot tokens, Slack and Discord webhook keys, …)."""
    try:
        import apprise

        client = apprise.Apprise()
        if not client.add(url):
            return set()
        plugin = client[0]
        plain, private = plugin.url(privacy=False), plugin.url(privacy=True)
    except Exception:  # a plugin bug must never stop a delivery or a log line
        return set()
    plain_parts, private_parts = _SPLIT.split(plain), _SPLIT.split(private)
    if len(plain_parts) != len(private_parts):
        return set()
    return {p for p, q in zip(plain_parts, private_parts, strict=True) if p != q}


def url_secrets(url: str, *, ask_apprise: bool = False) -> set[str]:
    """The secret values of a notification URL: its password, the values of secret query keys
    and, with ``ask_apprise``, what apprise masks in it; each as written and decoded."""
    try:
        parts = urlsplit(url)
        found = {parts.password or ""}
    except ValueError:
        return set()
    found |= {v for k, _, v in (p.partition("=") for p in parts.query.split("&")) if _secret_key(k)}
    if ask_apprise:
        found |= _apprise_secrets(url)
    found |= {unquote(s) for s in found}
    return {s for s in found if len(s) >= MIN_SECRET and MASK not in s}


def _replace(text: str, secrets: Iterable[str]) -> str:
    # the longest first, so that a secret containing another is masked whole
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
        encoded = quote(secret, safe="")
        if encoded != secret and encoded in text:
            text = text.replace(encoded, MASK)
    return text


def redact_text(text: str, urls: Iterable[str]) -> str:
    """Remove every secret of ``urls`` from a log text (apprise logs may echo them)."""
    secrets: set[str] = set()
    for url in urls:
        secrets |= url_secrets(url)
    return _replace(text, secrets)


# -- log lines --------------------------------------------------------------------------------

_remembered: set[str] = set()
_remembered_lock = threading.Lock()


def remember(*urls: str) -> None:
    """Mask the secrets of these notification URLs in every log line this process writes."""
    found: set[str] = set()
    for url in urls:
        found |= url_secrets(url, ask_apprise=True)
    if found - _remembered:
        with _remembered_lock:
            _remembered.update(found)


def remember_secrets(*values: str | None) -> None:
    """Mask these raw secrets (the Matrix bot's password and token) in every log line this
    process writes."""
    found = {v for v in values if v and len(v) >= MIN_SECRET}
    if found - _remembered:
        with _remembered_lock:
            _remembered.update(found)


_SECRET_NAME = r"[\w.-]*?(?:pass|passwd|password|pwd|pw|token|secret|key|signature|sig)"
_LOG_PATTERNS = (
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@?#'\"]*):[^\s@/?#'\"]+@"), r"\1:***@"),
    # ?token=…, &pass=…, access_token=…, -token=… (apprise), in a URL or a text
    (
        re.compile(rf"(?i)(?<![\w%])({_SECRET_NAME}=)(?!\*\*\*)[^\s&#;,'\"<>)\]}}]+"),
        r"\1***",
    ),
    # the same, URL-encoded inside another URL: token%3Dvalue
    (re.compile(rf"(?i)(?<![\w])({_SECRET_NAME}%3D)[^\s&%;,'\"<>)\]}}]+"), r"\1***"),
    # Authorization headers
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{8,}"), r"\1 ***"),
)


def redact_log(text: str) -> str:
    """A log text without credentials in URLs and without any remembered secret."""
    if _remembered:
        with _remembered_lock:
            remembered = tuple(_remembered)
        text = _replace(text, remembered)
    for pattern, replacement in _LOG_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
