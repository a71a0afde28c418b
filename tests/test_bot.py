"""The Matrix bot against a real homeserver (Synapse on loopback) and the replica: a room
invites it, subscribes, gets its alerts, unsubscribes and gets no more; rooms it was not
invited to get no answer; a restart answers what came while it was down, and nothing twice;
the operator's switches hold. The bot runs as compose's ``bot`` service runs it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.conftest import BIN, ROOT, Tipwatch, make_env
from tests.matrix_server import BOT_USER, Homeserver
from tests.replica import Replica
from tests.test_celery_e2e import service, wait_until
from worker.storage.db import dispose_engines, get_engine, session_scope
from worker.storage.models import MatrixCommand, MatrixRoom, Subscription

EN_TEXT = (
    "Forced criminality is on the rise in South-East Europe.\n\n"
    "Victims of forced criminality are punished instead of protected."
)
QUERY = '"forced criminality"'
READY = "ready in"
QUIET = 4.0  # seconds without an answer that count as no answer


def bot_command() -> list[str]:
    """The compose service's command, run from this venv."""
    argv = [
        str(a)
        for a in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["bot"][
            "command"
        ]
    ]
    assert argv == ["tipwatch", "bot"], argv
    return [str(BIN / argv[0]), *argv[1:]]


@pytest.fixture
def chat(tmp_path: Path, replica: Replica, homeserver: Homeserver) -> Iterator[Tipwatch]:
    """TIP Watch on a replica of its own, with the bot account of the homeserver."""
    data_dir = tmp_path / "data"
    env = make_env(
        data_dir,
        replica,
        TIPWATCH_MATRIX_HOMESERVER=homeserver.base_url,
        TIPWATCH_MATRIX_USER=BOT_USER,
        TIPWATCH_MATRIX_PASSWORD=homeserver.bot_password,
    )
    del env["TIPWATCH_QUIET_FIRST_POLL"]  # the default: the first poll is a quiet baseline
    yield Tipwatch(data_dir, env)
    dispose_engines()


@contextmanager
def running_bot(tipwatch: Tipwatch, log: Path, **extra: str) -> Iterator[Any]:
    with service(bot_command(), {**tipwatch.env, **extra}, log, READY, timeout=90) as proc:
        yield proc
    assert proc.returncode == 0, log.read_text()
    assert "stopped" in log.read_text()


def replies(homeserver: Homeserver, room: str) -> dict[str, list[str]]:
    """The bot's answers in a room, by the event id of the message they answer."""
    found: dict[str, list[str]] = {}
    for event in homeserver.messages(room):
        content = event.get("content", {})
        target = content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
        if event.get("sender") == homeserver.user_id(BOT_USER) and target:
            found.setdefault(target, []).append(str(content.get("body")))
    return found


def ask(homeserver: Homeserver, room: str, body: str, timeout: float = 60) -> str:
    """Say ``body`` in the room as the reader and wait for the bot's one answer."""
    event_id = homeserver.say(room, body)
    (answer,) = wait_until(lambda: replies(homeserver, room).get(event_id), timeout, body)
    return str(answer)


def invite_bot(homeserver: Homeserver, name: str) -> str:
    room = homeserver.reader_room(name, invite=(BOT_USER,))
    wait_until(lambda: homeserver.membership(room, BOT_USER) == "join", 60, "the bot to join")
    wait_until(lambda: any("!help" in b for b in homeserver.bodies(room)), 30, "the greeting")
    return room


def alert_bodies(homeserver: Homeserver, room: str) -> list[str]:
    return [b for b in homeserver.bodies(room) if "[TIP Watch]" in b]


def poll(tipwatch: Tipwatch) -> dict[str, Any]:
    (source,) = tipwatch.json("poll", "--source", "onu-vienne")["sources"]
    assert source["status"] == "ok", source
    return dict(source)


