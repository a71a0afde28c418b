"""A worker killed mid-delivery loses nothing, and a re-sent alert carries the same key.

The SMTP server stores the message and then kills the Celery pool child that sent it, before
answering "250": the worker never learns the send succeeded. This is the one window where no
system can know, so TIP Watch re-sends — with the same ``X-TIPWatch-Alert`` header, letting
the receiving side drop the duplicate — and the alert ends ``sent``, never lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import Mailbox, Tipwatch, free_port
from tests.test_celery_e2e import (  # noqa: F401 - pytestmark: skip without Redis
    celery_client,
    celery_env,
    celery_process,
    pytestmark,
    wait_until,
)


class KillingMailbox(Mailbox):
    """Accepts the first message, then SIGKILLs the worker's pool child before replying."""

    def __init__(self) -> None:
        super().__init__()
        self.worker_pid: int | None = None
        self.killed: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if not self.killed and self.worker_pid:
            children = subprocess.run(
                ["pgrep", "-P", str(self.worker_pid)], capture_output=True, text=True
            ).stdout.split()
            for pid in map(int, children):
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
        return reply


def test_worker_killed_between_send_and_commit(
    tipwatch: Tipwatch, broker: str, tmp_path: Path
) -> None:
    mailbox = KillingMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    url = f"mailto://127.0.0.1:{port}?from=tipwatch@example.org&to=analyst@example.org"
    tipwatch.run(
        "subscribe", "dubrovnik", "--query", 'Dubrovnik AND "forced labor"', "--notify", url
    )
    env = {**celery_env(tipwatch, broker), "TIPWATCH_NOTIFY_CLAIM_LEASE": "2"}
    args = [
        "worker",
        "--loglevel=INFO",
        "--queues=poll,extract,notify",
        "--concurrency=1",
        "--pool=prefork",
    ]
    try:
        with (
            celery_process(args, env, tmp_path / "worker.log", "ready") as worker,
            celery_client(broker) as client,
        ):
            mailbox.worker_pid = worker.pid
            report = client.send_task(
                "tipwatch.poll_source", args=["onu-vienne"], queue="poll"
            ).get(timeout=180)
            # The newsletter PDF is matched on the extract queue: its alert comes from there.
            assert report["status"] == "ok" and report["deferred"] > 0, report
            wait_until(lambda: mailbox.killed, 90, "the pool child to be killed mid-send")
            wait_until(
                lambda: [a["status"] for a in tipwatch.json("alerts")] == ["sent"],
                90,
                "the alert to be delivered after the crash",
            )
    finally:
        controller.stop()
    [alert] = tipwatch.json("alerts")
    assert alert["attempts"] == 2
    messages = mailbox.messages
    assert len(messages) == 2  # the crash window: sent, but the worker never heard "250"
    keys = {m["X-TIPWatch-Alert"] for m in messages}
    assert keys == {f"alert-{alert['id']}"}  # one alert, one key: the receiver drops the copy
    assert "WorkerLostError" in (tmp_path / "worker.log").read_text(errors="replace")
