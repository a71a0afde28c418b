"""A broker restart loses nothing: the database, not the queue, is the truth.

A private Redis without persistence holds the delivery (or extraction) tasks; it is killed and
restarted empty, and the periodic sweep (what beat runs every few minutes) queues the alerts
(or the pending PDFs) again.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SmtpServer, Tipwatch, free_port
from tests.test_celery_e2e import (
    assert_dubrovnik_archived_once,
    celery_client,
    celery_process,
    emails_for,
    subscribe_dubrovnik,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _ping(client), 20, "private redis to answer", every=0.1)
        client.close()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _ping(client: object) -> bool:
    import redis

    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except redis.RedisError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_broker_restart_loses_no_alert(
    tipwatch: Tipwatch, smtp: SmtpServer, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    tipwatch.run("subscribe", "glotip", "--query", '"Global Report"', "--notify", smtp.url())
    tipwatch.run("poll", "--source", "unodc-glotip", "--no-notify")
    pending = tipwatch.json("alerts", "--status", "pending")
    assert pending

    with celery_client(private_redis.url) as client:
        for alert in pending:  # queued, but no worker is running yet
            client.send_task("tipwatch.deliver_alert", args=[alert["id"]], queue="notify")
    private_redis.kill()  # the queued tasks die with it
    private_redis.start()

    env = {
        **tipwatch.env,
        "TIPWATCH_BROKER_URL": private_redis.url,
        "TIPWATCH_RESULT_BACKEND": private_redis.url,
    }
    with (
        celery_process(
            ["worker", "--loglevel=INFO", "--concurrency=1"], env, tmp_path / "worker.log", "ready"
        ),
        celery_client(private_redis.url) as client,
    ):
        time.sleep(1)
        assert smtp.mailbox.messages == []  # the restart emptied the queue
        requeued = client.send_task("tipwatch.sweep_alerts", queue="notify").get(timeout=60)
        assert requeued == {"alerts": len(pending), "extractions": 0}
        wait_until(lambda: len(smtp.mailbox.messages) >= len(pending), 60, "the emails")
        wait_until(
            lambda: {a["status"] for a in tipwatch.json("alerts")} == {"sent"},
            30,
            "every alert to be sent",
        )
    time.sleep(1)
    keys = [m["X-TIPWatch-Alert"] for m in smtp.mailbox.messages]
    assert sorted(keys) == sorted({f"alert-{a['id']}" for a in pending})  # each exactly once


def test_broker_restart_loses_no_extraction(
    tipwatch: Tipwatch, smtp: SmtpServer, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """PDFs archived by a poll wait on the extract queue; Redis restarts empty; the sweep
    finds them pending in the database and queues them again."""
    subscribe_dubrovnik(tipwatch, smtp)
    env = {
        **tipwatch.env,
        "TIPWATCH_BROKER_URL": private_redis.url,
        "TIPWATCH_RESULT_BACKEND": private_redis.url,
        "TIPWATCH_EXTRACT_REQUEUE_AFTER": "0",  # what 30 minutes later looks like
    }
    poll_only = ["worker", "--loglevel=INFO", "--queues=poll", "--concurrency=1"]
    with (
        celery_process(poll_only, env, tmp_path / "poller.log", "ready"),
        celery_client(private_redis.url) as client,
    ):
        report = client.send_task("tipwatch.poll_source", args=["onu-vienne"], queue="poll").get(
            timeout=180
        )
    assert report["status"] == "ok" and report["deferred"] > 0, report
    private_redis.kill()  # the queued extractions die with it
    private_redis.start()
    assert tipwatch.json("status")["extraction"]["pending"] == report["deferred"]

    everything = ["worker", "--loglevel=INFO", "--concurrency=2"]
    with (
        celery_process(everything, env, tmp_path / "worker.log", "ready"),
        celery_client(private_redis.url) as client,
    ):
        time.sleep(1)
        assert emails_for(smtp, "dubrovnik") == []  # nothing left in the queue to run
        requeued = client.send_task("tipwatch.sweep_alerts", queue="notify").get(timeout=60)
        assert requeued == {"alerts": 0, "extractions": report["deferred"]}
        wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the dubrovnik email")
        wait_until(lambda: tipwatch.json("status")["extraction"]["pending"] == 0, 60, "extractions")
        time.sleep(2)
    assert len(emails_for(smtp, "dubrovnik")) == 1
    assert_dubrovnik_archived_once(tipwatch)


def test_broker_restarted_mid_poll_loses_nothing(
    tipwatch: Tipwatch, smtp: SmtpServer, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Redis dies while a worker is polling and comes back empty: the poll finishes, what it
    could not queue stays pending in the database, and the sweep delivers it, once."""
    subscribe_dubrovnik(tipwatch, smtp)
    env = {
        **tipwatch.env,
        "TIPWATCH_BROKER_URL": private_redis.url,
        "TIPWATCH_RESULT_BACKEND": private_redis.url,
        "TIPWATCH_EXTRACT_REQUEUE_AFTER": "0",
        "TIPWATCH_HOST_DELAY": "0.25",  # a slow poll, so that the restart lands in it
    }
    log = tmp_path / "worker.log"
    args = ["worker", "--loglevel=INFO", "--concurrency=2", "--without-gossip", "--without-mingle"]
    with celery_process(args, env, log, "ready"), celery_client(private_redis.url) as client:
        client.send_task("tipwatch.poll_source", args=["onu-vienne"], queue="poll")
        wait_until(
            lambda: log.read_text(errors="replace").count("as document") >= 3, 120, "archiving"
        )
        private_redis.kill()
        time.sleep(3)
        private_redis.start()

        def finished() -> bool:
            (onu,) = [s for s in tipwatch.json("sources") if s["name"] == "onu-vienne"]
            return onu["last_status"] is not None and onu["last_poll"] is not None

        wait_until(finished, 180, "the poll to finish")
        (onu,) = [s for s in tipwatch.json("sources") if s["name"] == "onu-vienne"]
        assert onu["last_status"] == "ok", onu
        # Redis is back: the sweep (beat's job every few minutes) queues what was lost.
        wait_until(
            lambda: log.read_text(errors="replace").count("Connected to redis") >= 2,
            60,
            "the worker to reconnect",
        )
        client.send_task("tipwatch.sweep_alerts", queue="notify").get(timeout=60)
        wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the dubrovnik email")
        wait_until(lambda: tipwatch.json("status")["extraction"]["pending"] == 0, 60, "extractions")
        time.sleep(2)
    assert len(emails_for(smtp, "dubrovnik")) == 1
    again = tipwatch.json("poll", "--source", "onu-vienne", "--no-notify")["sources"][0]
    assert (again["status"], again["new"], again["changed"]) == ("ok", 0, 0), again
    assert_dubrovnik_archived_once(tipwatch)


