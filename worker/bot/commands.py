"""Chat commands as text in, reply out: what ``!subscribe`` and the others do in a room.

No Matrix here: :func:`handle` takes a room id, a message body and a database session, carries
the command out through :mod:`worker.subscriptions` (the rules the CLI and the web page obey)
and returns the reply, so every command is testable against a real database without a
homeserver. A room sees and changes only its own subscriptions. Queries, titles and snippets
are untrusted text: the reply's HTML escapes them, and its plain text is never markup.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from worker.storage.models import Subscription
from worker.subscriptions import (
    SubscriptionError,
    SubscriptionRequest,
    check,
    create,
    names_in_use,
    owned_by,
    preview,
    remove,
    set_active,
)

CHANNEL = "matrix"
MAX_QUERY_CHARS = 1000  # a longer query is refused (a message may hold 64 KiB)
PREFIX = "!"
LANGUAGES = {"en": "English", "fr": "French"}


@dataclass(frozen=True)
class Pre:
    """A preformatted block of a reply: a query's error pointer must keep its columns."""

    text: str


Part = str | Pre


@dataclass(frozen=True)
class Reply:
    """A reply as plain text (the message ``body``) and as escaped HTML (``formatted_body``)."""

    text: str
    html: str

    @classmethod
    def of(cls, *parts: Part) -> Reply:
        """Join lines and preformatted blocks; every character of them is shown as written."""
        text = "\n".join(p.text if isinstance(p, Pre) else p for p in parts)
        html = "".join(
            f"<pre><code>{escape(p.text)}</code></pre>"
            if isinstance(p, Pre)
            else f"{escape(p)}<br>"
            for p in parts
        )
        return cls(text, html.removesuffix("<br>"))


@dataclass(frozen=True)
class Policy:
    """What the operator allows in chat (from the settings)."""

    self_service: bool = True
    max_subscriptions: int = 10
    web_base_url: str = "http://localhost:8000"
    preview_limit: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            self_service=settings.self_service_matrix,
            max_subscriptions=settings.matrix_max_subscriptions,
            web_base_url=settings.web_base_url.rstrip("/"),
        )


@dataclass(frozen=True)
class Command:
    name: str  # lower-case, without the prefix
    argument: str  # the rest of the message, stripped


def parse(body: str) -> Command | None:
    """The command a message gives, or None when it is not one of the bot's (other bots in
    the room may use ``!`` too: unknown commands are left alone)."""
    found = re.match(r"\s*!(\w+)(?:\s+(.*))?\s*$", body, re.DOTALL)
    if found is None or found[1].lower() not in HANDLERS:
        return None
    return Command(found[1].lower(), (found[2] or "").strip())


Handler = Callable[[Session, str, str, Policy], Reply]


def handle(session: Session, room_id: str, body: str, policy: Policy) -> Reply | None:
    """Carry out the command in ``body`` for ``room_id``; its reply, or None if the message
    is not a command."""
    command = parse(body)
    if command is None:
        return None
    return HANDLERS[command.name](session, room_id, command.argument, policy)


# -- the commands -----------------------------------------------------------------------------


def _help(session: Session, room_id: str, argument: str, policy: Policy) -> Reply:
    lines = [
        "TIP Watch watches anti-trafficking publications and posts alerts in this room.",
        "!subscribe <query> — alert this room about new documents matching the query,"
        ' e.g. !subscribe "forced criminality" OR "délinquance forcée"',
        "!preview <query> — what the archive already holds that the query matches, and why",
        "!list — this room's subscriptions",
        "!pause N / !resume N — stop or restart the alerts of subscription N",
        "!unsubscribe N — delete subscription N",
        "!help — this text",
        'Queries: words, "exact phrases", AND, OR, NOT, parentheses, prefix*.',
    ]
    if not policy.self_service:
        lines.append("New subscriptions by chat are switched off by the operator.")
    return Reply.of(*lines)


def _subscribe(session: Session, room_id: str, argument: str, policy: Policy) -> Reply:
    if not policy.self_service:
        return Reply.of(
            "Subscribing by chat is switched off by the operator of this TIP Watch;"
            " !list, !pause and !unsubscribe still work."
        )
    request, refusal = _request(argument, "!subscribe")
    if refusal is not None:
        return refusal
    assert request is not None
    count = session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.channel == CHANNEL, Subscription.owner == room_id)
    )
    if (count or 0) >= policy.max_subscriptions:
        return Reply.of(
            f"This room has {count} subscriptions, the most it may have"
            f" ({policy.max_subscriptions}): !unsubscribe one first."
        )
    subscription, _ = create(
        session,
        f"matrix-new-{secrets.token_hex(8)}",
        request,
        channel=CHANNEL,
        owner=room_id,
    )
    # named by its number, which the room uses in !pause, !unsubscribe (and alert titles show)
    name = f"matrix-{subscription.id}"
    if not names_in_use(session, [name]):
        subscription.name = name
        session.flush()
    return Reply.of(
        f"Subscribed #{subscription.id}: {request.query}",
        "New documents that match will be announced in this room."
        f" !preview {request.query} shows what the archive already holds.",
    )


