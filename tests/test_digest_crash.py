"""A digest sender killed between two endpoints: the retry sends only to the one still owed.

A daily digest goes to two real endpoints on loopback, a JSON webhook and then an SMTP
server. The SMTP server SIGKILLs the process sending the digest as soon as that process
starts a mail transaction (``MAIL FROM``, before any of the message is sent): the webhook
has accepted the digest, the SMTP server has not received it. Once the claim's lease has
passed, the digest is sent again — to the SMTP server only, so each endpoint gets it once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from tests.conftest import Mailbox, Tipwatch, free_port
from tests.test_notify import Webhook
from worker.storage.db import get_engine, session_scope
from worker.storage.models import Alert, Document, Subscription

LEASE = 60  # seconds; the runner is told how far ahead of the clock it is, never left to wait

# Send the digests that are due, as ``tipwatch poll`` does, ``argv[1]`` seconds from now.
RUNNER = """
import json, sys
from datetime import UTC, datetime, timedelta
from worker import runtime
from worker.alerts.digest import send_digests
settings = runtime.settings()
now = datetime.now(UTC) + timedelta(seconds=float(sys.argv[1]))
print(json.dumps(send_digests(runtime.engine(settings), settings, now=now)))
"""


class KillingMailbox(Mailbox):
    """SIGKILLs ``victim`` when it opens its first mail transaction, before any data."""

    def __init__(self) -> None:
        super().__init__()
        self.victim: int | None = None
        self.killed: list[int] = []

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.victim is not None and not self.killed:
            os.kill(self.victim, signal.SIGKILL)
            self.killed.append(self.victim)
            return "421 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@pytest.fixture
def killing_smtp() -> Iterator[tuple[KillingMailbox, str]]:
    mailbox = KillingMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, f"mailto://127.0.0.1:{port}?from=tipwatch@example.org&to=analyst@example.org"
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


def _runner(tipwatch: Tipwatch, cwd: Path, ahead: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(ahead)],
        env=tipwatch.env,
        cwd=cwd,  # no stray .env from the repository
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _digest(tipwatch: Tipwatch, cwd: Path, ahead: float) -> dict[str, int]:
    process = _runner(tipwatch, cwd, ahead)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return dict(json.loads(out))


def test_digest_killed_between_endpoints_reaches_each_once(
    tipwatch: Tipwatch,
    webhook: Webhook,
    killing_smtp: tuple[KillingMailbox, str],
    tmp_path: Path,
) -> None:
    mailbox, smtp_url = killing_smtp
    tipwatch.env["TIPWATCH_NOTIFY_CLAIM_LEASE"] = str(LEASE)
    tipwatch.run("subscribe", "daily", "--query", "trafficking", "-n", webhook.url, "-n", smtp_url)
    engine = get_engine(tipwatch.settings().resolved_database_url)
    with session_scope(engine) as session:
        # Subscribed two days ago: today's digest is due.
        session.execute(
            update(Subscription).values(
                delivery="daily", created_at=datetime.now(UTC) - timedelta(days=2)
            )
        )
        [subscription_id] = session.scalars(select(Subscription.id))
        for n in range(3):
            document = Document(
                content_sha256=f"{n:064x}",
                source="unodc-news",
                url=f"https://www.unodc.org/news/{n}.html",
                canonical_url=f"https://www.unodc.org/news/{n}.html",
                kind="html",
                title=f"Trafficking report {n}",
                language="en",
                size_bytes=100,
                text="trafficking",
            )
            session.add(document)
            session.flush()
            explanation = {"terms": [{"term": "trafficking", "pages": [1], "snippets": []}]}
            session.add(
                Alert(
                    subscription_id=subscription_id,
                    document_id=document.id,
                    explanation=explanation,
                )
            )

    # 1. The webhook accepts the digest; the sender dies as it turns to the SMTP server.
    process = _runner(tipwatch, tmp_path, 0)
    mailbox.victim = process.pid
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL and mailbox.killed == [process.pid]
    assert len(webhook.requests) == 1 and mailbox.messages == []
    with session_scope(engine) as session:
        alerts = list(session.scalars(select(Alert).order_by(Alert.id)))
    assert [a.status for a in alerts] == ["sending"] * 3
    # The webhook's success was committed before the SMTP server was tried.
    assert all(set(a.deliveries) == {"0"} for a in alerts)

    # 2. Within the lease the dead sender's claim holds: nothing is sent.
    assert _digest(tipwatch, tmp_path, 0) == {"sent": 0, "failed": 0}
    assert len(webhook.requests) == 1 and mailbox.messages == []

    # 3. After the lease the digest is taken over and sent to the endpoint still owed only.
    assert _digest(tipwatch, tmp_path, LEASE + 1) == {"sent": 1, "failed": 0}
    [message] = mailbox.wait_for(1)
    assert len(webhook.requests) == 1
    [(headers, payload)] = webhook.requests
    assert message["X-TIPWatch-Alert"] == headers["X-TIPWatch-Alert"]  # the same digest
    assert payload["title"] == "[TIP Watch] daily: 3 new publications"
    assert message["Subject"] == payload["title"]
    with session_scope(engine) as session:
        alerts = list(session.scalars(select(Alert).order_by(Alert.id)))
    assert [(a.status, a.attempts) for a in alerts] == [("sent", 2)] * 3
    assert all(set(a.deliveries) == {"0", "1"} for a in alerts)

    # 4. Sent: nothing more goes out, to either endpoint.
    assert _digest(tipwatch, tmp_path, LEASE + 2) == {"sent": 0, "failed": 0}
    assert len(webhook.requests) == 1 and len(mailbox.messages) == 1