def test_beat_keeps_its_lock_and_schedule_across_a_broker_restart(
    tipwatch: Tipwatch, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Redis restarts empty under a running beat: the beat lock is gone with no other holder,
    so beat takes it again (instead of stopping) and goes on sending polls."""
    import redis

    config = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    onu = next(s for s in config["sources"] if s["name"] == "onu-vienne")
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{**onu, "interval_minutes": 0.05}]}))
    env = {
        **tipwatch.env,
        "TIPWATCH_SOURCES": str(sources),
        "TIPWATCH_BASE_URLS": "{}",
        "TIPWATCH_BROKER_URL": private_redis.url,
        "TIPWATCH_RESULT_BACKEND": private_redis.url,
    }
    log = tmp_path / "beat.log"
    args = ["beat", "--loglevel=INFO", f"--schedule={tmp_path / 'celerybeat-schedule'}"]
    with celery_process(args, env, log, "beat: Starting") as beat:
        client = redis.Redis.from_url(private_redis.url)
        try:
            holder = wait_until(lambda: client.get("tipwatch:beat"), 30, "the beat lock")
        finally:
            client.close()
        private_redis.kill()
        time.sleep(2)
        private_redis.start()
        client = redis.Redis.from_url(private_redis.url)
        try:
            assert client.get("tipwatch:beat") is None  # the restart lost it
            retaken = wait_until(lambda: client.get("tipwatch:beat"), 60, "the lock retaken")
            assert retaken == holder
            wait_until(lambda: client.llen("poll") >= 2, 30, "polls sent after the restart")
        finally:
            client.close()
        assert beat.poll() is None, "beat must keep running"
    assert "taken again" in log.read_text(errors="replace")
