"""A Celery worker stopped mid-poll, gently (SIGTERM) or not (SIGKILL): nothing lost, nothing
twice. Real worker processes on a real Redis broker, polling the loopback replica slowly
(a host delay) so that the signal lands while the poll is archiving.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from tasks.jobs import source_lock
from tests.conftest import SmtpServer, Tipwatch
from tests.test_celery_e2e import (
    WORKER_ARGS,
    assert_dubrovnik_archived_once,
    celery_client,
    celery_env,
    celery_process,
    emails_for,
    subscribe_dubrovnik,
    wait_until,
)

SOURCE = "onu-vienne"


def slow_env(tipwatch: Tipwatch, broker: str) -> dict[str, str]:
    return {**celery_env(tipwatch, broker), "TIPWATCH_HOST_DELAY": "0.25"}


def archived_count(log: Path) -> int:
    return log.read_text(errors="replace").count("as document")


def assert_all_archived_once(tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    """Everything was archived (a new poll finds nothing new), each document once, each PDF
    extracted, and the one matching alert sent once."""
    again = tipwatch.json("poll", "--source", SOURCE, "--no-notify")
    (report,) = again["sources"]
    assert (report["status"], report["new"], report["changed"]) == ("ok", 0, 0), report
    documents = tipwatch.json("archive", "list", "--limit", "1000")
    assert len({d["content_sha256"] for d in documents}) == len(documents)
    assert {d["extract_status"] for d in documents} == {"done"}
    assert_dubrovnik_archived_once(tipwatch)
    assert len(emails_for(smtp, "dubrovnik")) == 1


def test_source_lock_is_exclusive_but_its_own_task_may_take_it_over(broker: str) -> None:
    with source_lock(broker, SOURCE, "task-1") as first:
        assert first
        with source_lock(broker, SOURCE, "task-2") as other:
            assert not other  # another poll of the source is running
        # The same task id again: task-1 was redelivered after its worker died mid-poll.
        with source_lock(broker, SOURCE, "task-1") as redelivered:
            assert redelivered
    client = redis.Redis.from_url(broker)
    try:
        assert client.get(f"tipwatch:poll:{SOURCE}") is None  # released
    finally:
        client.close()


def test_worker_killed_mid_poll_redelivers_and_loses_nothing(
    tipwatch: Tipwatch, smtp: SmtpServer, broker: str, tmp_path: Path
) -> None:
    subscribe_dubrovnik(tipwatch, smtp)
    log = tmp_path / "worker.log"
    with (
        celery_process(WORKER_ARGS, slow_env(tipwatch, broker), log, "ready.") as worker,
        celery_client(broker) as client,
    ):
        result = client.send_task("tipwatch.poll_source", args=[SOURCE], queue="poll")
        wait_until(lambda: archived_count(log) >= 3, 120, "a few documents archived")
        children = subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children, "the worker has pool children"
        for pid in map(int, children):
            os.kill(pid, signal.SIGKILL)
        before = archived_count(log)
        # acks_late + reject_on_worker_lost: the same task runs again in a new child, takes
        # its own source lock over, and finishes the poll.
        report = result.get(timeout=240)
        assert report["status"] == "ok", report
        assert report["new"] > 0, report  # the second run archived what the first had not
        text = log.read_text(errors="replace")
        assert "WorkerLostError" in text or "exited prematurely" in text, text[-3000:]
        assert archived_count(log) > before
        wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the dubrovnik email")
        wait_until(
            lambda: tipwatch.json("status")["extraction"]["pending"] == 0, 120, "extractions"
        )
    assert_all_archived_once(tipwatch, smtp)


def test_sigterm_mid_poll_finishes_the_poll_then_stops(
    tipwatch: Tipwatch, smtp: SmtpServer, broker: str, tmp_path: Path
) -> None:
    subscribe_dubrovnik(tipwatch, smtp)
    env = slow_env(tipwatch, broker)
    log = tmp_path / "worker.log"
    with (
        celery_process(WORKER_ARGS, env, log, "ready.") as worker,
        celery_client(broker) as client,
    ):
        result = client.send_task("tipwatch.poll_source", args=[SOURCE], queue="poll")
        wait_until(lambda: archived_count(log) >= 3, 120, "a few documents archived")
        worker.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        started = time.monotonic()
        report = result.get(timeout=240)
        assert worker.wait(120) == 0
        text = log.read_text(errors="replace")
        assert "Warm shutdown" in text, text[-2000:]
        assert "WorkerLostError" not in text
    assert report["status"] == "ok" and report["failed"] == 0, report
    assert time.monotonic() - started < 120
    # What the poll queued but the stopping worker did not start waits on the broker for the
    # next worker: PDFs to extract, alerts to deliver.
    with celery_process(WORKER_ARGS, env, tmp_path / "worker2.log", "ready."):
        wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the dubrovnik email")
        wait_until(
            lambda: tipwatch.json("status")["extraction"]["pending"] == 0, 120, "extractions"
        )
    assert_all_archived_once(tipwatch, smtp)