def test_a_room_subscribes_gets_its_alert_and_unsubscribes(
    chat: Tipwatch, replica: Replica, homeserver: Homeserver, tmp_path: Path
) -> None:
    poll(chat)  # the baseline: the archive holds the back catalogue, nobody is alerted
    stranger = homeserver.create_room("bot-was-not-invited")  # the bot account is in it
    lonely = homeserver.reader_room("no bot here")
    log = tmp_path / "bot.log"
    with running_bot(chat, log):
        room = invite_bot(homeserver, "analysts")
        subscribed = ask(homeserver, room, f"!subscribe {QUERY}")
        assert subscribed.startswith("Subscribed #"), subscribed
        number = subscribed.split("#", 1)[1].split(":", 1)[0]
        assert f"#{number} {QUERY}" in ask(homeserver, room, "!list")

        # A new issue on the replica: its alert is posted in the room, by the bot's account.
        replica.publish_issue(24, dt.date(2026, 10, 1), en_text=EN_TEXT, fr_text="La traite.")
        poll(chat)
        assert [a["status"] for a in chat.json("alerts")] == ["sent"], chat.json("alerts")
        (alert,) = wait_until(lambda: alert_bodies(homeserver, room), 30, "the alert")
        assert f"matrix-{number}" in alert and "n°24" in alert, alert
        assert '"forced criminality"' in alert and "http://tipwatch.test/documents/" in alert

        preview = ask(homeserver, room, f"!preview {QUERY}")
        assert "n°24" in preview and '"forced criminality" ×' in preview, preview

        # Commands where the bot was not invited get no answer, even from its own account's
        # room; a later command in the invited room is answered, so the bot did see them.
        asked = [homeserver.say(stranger, "!list"), homeserver.say(lonely, "!help")]
        assert ask(homeserver, room, "!help").startswith("TIP Watch watches")
        time.sleep(QUIET)
        assert not replies(homeserver, stranger) and not replies(homeserver, lonely)
        assert all(e not in replies(homeserver, room) for e in asked)

        unsubscribed = ask(homeserver, room, f"!unsubscribe {number}")
        assert unsubscribed.startswith(f"Unsubscribed #{number}"), unsubscribed
        replica.publish_issue(25, dt.date(2026, 11, 1), en_text=EN_TEXT, fr_text="La traite.")
        poll(chat)
        time.sleep(QUIET)
        assert len(alert_bodies(homeserver, room)) == 1  # nothing about n°25
        assert chat.json("alerts") == []  # its alerts went with it; none made for n°25

    # Down: a command waits for the bot; restarted, it answers that one, and none again.
    while_down = homeserver.say(room, "!list")
    before = replies(homeserver, room)
    assert while_down not in before
    with running_bot(chat, tmp_path / "bot-again.log"):
        (answer,) = wait_until(
            lambda: replies(homeserver, room).get(while_down), 60, "the answer to !list"
        )
        assert answer.startswith("This room has no subscriptions"), answer
        assert ask(homeserver, room, "!list").startswith("This room has no subscriptions")
        assert ask(homeserver, room, "!subscribe trafficking").startswith("Subscribed #")
        time.sleep(QUIET)
        # Removed from the room: the room is forgotten, its subscriptions paused.
        homeserver.kick(room, BOT_USER)
        wait_until(
            lambda: "subscriptions are paused" in (tmp_path / "bot-again.log").read_text(),
            30,
            "the bot to notice",
        )
    after = replies(homeserver, room)
    assert all(len(bodies) == 1 for bodies in after.values()), after
    assert {e: b for e, b in after.items() if e in before} == before

    engine = get_engine(chat.settings().resolved_database_url)
    with session_scope(engine) as session:
        rooms = list(session.scalars(select(MatrixRoom.room_id)))
        commands = list(session.scalars(select(MatrixCommand)))
        (kept,) = session.scalars(select(Subscription)).all()
    assert rooms == [] and kept.owner == room and not kept.active
    assert {c.event_id for c in commands} == set(after)
    assert all(c.answered_at is not None for c in commands)
    text = log.read_text()
    assert homeserver.bot_password not in text and "joined" in text
    for args in (("alerts", "--json"), ("subscriptions", "--json"), ("status", "--json")):
        assert homeserver.bot_password not in chat.run(*args).stdout


