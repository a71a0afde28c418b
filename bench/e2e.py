"""End-to-end throughput: documents per minute from discovery to delivered alert, 1 vs 2 workers.

Each run gets a fresh loopback replica of the sites, a fresh SQLite data dir, a local aiosmtpd
server and an empty Redis database (DB 10, flushed before and after). A subscription matching
every document (``the OR la OR de``) is created, then 1 or 2 separate Celery worker processes
(``celery -A worker worker --concurrency=1 --pool=prefork -Q poll,extract,notify``) are started
and ``tipwatch.poll_source`` is sent for every source. The clock runs from sending the tasks to
the moment every poll has finished and the SMTP server has received one email per alert; then
``tipwatch alerts --json`` must show as many alerts as emails, all ``sent``. ``smoke=True``: only
``unodc-glotip`` and 1 worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/10"
QUERY = "the OR la OR de"
TIMEOUT = 900  # seconds for one whole run


@dataclass
class Result:
    workers: int
    documents: int
    emails: int
    seconds: float

    @property
    def per_minute(self) -> float:
        return self.documents / self.seconds * 60 if self.seconds else 0.0


def _tipwatch(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "tipwatch"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"tipwatch {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def _flush() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def _run(workers: int, sources: list[str] | None) -> Result:
    from aiosmtpd.controller import Controller

    from tests.conftest import Mailbox, free_port, make_env
    from tests.replica import Replica
    from tests.test_celery_e2e import celery_client, celery_process, wait_until

    _flush()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        stack.callback(_flush)
        replica = stack.enter_context(Replica(root / "replica"))
        mailbox = Mailbox()
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()
        stack.callback(controller.stop)
        smtp_url = (
            f"mailto://127.0.0.1:{port}?from=tipwatch@example.org"
            "&to=analyst@example.org&name=TIPWatch"
        )
        env = make_env(
            root / "data",
            replica,
            TIPWATCH_BROKER_URL=REDIS_URL,
            TIPWATCH_RESULT_BACKEND=REDIS_URL,
        )
        _tipwatch(env, "subscribe", "everything", "--query", QUERY, "--notify", smtp_url)
        names = sources or [s["name"] for s in json.loads(_tipwatch(env, "sources", "--json"))]
        for i in range(workers):
            args = [
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--pool=prefork",
                "-Q",
                "poll,extract,notify",
                "-n",
                f"bench{i}@%h",
            ]
            stack.enter_context(celery_process(args, env, root / f"worker{i}.log", ready="ready."))
        client = stack.enter_context(celery_client(REDIS_URL))

        start = time.perf_counter()
        pending = {
            s: client.send_task("tipwatch.poll_source", args=[s], queue="poll") for s in names
        }

        def done() -> bool:
            if not all(r.ready() for r in pending.values()):
                return False
            expected = sum(r.get()["alerts"] for r in pending.values())
            with mailbox.lock:
                return len(mailbox.messages) >= expected

        wait_until(done, TIMEOUT, "every poll and every email", every=0.05)
        seconds = time.perf_counter() - start

        reports: dict[str, Any] = {s: r.get() for s, r in pending.items()}
        for source, report in reports.items():
            assert report["status"] == "ok", (source, report)
        documents = sum(len(r["document_ids"]) for r in reports.values())
        alerts = json.loads(_tipwatch(env, "alerts", "--json", "--limit", "1000000"))
        with mailbox.lock:
            emails = len(mailbox.messages)
        assert documents > 0, reports
        assert emails == len(alerts), (emails, len(alerts))
        assert all(a["status"] == "sent" for a in alerts), [a["status"] for a in alerts]
        return Result(workers, documents, emails, seconds)


def run(smoke: bool = False) -> str:
    sources = ["unodc-glotip"] if smoke else None
    results = [_run(n, sources) for n in ((1,) if smoke else (1, 2))]
    base = results[0]
    lines = [
        f"Sources: {', '.join(sources) if sources else 'all 5'}; one subscription `{QUERY}` "
        "(every document matches), email to a local aiosmtpd server; SQLite; Redis broker.",
        "",
        "| Celery workers | documents archived | emails | seconds | docs/minute "
        "| ratio vs 1 worker |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.workers} | {r.documents:,} | {r.emails:,} | {r.seconds:,.1f} "
            f"| {r.per_minute:,.0f} | {r.per_minute / base.per_minute:,.2f}× |"
        )
    lines += [
        "",
        "Each worker is a separate `celery -A worker worker --concurrency=1 --pool=prefork "
        "-Q poll,extract,notify` process. Time from sending `tipwatch.poll_source` for every "
        "source to the last email received; `tipwatch alerts --json` is then asserted to hold "
        "as many alerts as emails, all `sent`.",
    ]
    return "\n".join(lines)
