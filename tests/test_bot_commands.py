"""The chat bot's commands (worker/bot/commands.py) against a real SQLite archive: a room sees
and changes only its own subscriptions, queries are refused as the CLI refuses them, the
operator's limits hold, untrusted text stays text, and a room's alerts go to its room."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.conftest import Tipwatch, make_env
from tests.replica import Replica
from worker.alerts.deliver import EndpointError, deliver_alert, endpoints
from worker.bot.commands import Policy, Reply, handle, parse
from worker.redact import redact_url
from worker.storage.db import dispose_engines, get_engine, session_scope
from worker.storage.models import Alert, Subscription
from worker.subscriptions import SubscriptionError, SubscriptionRequest, check, create

ROOM = "!roomone:localhost"
OTHER = "!roomtwo:localhost"
TEXT = "Forced criminality is on the rise.\n\nVictims of forced criminality are punished."


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tipwatch]:
    """An archive holding onu-vienne and its issue n°24 about forced criminality."""
    root = tmp_path_factory.mktemp("bot-commands")
    with Replica(root / "replica") as replica:
        replica.publish_issue(24, dt.date(2026, 10, 1), en_text=TEXT, fr_text="La traite.")
        tipwatch = Tipwatch(root / "data", make_env(root / "data", replica))
        tipwatch.run("poll", "--source", "onu-vienne")
        yield tipwatch
    dispose_engines()


@pytest.fixture
def engine(archive: Tipwatch) -> Iterator[Engine]:
    engine = get_engine(archive.settings().resolved_database_url)
    yield engine
    with session_scope(engine) as session:  # each test starts with no subscription
        session.query(Alert).delete()
        session.query(Subscription).delete()


def say(engine: Engine, body: str, room: str = ROOM, policy: Policy | None = None) -> Reply:
    with session_scope(engine) as session:
        reply = handle(session, room, body, policy or Policy(web_base_url="http://tw.test"))
    assert reply is not None, body
    return reply


def room_subscriptions(engine: Engine, room: str = ROOM) -> list[Subscription]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Subscription).where(Subscription.owner == room).order_by(Subscription.id)
            )
        )


def test_parse_takes_only_the_bots_commands() -> None:
    assert parse('!subscribe  "forced criminality" ') is not None
    command = parse('  !SUBSCRIBE "forced\ncriminality"')
    assert command is not None and command.name == "subscribe"
    assert command.argument == '"forced\ncriminality"'
    assert parse("!list").argument == ""  # type: ignore[union-attr]
    for body in ("subscribe x", "!ban @someone", "> !list", "!", "hello !list"):
        assert parse(body) is None, body


def test_subscribe_makes_a_confirmed_subscription_of_the_room(engine: Engine) -> None:
    reply = say(engine, '!subscribe "forced criminality"')
    (subscription,) = room_subscriptions(engine)
    assert subscription.channel == "matrix" and subscription.owner == ROOM
    assert subscription.confirmed_at is not None and subscription.active
    assert subscription.name == f"matrix-{subscription.id}"
    assert subscription.notify_urls == []  # built from the settings at delivery time
    assert reply.text.startswith(f'Subscribed #{subscription.id}: "forced criminality"')

    listing = say(engine, "!list")
    assert f'#{subscription.id} "forced criminality"' in listing.text
    assert say(engine, "!list", OTHER).text.startswith("This room has no subscriptions")


def test_a_bad_query_gets_the_clis_message_and_pointer(engine: Engine) -> None:
    query = '"forced criminality'
    with pytest.raises(SubscriptionError) as cli:
        check(SubscriptionRequest(query))
    for command in ("!subscribe", "!preview"):
        reply = say(engine, f"{command} {query}")
        assert reply.text == str(cli.value), reply.text
        assert "at position 1" in reply.text and "\n  ^" in reply.text
        assert "<pre><code>" in reply.html  # the pointer keeps its column
    assert room_subscriptions(engine) == []
    assert say(engine, "!subscribe").text.startswith("Usage: !subscribe <query>")
    assert "too long" in say(engine, "!subscribe " + "a " * 600).text


def test_a_room_sees_and_changes_only_its_own_subscriptions(engine: Engine) -> None:
    say(engine, "!subscribe trafficking")
    (mine,) = room_subscriptions(engine)
    for command in ("!pause", "!resume", "!unsubscribe"):
        theirs = say(engine, f"{command} {mine.id}", OTHER).text
        missing = say(engine, f"{command} 999999", OTHER).text
        # Another room's number is answered as a number that does not exist.
        assert theirs == missing.replace("999999", str(mine.id)), theirs
        assert "no subscription" in theirs
    assert "trafficking" not in say(engine, "!list", OTHER).text
    (still,) = room_subscriptions(engine)
    assert still.active

    assert say(engine, f"!pause #{mine.id}").text.startswith(f"Paused #{mine.id}")
    assert not room_subscriptions(engine)[0].active
    assert "(paused)" in say(engine, "!list").text
    assert say(engine, f"!resume {mine.id}").text.startswith(f"Resumed #{mine.id}")
    assert room_subscriptions(engine)[0].active
    assert say(engine, "!pause soon").text.startswith("Usage: !pause N")
    assert say(engine, f"!unsubscribe {mine.id}").text.startswith(f"Unsubscribed #{mine.id}")
    assert room_subscriptions(engine) == []


def test_the_operator_limits_hold(engine: Engine) -> None:
    capped = Policy(max_subscriptions=2)
    for query in ("one", "two"):
        assert say(engine, f"!subscribe {query}", policy=capped).text.startswith("Subscribed")
    refused = say(engine, "!subscribe three", policy=capped).text
    assert "the most it may have (2)" in refused
    assert len(room_subscriptions(engine)) == 2
    assert say(engine, "!subscribe three", OTHER, policy=capped).text.startswith("Subscribed")

    off = Policy(self_service=False)
    assert "switched off" in say(engine, "!subscribe four", policy=off).text
    assert len(room_subscriptions(engine)) == 2
    assert "switched off" in say(engine, "!help", policy=off).text
    assert "one" in say(engine, "!list", policy=off).text  # leaving still works
    first = room_subscriptions(engine)[0]
    assert say(engine, f"!unsubscribe {first.id}", policy=off).text.startswith("Unsubscribed")


def test_preview_shows_what_the_archive_matches_and_why(engine: Engine) -> None:
    reply = say(engine, '!preview "forced criminality"')
    assert "document(s) match" in reply.text, reply.text
    assert "http://tw.test/documents/" in reply.text
    assert '"forced criminality" ×' in reply.text
    assert "English PDF" in reply.text
    assert room_subscriptions(engine) == []  # a preview stores nothing
    nothing = say(engine, '!preview "no such phrase anywhere"')
    assert nothing.text.startswith("Nothing in the archive matches")


def test_untrusted_text_is_escaped_in_the_html(engine: Engine) -> None:
    query = '"<script>alert(1)</script>" OR "<b>bold</b>"'
    reply = say(engine, f"!subscribe {query}")
    assert query in reply.text  # the plain body shows it as written
    assert "<script>" not in reply.html and "<b>" not in reply.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reply.html
    listing = say(engine, "!list")
    assert "<script>" not in listing.html and "&lt;b&gt;bold&lt;/b&gt;" in listing.html


def test_help_names_every_command(engine: Engine) -> None:
    text = say(engine, "!help").text
    for command in ("!subscribe", "!preview", "!list", "!pause", "!resume", "!unsubscribe"):
        assert command in text


def test_room_alerts_go_to_the_room_or_say_why_not(engine: Engine, archive: Tipwatch) -> None:
    configured = archive.settings().model_copy(
        update={
            "matrix_homeserver": "http://127.0.0.1:8008",
            "matrix_user": "@tipwatch:localhost",
        }
    )
    with session_scope(engine) as session:
        old, _ = create(session, "m-old", SubscriptionRequest("a"), channel="matrix", owner=ROOM)
        new, queued = create(
            session,
            "m-new",
            SubscriptionRequest('"forced criminality"'),
            channel="matrix",
            owner="!Abc_d-9",  # room version 12: no server part
            backfill=True,
        )
        assert queued >= 1
        from pydantic import SecretStr

        by_password = configured.model_copy(update={"matrix_password": SecretStr("p@ss:w/rd")})
        (url,) = endpoints(old, by_password)
        assert (
            url
            == "matrix://%40tipwatch%3Alocalhost:p%40ss%3Aw%2Frd@127.0.0.1:8008/!roomone:localhost"
        )
        (url,) = endpoints(new, by_password)
        assert url.endswith("@127.0.0.1:8008/!Abc_d-9?hsreq=no"), url
        assert "p%40ss" not in redact_url(url)
        by_token = configured.model_copy(
            update={
                "matrix_homeserver": "https://m.example.org",
                "matrix_token": SecretStr("syt_x"),
            }
        )
        (url,) = endpoints(new, by_token)
        assert url == "matrixs://m.example.org/!Abc_d-9?hsreq=no&token=syt_x"
        assert "syt_x" not in redact_url(url)
        with pytest.raises(EndpointError, match="TIPWATCH_MATRIX_HOMESERVER"):
            endpoints(new, archive.settings())
        alert_id = session.scalars(select(Alert.id).where(Alert.subscription_id == new.id)).first()

    # The bot is not configured: the alert is not dropped, it waits and says why.
    assert deliver_alert(engine, archive.settings(), alert_id) == "pending"
    with session_scope(engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.sent_at is None
        assert "the Matrix bot is not configured" in (alert.last_error or "")


def test_a_failing_command_is_answered_once_with_an_apology(
    engine: Engine, archive: Tipwatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that raises (a fault injected here) is recorded with an apology, so that a
    restart replaying the same event neither retries it nor stays silent."""
    import asyncio

    from pydantic import SecretStr

    from worker.bot import matrix
    from worker.storage.models import MatrixCommand

    settings = archive.settings().model_copy(
        update={
            "matrix_homeserver": "http://127.0.0.1:9",
            "matrix_user": "tipwatch",
            "matrix_password": SecretStr("secret-pw"),
        }
    )
    bot = matrix.MatrixBot(settings, engine)
    sends: list[int] = []

    async def send_owed() -> None:
        sends.append(1)

    def broken(*args: object) -> Reply:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(bot, "send_owed", send_owed)
    monkeypatch.setattr(matrix, "handle", broken)
    for _ in range(2):  # the second time: a replayed event
        asyncio.run(bot.answer(ROOM, "$failing", "@analyst:localhost", "!subscribe x"))
    with session_scope(engine) as session:
        (command,) = session.scalars(
            select(MatrixCommand).where(MatrixCommand.event_id == "$failing")
        ).all()
        assert command.reply_text.startswith("Sorry, that command failed")
        assert command.answered_at is None  # send_owed (faked here) sends and marks it
    assert sends == [1]
    assert room_subscriptions(engine) == []