def test_the_operator_switches_hold(chat: Tipwatch, homeserver: Homeserver, tmp_path: Path) -> None:
    # Self-service off: the bot answers, and refuses to subscribe.
    with running_bot(chat, tmp_path / "off.log", TIPWATCH_SELF_SERVICE_MATRIX="false"):
        room = invite_bot(homeserver, "switched off")
        refused = ask(homeserver, room, f"!subscribe {QUERY}")
        assert "switched off" in refused, refused
        assert ask(homeserver, room, "!list").startswith("This room has no subscriptions")
    engine = get_engine(chat.settings().resolved_database_url)
    with session_scope(engine) as session:
        assert session.scalars(select(Subscription)).all() == []

    # Invitations only from another server's users: the reader's is declined.
    with running_bot(chat, tmp_path / "servers.log", TIPWATCH_MATRIX_INVITE_SERVERS="example.org"):
        room = homeserver.reader_room("from localhost", invite=(BOT_USER,))
        wait_until(
            lambda: homeserver.membership(room, BOT_USER) == "leave", 60, "the bot to decline"
        )
        homeserver.say(room, "!help")
        time.sleep(QUIET)
        assert not replies(homeserver, room)


def test_a_refused_login_ends_the_bot_with_the_reason(
    chat: Tipwatch, homeserver: Homeserver
) -> None:
    wrong = "not-the-password-at-all"
    result = Tipwatch(chat.data_dir, {**chat.env, "TIPWATCH_MATRIX_PASSWORD": wrong}).run(
        "bot", check=False
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"cannot log in to {homeserver.base_url}" in result.stderr, result.stderr
    assert wrong not in result.stdout + result.stderr
    assert "Unclosed" not in result.stderr  # its HTTP session was closed


def test_bot_without_settings_says_what_is_missing(tmp_path: Path) -> None:
    tipwatch = Tipwatch(tmp_path / "data", make_env(tmp_path / "data", None))
    result = tipwatch.run("bot", check=False)
    assert result.returncode == 2
    assert "TIPWATCH_MATRIX_HOMESERVER" in result.stderr, result.stderr


# -- reading sync responses (no homeserver) ---------------------------------------------------

ME = "@tipwatch:localhost"


def message(body: str, sender: str = "@analyst:localhost", ts: int = 2000, **content: Any) -> dict:
    return {
        "type": "m.room.message",
        "event_id": f"$e{ts}",
        "sender": sender,
        "origin_server_ts": ts,
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def test_only_new_plain_messages_of_others_are_commands() -> None:
    from worker.bot.matrix import command_body

    assert command_body(message("!list"), ME, joined_ms=1000) == "!list"
    ignored = [
        message("hello"),  # not a command
        message("!list", sender=ME),  # its own
        message("!list", ts=999),  # before it joined: history
        message("!list", msgtype="m.notice"),  # another bot
        message("!list", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}),
        {**message("!list"), "type": "m.room.encrypted"},
        {**message("!list"), "origin_server_ts": "soon"},
    ]
    for event in ignored:
        assert command_body(event, ME, joined_ms=1000) is None, event


def test_invitations_and_their_servers() -> None:
    from worker.bot.commands import Reply
    from worker.bot.matrix import Invite, invite_allowed, invites, left, reply_content

    sync = {
        "rooms": {
            "invite": {
                "!a": {
                    "invite_state": {
                        "events": [
                            {"type": "m.room.name", "state_key": "", "content": {"name": "x"}},
                            {
                                "type": "m.room.member",
                                "state_key": ME,
                                "sender": "@ana:Example.org",
                                "content": {"membership": "invite"},
                            },
                        ]
                    }
                }
            },
            "leave": {"!b": {}},
        }
    }
    assert invites(sync, ME) == [Invite("!a", "@ana:Example.org")]
    assert left(sync) == ["!b"] and invites({}, ME) == [] and left({}) == []
    assert invite_allowed("@ana:Example.org", [])
    assert invite_allowed("@ana:Example.org", ["example.org"])
    assert not invite_allowed("@eve:evil.example", ["example.org"])
    assert not invite_allowed(None, ["example.org"])
    content = reply_content(Reply.of("@room <b>"), "$cmd")
    assert content["msgtype"] == "m.notice" and content["m.mentions"] == {}
    assert content["formatted_body"] == "@room &lt;b&gt;"
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
