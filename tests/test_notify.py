"""Notifications through real endpoints on loopback: SMTP (aiosmtpd) and a JSON webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import update

from tests.conftest import OPERATOR_AUTH, Mailbox, SmtpServer, Tipwatch, body_text, free_port
from worker.alerts.digest import next_slot, send_digests
from worker.storage.db import get_engine, session_scope
from worker.storage.models import Subscription

QUERY = '"Global Report"'


class Webhook:
    """A JSON endpoint recording what apprise posts to it."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                hook.requests.append((dict(self.headers), json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


def test_webhook_gets_the_full_text_with_an_idempotency_header(
    tipwatch: Tipwatch, webhook: Webhook
) -> None:
    tipwatch.run("subscribe", "glotip", "--query", QUERY, "--notify", webhook.url)
    tipwatch.run("poll", "--source", "unodc-glotip")
    alerts = tipwatch.json("alerts")
    assert alerts and {a["status"] for a in alerts} == {"sent"}
    assert len(webhook.requests) == len(alerts)
    headers, payload = webhook.requests[0]
    assert headers["X-TIPWatch-Alert"].startswith("alert-")
    assert payload["title"].startswith("[TIP Watch] glotip:")
    assert '"Global Report"' in payload["message"] and "Why it matched" in payload["message"]
    assert "http://tipwatch.test/documents/" in payload["message"]
    lines = payload["message"].splitlines()
    # One fact per line, as the template lays them out.
    assert any(line.startswith("Source:    UNODC") for line in lines)
    assert any(line.strip().startswith("English, PDF, ") for line in lines)
    assert any(line.strip().startswith('- "Global Report": ') for line in lines)
    assert any(
        line.strip().startswith("Archived: http://tipwatch.test/documents/") for line in lines
    )
    keys = {h["X-TIPWatch-Alert"] for h, _ in webhook.requests}
    assert len(keys) == len(alerts)


def test_smtp_down_then_up_delivers_once_and_never_leaks_the_password(tipwatch: Tipwatch) -> None:
    port = free_port()  # nothing listens here yet
    url = (
        f"mailto://watcher:s3cretpw@127.0.0.1:{port}?from=tipwatch@example.org"
        "&to=analyst@example.org&mode=insecure"
    )
    tipwatch.env["TIPWATCH_NOTIFY_MAX_ATTEMPTS"] = "1"
    out = tipwatch.run("subscribe", "glotip", "--query", QUERY, "--notify", url).stdout
    polled = tipwatch.run("poll", "--source", "unodc-glotip")
    [alert, *more] = tipwatch.json("alerts")
    assert alert["status"] == "dead" and all(a["status"] == "dead" for a in more)
    assert alert["last_error"]
    listing = tipwatch.run("alerts", "--status", "dead").stdout
    subscriptions = tipwatch.run("subscriptions", "--json").stdout
    for text in (
        out,
        polled.stdout,
        polled.stderr,
        listing,
        subscriptions,
        json.dumps(tipwatch.json("alerts")),
    ):
        assert "s3cretpw" not in text
    assert "watcher:***@" in subscriptions

    # The web UI shows the parked alerts too, without the secret.
    from fastapi.testclient import TestClient

    from worker.web import create_app

    with TestClient(create_app(tipwatch.settings())) as web:
        web.auth = OPERATOR_AUTH  # the operator's pages
        page = web.get("/alerts", params={"status": "dead"})
        assert page.status_code == 200 and f"<td>{alert['id']}</td>" in page.text
        assert "s3cretpw" not in page.text
        api = web.get("/api/alerts", params={"status": "dead"}).json()
        assert {a["id"] for a in api} == {a["id"] for a in [alert, *more]}

    mailbox = Mailbox()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cretpw")

    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        tipwatch.run("alerts", "retry", "--dead")
        statuses = {a["status"] for a in tipwatch.json("alerts")}
        assert statuses == {"sent"}
        messages = mailbox.wait_for(1 + len(more))
        assert len(messages) == 1 + len(more)
        assert all(m["X-TIPWatch-Alert"].startswith("alert-") for m in messages)
        assert logins and set(logins) == {(b"watcher", b"s3cretpw")}
        tipwatch.run("poll", "--source", "unodc-glotip")
        assert len(mailbox.messages) == 1 + len(more)
    finally:
        controller.stop()


