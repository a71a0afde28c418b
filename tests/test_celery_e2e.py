"""End to end through a real Celery worker (and beat) on a real Redis broker.

The worker and beat are started exactly as docker-compose.yml starts them (``celery -A
tasks.celery_app worker ...`` / ``celery -A tasks.celery_app beat ...``), as subprocesses from the
venv, against the loopback replica of the sites and a local SMTP server. They use a dedicated
Redis database, flushed before and after each test. Every process started here is stopped in a
``finally``, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, SmtpServer, Tipwatch, body_text, make_env, redis_available
from tests.conftest import CELERY_REDIS_URL as REDIS_URL
from tests.replica import Replica

WORKER_ARGS = [
    "worker",
    "--loglevel=INFO",
    "--queues=poll,extract,notify",
    "--concurrency=2",
    "--pool=prefork",
]
POLL_TIMEOUT = 180  # seconds for one round of polls of every source

pytestmark = pytest.mark.skipif(
    not redis_available(REDIS_URL), reason=f"Redis does not answer at {REDIS_URL}"
)


# -- helpers ----------------------------------------------------------------------------------


def celery_env(tipwatch: Tipwatch, broker: str) -> dict[str, str]:
    return {**tipwatch.env, "TIPWATCH_BROKER_URL": broker, "TIPWATCH_RESULT_BACKEND": broker}


def celery_process(
    args: list[str], env: dict[str, str], log: Path, ready: str, timeout: float = 60
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Run ``celery -A tasks.celery_app <args>`` as a :func:`service`."""
    argv = [str(BIN / "celery"), "-A", "tasks.celery_app", *args]
    return service(argv, env, log, ready, timeout)


