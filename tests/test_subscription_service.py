"""The subscription service shared by the CLI, the web page and the bot (worker/subscriptions.py):
an unconfirmed email subscription is never matched; once confirmed it alerts on what is first
seen after, like any other. Real SQLite, the replica, a real SMTP server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import SmtpServer, Tipwatch, make_env
from tests.replica import Replica
from worker.storage.db import get_engine, session_scope
from worker.storage.models import Alert, Subscription
from worker.subscriptions import (
    SubscriptionError,
    SubscriptionRequest,
    check,
    confirm,
    create,
    describe,
    owned_by,
    preview,
    remove,
    set_active,
)

TEXT = "Forced criminality is on the rise.\n\nVictims of forced criminality are punished."


def test_check_refuses_what_the_cli_refuses_and_names_the_field() -> None:
    cases = [
        (SubscriptionRequest("(a b"), "query", "invalid query: missing ')'"),
        (SubscriptionRequest("a", ("nonsense://x",)), "notify", "apprise does not understand"),
        (SubscriptionRequest("a", delivery="hourly"), "delivery", "must be one of immediate"),
        (SubscriptionRequest("a", kinds=("doc",)), "kind", "must be pdf or html, not 'doc'"),
    ]
    for request, field, message in cases:
        with pytest.raises(SubscriptionError) as caught:
            check(request)
        assert caught.value.field == field and message in str(caught.value), caught.value
    assert SubscriptionError("must be one of x", "delivery").for_option() == (
        "--delivery must be one of x"
    )


@pytest.fixture
def tipwatch(tmp_path: Path, replica: Replica) -> Tipwatch:
    """TIP Watch on a replica of its own, which the test changes."""
    return Tipwatch(tmp_path / "data", make_env(tmp_path / "data", replica))


def test_unconfirmed_email_subscription_is_never_matched(
    tipwatch: Tipwatch, replica: Replica, smtp: SmtpServer
) -> None:
    # An email subscription's messages go through the server's SMTP settings to its owner.
    tipwatch.env["TIPWATCH_MAIL_URL"] = f"mailto://{smtp.host}:{smtp.port}?from=tw@example.org"
    tipwatch.env["TIPWATCH_SECRET_KEY"] = "a-secret-key-for-links"
    engine = get_engine(tipwatch.settings().resolved_database_url)
    request = SubscriptionRequest('"forced criminality"')
    with session_scope(engine) as session:
        subscription, _ = create(
            session, "reader-1", request, channel="email", owner="reader@example.org",
            confirmed=False,
        )  # fmt: skip
        assert describe(subscription)["confirmed"] is False
        with pytest.raises(SubscriptionError, match="already exists"):
            create(session, "reader-1", request)

    replica.publish_issue(24, dt.date(2026, 10, 1), en_text=TEXT, fr_text="La traite.")
    tipwatch.run("poll", "--source", "onu-vienne")
    with session_scope(engine) as session:
        assert session.scalars(select(Alert)).all() == []  # nothing for an unconfirmed address
        (subscription,) = owned_by(session, "email", "reader@example.org")
        # What the archive holds matches all the same: the preview says so, and sends nothing.
        found = preview(session, request, limit=5)
        assert found and all(e["terms"][0]["term"] == "forced criminality" for _, e in found)
        confirm(session, subscription)
        assert subscription.confirmed_at is not None

    tipwatch.run("poll", "--source", "onu-vienne")  # n°24 was seen before the confirmation
    with session_scope(engine) as session:
        assert session.scalars(select(Alert)).all() == []

    replica.publish_issue(25, dt.date(2026, 11, 1), en_text=TEXT, fr_text="La traite.")
    tipwatch.run("poll", "--source", "onu-vienne")
    with session_scope(engine) as session:
        alerts = session.scalars(select(Alert)).all()
        assert len(alerts) == 1 and alerts[0].status == "sent", alerts
        subscription = session.scalars(select(Subscription)).one()
        set_active(session, subscription, False)
    assert len(smtp.mailbox.messages) == 1
    (message,) = smtp.mailbox.messages
    assert "reader@example.org" in str(message["To"]) and message["List-Unsubscribe"]

    replica.publish_issue(26, dt.date(2026, 11, 20), en_text=TEXT, fr_text="La traite.")
    tipwatch.run("poll", "--source", "onu-vienne")
    assert len(smtp.mailbox.messages) == 1  # paused
    with session_scope(engine) as session:
        remove(session, session.scalars(select(Subscription)).one())
    with session_scope(engine) as session:
        assert session.scalars(select(Subscription)).all() == []
        assert session.scalars(select(Alert)).all() == []