def _preview(session: Session, room_id: str, argument: str, policy: Policy) -> Reply:
    request, refusal = _request(argument, "!preview")
    if refusal is not None:
        return refusal
    assert request is not None
    found = preview(session, request, limit=policy.preview_limit + 1)
    if not found:
        return Reply.of(f"Nothing in the archive matches {request.query} yet.")
    more = len(found) > policy.preview_limit
    parts: list[Part] = [
        f"In the archive, {'more than ' if more else ''}"
        f"{min(len(found), policy.preview_limit)} document(s) match {request.query}:"
    ]
    for document, explanation in found[: policy.preview_limit]:
        language = LANGUAGES.get(document.language or "", document.language or "?")
        url = f"{policy.web_base_url}/documents/{document.id}"
        parts.append(f"• {document.title or url} ({language} {document.kind.upper()}) — {url}")
        for term in explanation.get("terms", [])[:3]:
            pages = term.get("pages") or []
            where = f" p. {','.join(map(str, pages[:3]))}" if document.kind == "pdf" else ""
            snippets = term.get("snippets") or []
            snippet = f": {' '.join(snippets[0]['text'].split())}" if snippets else ""
            parts.append(f'   "{term["term"]}" ×{term["count"]}{where}{snippet}')
    return Reply.of(*parts)


def _list(session: Session, room_id: str, argument: str, policy: Policy) -> Reply:
    mine = owned_by(session, CHANNEL, room_id)
    if not mine:
        return Reply.of("This room has no subscriptions yet: !subscribe <query> makes one.")
    lines = [f"This room's subscriptions ({len(mine)} of at most {policy.max_subscriptions}):"]
    lines += [f"#{s.id} {s.query}{'' if s.active else ' (paused)'}" for s in mine]
    return Reply.of(*lines)


def _by_number(
    action: Callable[[Session, Subscription], str], usage: str
) -> Callable[[Session, str, str, Policy], Reply]:
    """A command on one of the room's subscriptions, named by its number (``12`` or ``#12``);
    another room's number gets the same answer as one that does not exist."""

    def command(session: Session, room_id: str, argument: str, policy: Policy) -> Reply:
        number = re.fullmatch(r"#?(\d{1,9})", argument)
        if number is None:
            return Reply.of(f"Usage: {usage} N, where N is a number that !list shows.")
        subscription = session.scalar(
            select(Subscription).where(
                Subscription.id == int(number[1]),
                Subscription.channel == CHANNEL,
                Subscription.owner == room_id,
            )
        )
        if subscription is None:
            return Reply.of(f"This room has no subscription #{number[1]}: !list shows them.")
        return Reply.of(action(session, subscription))

    return command


def _pause(session: Session, subscription: Subscription) -> str:
    set_active(session, subscription, False)
    return (
        f"Paused #{subscription.id}: {subscription.query} (!resume {subscription.id} restarts it)"
    )


def _resume(session: Session, subscription: Subscription) -> str:
    set_active(session, subscription, True)
    return f"Resumed #{subscription.id}: {subscription.query}"


def _unsubscribe(session: Session, subscription: Subscription) -> str:
    number, query = subscription.id, subscription.query
    remove(session, subscription)
    return f"Unsubscribed #{number}: {query}. No more alerts for it in this room."


def _request(argument: str, command: str) -> tuple[SubscriptionRequest | None, Reply | None]:
    """The subscription request a query makes, or the reply refusing it (the same message and
    error pointer as ``tipwatch subscribe``)."""
    if not argument:
        return None, Reply.of(f'Usage: {command} <query>, e.g. {command} "forced criminality"')
    if len(argument) > MAX_QUERY_CHARS:
        return None, Reply.of(f"That query is too long (at most {MAX_QUERY_CHARS} characters).")
    request = SubscriptionRequest(query=argument)
    try:
        check(request)
    except SubscriptionError as exc:
        message, _, pointer = str(exc).partition("\n")
        return None, Reply.of(message, Pre(pointer)) if pointer else Reply.of(message)
    return request, None


HANDLERS: dict[str, Handler] = {
    "help": _help,
    "subscribe": _subscribe,
    "preview": _preview,
    "list": _list,
    "pause": _by_number(_pause, "!pause"),
    "resume": _by_number(_resume, "!resume"),
    "unsubscribe": _by_number(_unsubscribe, "!unsubscribe"),
}