@contextmanager
def service(
    argv: list[str], env: dict[str, str], log: Path, ready: str, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a long-lived command; wait for ``ready`` in its log; stop it gracefully.

    The process gets its own process group so that, should a warm shutdown hang, its pool
    children are killed with it. On failure of the body, the log is printed (pytest shows it).
    """
    cwd = log.parent / f"{log.stem}-cwd"  # no stray .env or schedule files from the repo
    cwd.mkdir(exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(
            lambda: ready in log.read_text(errors="replace") or proc.poll() is not None,
            timeout,
            f"{log.stem} to log {ready!r}",
        )
        assert proc.poll() is None, f"{log.stem} exited {proc.returncode}"
        yield proc
    except BaseException:
        print(f"----- {log.stem} log -----\n{log.read_text(errors='replace')}")
        raise
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM (Celery's warm shutdown), then SIGKILL the whole group on timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (pool children), if any
    if proc.poll() is None:
        proc.wait(10)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextmanager
def celery_client(broker: str) -> Iterator[Any]:
    from celery import Celery

    client = Celery("tipwatch-test-client", broker=broker, backend=broker)
    try:
        yield client
    finally:
        client.close()


def poll_all(client: Any, sources: list[str]) -> dict[str, dict[str, Any]]:
    """Send ``tipwatch.poll_source`` for each source; return each source's report."""
    results = {s: client.send_task("tipwatch.poll_source", args=[s], queue="poll") for s in sources}
    return {s: r.get(timeout=POLL_TIMEOUT) for s, r in results.items()}


def emails_for(smtp: SmtpServer, subscription: str) -> list[EmailMessage]:
    with smtp.mailbox.lock:
        messages = list(smtp.mailbox.messages)
    return [m for m in messages if subscription in str(m["Subject"]).lower()]


def subscribe_dubrovnik(tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    tipwatch.run("subscribe", "dubrovnik", "--query", "Dubrovnik", "--notify", smtp.url())


def assert_dubrovnik_email(message: EmailMessage) -> None:
    text = body_text(message)
    assert "Dubrovnik" in text, text
    # The explanation names the PDF pages, and each snippet the page it comes from.
    assert re.search(r'"Dubrovnik": \d+ times?, pages? \d+', text, re.IGNORECASE), text
    assert re.search(r"p\. \d+: .*Dubrovnik", text), text


def assert_dubrovnik_archived_once(tipwatch: Tipwatch) -> None:
    """The word is in exactly one archived document: the n°23 EN newsletter PDF."""
    hits = tipwatch.json("archive", "search", "Dubrovnik")
    assert len(hits) == 1, hits
    assert hits[0]["kind"] == "pdf" and hits[0]["issue_number"] == 23, hits[0]


# -- tests ------------------------------------------------------------------------------------


def test_worker_polls_archives_and_emails_once(
    tipwatch: Tipwatch, smtp: SmtpServer, broker: str, tmp_path: Path
) -> None:
    subscribe_dubrovnik(tipwatch, smtp)
    sources = [s["name"] for s in tipwatch.json("sources")]
    assert sources

    with (
        celery_process(
            WORKER_ARGS, celery_env(tipwatch, broker), tmp_path / "worker.log", ready="ready."
        ),
        celery_client(broker) as client,
    ):
        first = poll_all(client, sources)
        for source, report in first.items():
            assert report["status"] == "ok", (source, report)
        assert sum(r["new"] for r in first.values()) > 0, first

        messages = wait_until(lambda: emails_for(smtp, "dubrovnik"), 60, "the dubrovnik email")
        assert len(messages) == 1, [m["Subject"] for m in messages]
        assert_dubrovnik_email(messages[0])

        second = poll_all(client, sources)
        for source, report in second.items():
            assert report["status"] == "ok", (source, report)
            assert (report["new"], report["changed"], report["alerts"]) == (0, 0, 0), report
        time.sleep(5)  # any (wrong) second delivery task would have run by now
        assert len(emails_for(smtp, "dubrovnik")) == 1

    assert_dubrovnik_archived_once(tipwatch)


def test_beat_schedules_polls(
    tipwatch: Tipwatch, smtp: SmtpServer, broker: str, tmp_path: Path
) -> None:
    config = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    onu = next(s for s in config["sources"] if s["name"] == "onu-vienne")
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": [{**onu, "interval_minutes": 0.05}]}))
    # Only the one source's host may be overridden: the others are not in this file.
    base_urls = {
        k: v
        for k, v in json.loads(tipwatch.env["TIPWATCH_BASE_URLS"]).items()
        if k == "onu-vienne.delegfrance.org"
    }
    tipwatch.env = make_env(
        tipwatch.data_dir,
        None,
        TIPWATCH_SOURCES=str(sources_file),
        TIPWATCH_BASE_URLS=json.dumps(base_urls),
    )
    env = celery_env(tipwatch, broker)
    # The CLI asks the same broker whether a poll is running now (its lock), as in a deployment.
    tipwatch.env = env
    subscribe_dubrovnik(tipwatch, smtp)
    assert [s["name"] for s in tipwatch.json("sources")] == ["onu-vienne"]

    def onu_state() -> dict[str, Any]:
        return next(s for s in tipwatch.json("sources") if s["name"] == "onu-vienne")

    worker_log = tmp_path / "worker.log"
    beat_args = ["beat", "--loglevel=INFO", f"--schedule={tmp_path / 'celerybeat-schedule'}"]
    with (
        celery_process(WORKER_ARGS, env, worker_log, ready="ready."),
        celery_process(beat_args, env, tmp_path / "beat.log", ready="beat: Starting"),
    ):
        wait_until(lambda: emails_for(smtp, "dubrovnik"), 90, "the dubrovnik email")
        wait_until(lambda: onu_state()["last_poll"], 30, "a finished poll of onu-vienne")

        # Let beat fire a few more polls after the first one archived and alerted.
        wait_until(lambda: succeeded_polls(worker_log) >= 3, 60, "three finished polls")
        time.sleep(3)
        messages = emails_for(smtp, "dubrovnik")
        assert len(messages) == 1, [m["Subject"] for m in messages]
        assert_dubrovnik_email(messages[0])
        # Beat fires a poll every 3 s: the state may show one running; a finished one says ok.
        state = onu_state()
        assert state["last_status"] in {"ok", "running"}, state
        wait_until(lambda: onu_state()["last_status"] == "ok", 30, "a poll shown as ok")

    assert_dubrovnik_archived_once(tipwatch)


def succeeded_polls(worker_log: Path) -> int:
    lines = worker_log.read_text(errors="replace").splitlines()
    return sum("tipwatch.poll_source[" in line and "succeeded" in line for line in lines)


def test_worker_sends_one_message_per_issue_once_its_pdfs_are_read(
    replica: Replica, smtp: SmtpServer, broker: str, tmp_path: Path
) -> None:
    """Under Celery an issue's PDFs are read on the extract queue, in parallel with the rest of
    the poll: its alert waits for the poll and for every file, then goes out once, naming the
    English and French PDFs. The first poll, with the default settings, alerts nobody."""
    from tests.test_publications import BOTH, EN_TEXT, FR_TEXT

    data_dir = tmp_path / "data"
    env = make_env(data_dir, replica)
    del env["TIPWATCH_QUIET_FIRST_POLL"]  # the default: a quiet baseline
    tipwatch = Tipwatch(data_dir, env)
    tipwatch.run("subscribe", "both", "--query", BOTH, "--notify", smtp.url())
    with (
        celery_process(
            WORKER_ARGS, celery_env(tipwatch, broker), tmp_path / "worker.log", ready="ready."
        ),
        celery_client(broker) as client,
    ):
        first = poll_all(client, ["onu-vienne"])["onu-vienne"]
        assert first["baseline"] is True and first["deferred"] > 0, first
        replica.publish_issue(24, date(2026, 10, 1), fr_text=FR_TEXT, en_text=EN_TEXT)
        second = poll_all(client, ["onu-vienne"])["onu-vienne"]
        assert second["baseline"] is False and second["deferred"] == 2, second

        (message,) = wait_until(lambda: emails_for(smtp, "both"), 60, "the issue's email")
        text = body_text(message)
        assert "n°24" in str(message["Subject"])
        assert "English, PDF" in text and "French, PDF" in text, text
        time.sleep(5)  # a (wrong) second message for the other PDF would have come by now
        assert len(emails_for(smtp, "both")) == 1
        assert len(smtp.mailbox.messages) == 1  # the baseline sent nothing