def test_daily_digest_groups_matches_in_one_message(tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    # The digest hour half a day away: a test run at 06:59 UTC must not see the poll's own
    # digest round send the digest it is about to check is held (the default hour is 7).
    tipwatch.env["TIPWATCH_DIGEST_HOUR"] = str((datetime.now(UTC).hour + 12) % 24)
    tipwatch.run("subscribe", "digest", "--query", "trafficking", "--notify", smtp.url())
    settings = tipwatch.settings()
    engine = get_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        session.execute(update(Subscription).values(delivery="daily"))
    tipwatch.run("poll", "--source", "unodc-glotip", "--source", "unodc-news")
    pending = tipwatch.json("alerts", "--status", "pending")
    assert len(pending) > 2 and smtp.mailbox.messages == []  # nothing sent immediately

    now = datetime.now(UTC)
    assert send_digests(engine, settings, now=now) == {"sent": 0, "failed": 0}  # not yet due
    later = next_slot("daily", now, settings) + timedelta(minutes=1)
    assert send_digests(engine, settings, now=later) == {"sent": 1, "failed": 0}
    [message] = smtp.mailbox.wait_for(1)
    assert f"{len(pending)} new publications" in message["Subject"]
    text = body_text(message)
    assert text.count("http://tipwatch.test/documents/") == len(pending)
    assert {a["status"] for a in tipwatch.json("alerts")} == {"sent"}
    assert send_digests(engine, settings, now=later + timedelta(days=1)) == {"sent": 0, "failed": 0}


def test_next_slot_daily_and_weekly(tipwatch: Tipwatch) -> None:
    settings = tipwatch.settings().model_copy(update={"digest_hour": 7, "digest_weekday": 0})
    wednesday = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert next_slot("daily", wednesday, settings) == datetime(2026, 11, 26, 7, tzinfo=UTC)
    assert next_slot("weekly", wednesday, settings) == datetime(2026, 11, 30, 7, tzinfo=UTC)
    early = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert next_slot("weekly", early, settings) == datetime(2026, 11, 30, 7, tzinfo=UTC)


def test_templates_can_be_overridden(tipwatch: Tipwatch, smtp: SmtpServer, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "alert_title.j2").write_text("Veille TEH — {{ document.title }}")
    tipwatch.env["TIPWATCH_TEMPLATES_DIR"] = str(templates)
    tipwatch.run("subscribe", "glotip", "--query", QUERY, "--notify", smtp.url())
    tipwatch.run("poll", "--source", "unodc-glotip")
    messages = smtp.mailbox.wait_for(1)
    assert messages and all(m["Subject"].startswith("Veille TEH — ") for m in messages)


def test_subscriptions_test_command_reports_apprise_result(
    tipwatch: Tipwatch, smtp: SmtpServer
) -> None:
    down = f"mailto://127.0.0.1:{free_port()}?from=tipwatch@example.org&to=analyst@example.org"
    tipwatch.run(
        "subscribe",
        "both",
        "--query",
        QUERY,
        "--notify",
        smtp.url(),
        "--notify",
        down,
        "--delivery",
        "weekly",
    )
    result = tipwatch.run("subscriptions", "test", "both", check=False)
    assert result.returncode == 1
    assert "ok mailto://127.0.0.1" in result.stdout and "failed mailto://" in result.stdout
    [message] = smtp.mailbox.wait_for(1)
    assert message["Subject"] == "[TIP Watch] test message for both"
    assert tipwatch.json("subscriptions")[0]["delivery"] == "weekly"
    bad = tipwatch.run(
        "subscribe",
        "x",
        "--query",
        "a",
        "--notify",
        smtp.url(),
        "--delivery",
        "hourly",
        check=False,
    )
    assert bad.returncode == 2 and "--delivery must be one of" in bad.stderr
