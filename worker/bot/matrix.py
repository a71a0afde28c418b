"""The Matrix side of the bot: log in, sync, join the rooms it is invited to, answer once.

Rules, each with the reason:

* It answers only in rooms it joined on an invitation (``matrix_room``): a room the account
  is in for another reason (it created it, an operator joined it) gets no answer. Invitations
  can be limited to users of some servers (``TIPWATCH_MATRIX_INVITE_SERVERS``).
* It never takes its own messages, notices (other bots), edits, or anything sent before it
  joined (a room's history) as commands.
* The sync token is stored after each batch is handled, so a restart resumes there: what was
  sent while it was down is answered, nothing is answered twice.
* A command is stored by event id with its reply, in the transaction that carries it out;
  the reply is sent afterwards with a transaction id derived from the event id, and marked
  answered. A crash in between re-sends the same reply at the next start (the homeserver
  drops a repeated transaction id from the same device), never carries the command out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from mautrix.client import ClientAPI
from mautrix.errors import MatrixError, MatrixInvalidToken
from mautrix.types import EventType, FilterID, RoomID, SyncToken, UserID
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import ConfigError, Settings
from worker.bot.commands import CHANNEL, Policy, Reply, handle, parse
from worker.redact import remember_secrets
from worker.storage.db import session_scope
from worker.storage.models import MatrixCommand, MatrixRoom, MatrixSync, Subscription
from worker.subscriptions import set_active

log = logging.getLogger(__name__)

DEVICE_NAME = "TIP Watch bot"
SYNC_TIMEOUT_MS = 30_000
MAX_BACKOFF = 60.0
# Only what the bot acts on: messages and memberships; no presence, receipts or typing.
SYNC_FILTER = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {
        "timeline": {"types": ["m.room.message", "m.room.member"], "limit": 50},
        "state": {"types": ["m.room.member"], "lazy_load_members": True},
        "ephemeral": {"types": []},
        "account_data": {"types": []},
    },
}
FAILED = Reply.of("Sorry, that command failed; the operator can see why in the bot's log.")
GREETING = Reply.of("TIP Watch is here: !help lists what it can do for this room.")


class BotError(Exception):
    """The bot cannot run (its account is refused): the command ends with this message."""


# -- reading a sync response (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    room_id: str
    inviter: str | None


def invites(sync: dict[str, Any], me: str) -> list[Invite]:
    """The rooms the bot is invited to, each with who invited it."""
    found = []
    for room_id, room in (sync.get("rooms", {}).get("invite") or {}).items():
        inviter = None
        for event in (room.get("invite_state") or {}).get("events") or []:
            if _membership(event, me) == "invite":
                inviter = event.get("sender")
        found.append(Invite(room_id, inviter))
    return found


def left(sync: dict[str, Any]) -> list[str]:
    """The rooms the bot left or was removed from."""
    return list(sync.get("rooms", {}).get("leave") or {})


def timelines(sync: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each joined room's new events, oldest first."""
    for room_id, room in (sync.get("rooms", {}).get("join") or {}).items():
        yield room_id, list((room.get("timeline") or {}).get("events") or [])


def server_of(user_id: str) -> str:
    """``example.org`` of ``@someone:example.org`` (lower-case; empty if none)."""
    return user_id.partition(":")[2].lower()


def invite_allowed(inviter: str | None, servers: list[str]) -> bool:
    """Whether to accept an invitation: anyone's, or only from users of ``servers``."""
    return not servers or (inviter is not None and server_of(inviter) in servers)


def command_body(event: dict[str, Any], me: str, joined_ms: int) -> str | None:
    """The text of a message that may be a command to the bot, or None: not a plain text
    message, the bot's own, an edit, or older than the bot's arrival in the room."""
    content = event.get("content") or {}
    if (
        event.get("type") != "m.room.message"
        or event.get("sender") == me
        or content.get("msgtype") != "m.text"
        or (content.get("m.relates_to") or {}).get("rel_type") == "m.replace"
        or not isinstance(event.get("origin_server_ts"), int)
        or event["origin_server_ts"] < joined_ms
    ):
        return None
    body = content.get("body")
    return body if isinstance(body, str) and parse(body) is not None else None


def _membership(event: dict[str, Any], me: str) -> str | None:
    if event.get("type") != "m.room.member" or event.get("state_key") != me:
        return None
    membership = (event.get("content") or {}).get("membership")
    return membership if isinstance(membership, str) else None


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def reply_content(reply: Reply, event_id: str | None = None) -> dict[str, Any]:
    """A notice (bots answer with notices, which other bots ignore) that mentions nobody,
    whatever it quotes (``@room`` in a query must not notify the room)."""
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": reply.text,
        "format": "org.matrix.custom.html",
        "formatted_body": reply.html,
        "m.mentions": {},
    }
    if event_id:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": event_id}}
    return content


def transaction_id(key: str) -> str:
    """The same for the same reply, so a re-sent reply is dropped by the homeserver."""
    return "tipwatch-" + hashlib.sha256(key.encode()).hexdigest()[:32]


# -- the bot ----------------------------------------------------------------------------------


class MatrixBot:
    """One bot account, its rooms and its commands; :meth:`run` until ``stop`` is set."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        problem = settings.matrix_problem()
        if problem is not None:
            raise ConfigError(problem)
        assert settings.matrix_homeserver is not None
        self.settings = settings
        self.engine = engine
        self.policy = Policy.from_settings(settings)
        self.password = (
            settings.matrix_password.get_secret_value() if settings.matrix_password else None
        )
        self.token = settings.matrix_token.get_secret_value() if settings.matrix_token else None
        remember_secrets(self.password, self.token)
        self._client: ClientAPI | None = None  # made in the event loop (aiohttp needs it)
        self.me = ""
        self.next_batch: str | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def client(self) -> ClientAPI:
        if self._client is None:
            assert self.settings.matrix_homeserver is not None
            self._client = ClientAPI(
                base_url=self.settings.matrix_homeserver, token=self.token or ""
            )
        return self._client

    async def login(self) -> str:
        """Log in (by token, or by password as the device it used before); returns its id."""
        try:
            if self.token:
                who = await self.client.whoami()
                self.me, device = who.user_id, who.device_id
            else:
                assert self.settings.matrix_user and self.password
                response = await self.client.login(
                    identifier=UserID(self.settings.matrix_user),
                    password=self.password,
                    device_name=DEVICE_NAME,
                    device_id=self._stored_device(self.settings.matrix_user),
                )
                self.me, device = response.user_id, response.device_id
        except MatrixError as exc:
            raise BotError(f"cannot log in to {self.settings.matrix_homeserver}: {exc}") from exc
        with session_scope(self.engine) as session:
            state = session.scalar(select(MatrixSync).where(MatrixSync.user_id == self.me))
            if state is None:
                state = MatrixSync(user_id=self.me)
                session.add(state)
            state.device_id = device or state.device_id
            self.next_batch = state.next_batch
        return self.me

    def _stored_device(self, user: str) -> str | None:
        with session_scope(self.engine) as session:
            for state in session.scalars(select(MatrixSync)):
                if state.user_id == user or state.user_id.startswith(f"@{user}:"):
                    return state.device_id
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Sync and answer until ``stop`` is set; network failures are retried with a growing
        delay, a refused login or token ends the run (:class:`BotError`)."""
        backoff = 1.0
        ready = False
        try:
            await self.login()
            await self.send_owed()  # replies a crash left unsent
            while not stop.is_set():
                syncing = asyncio.ensure_future(
                    self.client.sync(
                        since=SyncToken(self.next_batch) if self.next_batch else None,
                        timeout=0 if not ready else SYNC_TIMEOUT_MS,
                        filter_id=FilterID(_filter_json()),
                    )
                )
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({syncing, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if stop.is_set():
                    syncing.cancel()
                    break
                try:
                    data = syncing.result()
                except MatrixInvalidToken as exc:
                    raise BotError(f"the homeserver refused the bot's login: {exc}") from exc
                except (MatrixError, OSError, TimeoutError) as exc:
                    log.warning("matrix sync failed (%s); retrying in %.0f s", exc, backoff)
                    await _sleep(stop, backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                backoff = 1.0
                await self.handle_sync(data)
                if not ready:
                    ready = True
                    log.info("matrix bot %s ready in %d room(s)", self.me, len(self.rooms()))
        finally:
            await self.client.api.session.close()

    # -- one sync batch -----------------------------------------------------------------------

    async def handle_sync(self, data: dict[str, Any]) -> None:
        """Act on one sync response, then store where the next one starts. The very first
        sync of an account (no stored token) only accepts invitations: what it shows of the
        rooms' timelines is history."""
        first = self.next_batch is None
        for invite in invites(data, self.me):
            await self.on_invite(invite)
        for room_id in left(data):
            self.on_leave(room_id)
        if not first:
            for room_id, events in timelines(data):
                await self.on_timeline(room_id, events)
        self.next_batch = str(data.get("next_batch") or self.next_batch or "") or None
        with session_scope(self.engine) as session:
            state = session.scalar(select(MatrixSync).where(MatrixSync.user_id == self.me))
            if state is not None:
                state.next_batch = self.next_batch
                state.updated_at = datetime.now(UTC)

    async def on_invite(self, invite: Invite) -> None:
        room_id = RoomID(invite.room_id)
        if not invite_allowed(invite.inviter, self.settings.matrix_invite_servers):
            log.info("declining the invitation to %s from %s", room_id, invite.inviter)
            await self._quietly(self.client.leave_room(room_id, reason="not accepted here"))
            return
        # Recorded first: a crash after the join still leaves a room the bot answers in.
        with session_scope(self.engine) as session:
            room = session.scalar(select(MatrixRoom).where(MatrixRoom.room_id == room_id))
            if room is None:
                room = MatrixRoom(room_id=room_id)
                session.add(room)
            room.joined_at, room.inviter = datetime.now(UTC), invite.inviter
        try:
            await self.client.join_room_by_id(room_id)
        except MatrixError as exc:
            log.warning("cannot join %s (invited by %s): %s", room_id, invite.inviter, exc)
            self._forget(room_id)
            return
        log.info("joined %s, invited by %s", room_id, invite.inviter)
        await self._send(room_id, GREETING, transaction_id(f"greeting {room_id} {invite.inviter}"))

    def on_leave(self, room_id: str) -> None:
        """Removed from a room: it is forgotten, and its subscriptions paused (a new invitation
        and ``!resume`` bring them back)."""
        if self._forget(room_id):
            with session_scope(self.engine) as session:
                for subscription in session.scalars(
                    select(Subscription).where(
                        Subscription.channel == CHANNEL, Subscription.owner == room_id
                    )
                ):
                    set_active(session, subscription, False)
            log.info("left %s: its subscriptions are paused", room_id)

    def _forget(self, room_id: str) -> bool:
        with session_scope(self.engine) as session:
            room = session.scalar(select(MatrixRoom).where(MatrixRoom.room_id == room_id))
            if room is not None:
                session.delete(room)
            return room is not None

    async def on_timeline(self, room_id: str, events: list[dict[str, Any]]) -> None:
        with session_scope(self.engine) as session:
            room = session.scalar(select(MatrixRoom).where(MatrixRoom.room_id == room_id))
            joined_ms = _ms(room.joined_at) if room is not None else None
        if joined_ms is None:
            return  # never invited here: never answered
        for event in events:
            if _membership(event, self.me) == "join" and isinstance(
                event.get("origin_server_ts"), int
            ):
                # the homeserver's own time of the join: what came before it is history
                joined_ms = event["origin_server_ts"]
                self._joined(room_id, joined_ms)
                continue
            body = command_body(event, self.me, joined_ms)
            if body is not None and isinstance(event.get("event_id"), str):
                await self.answer(room_id, event["event_id"], str(event.get("sender")), body)

    def _joined(self, room_id: str, joined_ms: int) -> None:
        with session_scope(self.engine) as session:
            room = session.scalar(select(MatrixRoom).where(MatrixRoom.room_id == room_id))
            if room is not None:
                room.joined_at = datetime.fromtimestamp(joined_ms / 1000, UTC)

    async def answer(self, room_id: str, event_id: str, sender: str, body: str) -> None:
        """Carry out one command and answer it, once per event id. A command that fails is
        answered with an apology and recorded all the same: replayed, it would fail again."""
        word = body.split(maxsplit=1)[0][:30]

        def record(session: Session, reply: Reply) -> None:
            session.add(
                MatrixCommand(
                    event_id=event_id,
                    room_id=room_id,
                    sender=sender,
                    reply_text=reply.text,
                    reply_html=reply.html,
                )
            )
            session.flush()  # a second bot process that took it first: IntegrityError

        try:
            with session_scope(self.engine) as session:
                taken = select(MatrixCommand.id).where(MatrixCommand.event_id == event_id)
                if session.scalar(taken) is not None:
                    return
                reply = handle(session, room_id, body, self.policy)
                if reply is None:
                    return
                record(session, reply)
        except IntegrityError:
            return
        except Exception:  # the command's own failure (its changes are rolled back)
            log.exception("command %s in %s from %s failed", word, room_id, sender)
            try:
                with session_scope(self.engine) as session:
                    record(session, FAILED)
            except IntegrityError:
                return
        log.info("command %s in %s from %s", word, room_id, sender)
        await self.send_owed()

    async def send_owed(self) -> None:
        """Send every stored reply not yet accepted by the homeserver, oldest first."""
        with session_scope(self.engine) as session:
            owed = [
                (c.id, c.room_id, c.event_id, Reply(c.reply_text, c.reply_html))
                for c in session.scalars(
                    select(MatrixCommand)
                    .where(MatrixCommand.answered_at.is_(None))
                    .order_by(MatrixCommand.id)
                )
            ]
        for command_id, room_id, event_id, reply in owed:
            if await self._send(RoomID(room_id), reply, transaction_id(event_id), event_id):
                with session_scope(self.engine) as session:
                    command = session.get(MatrixCommand, command_id)
                    if command is not None:
                        command.answered_at = datetime.now(UTC)

    async def _send(
        self, room_id: RoomID, reply: Reply, txn_id: str, event_id: str | None = None
    ) -> bool:
        try:
            await self.client.send_message_event(
                room_id,
                EventType.ROOM_MESSAGE,
                cast(Any, reply_content(reply, event_id)),
                txn_id=txn_id,
            )
        except (MatrixError, OSError, TimeoutError) as exc:
            log.warning("cannot answer in %s: %s", room_id, exc)
            return False
        return True

    async def _quietly(self, call: Any) -> None:
        try:
            await call
        except (MatrixError, OSError, TimeoutError) as exc:
            log.warning("matrix request failed: %s", exc)

    def rooms(self) -> list[str]:
        with session_scope(self.engine) as session:
            return list(session.scalars(select(MatrixRoom.room_id).order_by(MatrixRoom.id)))


def _filter_json() -> str:
    return json.dumps(SYNC_FILTER, separators=(",", ":"))


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
