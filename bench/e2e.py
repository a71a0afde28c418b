"""End-to-end throughput: documents per minute from discovery to delivered alert.

Three shapes of Celery workers, each process ``celery -A tasks.celery_app worker
--concurrency=1 --pool=prefork -Q <queues>``: one worker on every queue (the baseline), two such
workers, and the compose shape, a worker on ``poll,notify`` beside an extractor on ``extract``.

Each run gets a fresh loopback replica of the sites, a fresh SQLite data dir, a local aiosmtpd
server and an empty Redis database (DB 10, flushed before and after). A subscription matching
every document (``the OR la OR de``) is created, then the workers are started and
``tipwatch.poll_source`` is sent for every source. Two clocks run from sending the tasks: until
every poll has finished (PDFs still waiting on the extract queue), and until every PDF is
extracted, no alert is left to send and the SMTP server has received one email per alert;
then ``tipwatch alerts --json`` must show as many alerts as emails, all ``sent``.
``smoke=True``: only ``unodc-glotip`` and the baseline.
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


ALL = "poll,extract,notify"
SHAPES: dict[str, list[str]] = {
    "1 worker (all queues)": [ALL],
    "2 workers (all queues)": [ALL, ALL],
    "worker (poll,notify) + extractor (extract)": ["poll,notify", "extract"],
}


@dataclass
class Result:
    shape: str
    documents: int
    emails: int
    polls_seconds: float
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


def _unfinished(database: Path) -> int:
    """PDFs still to extract plus alerts still to send, read straight from SQLite."""
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        documents = db.execute(
            "SELECT count(*) FROM document WHERE extract_status = 'pending'"
        ).fetchone()[0]
        alerts = db.execute(
            "SELECT count(*) FROM alert WHERE status IN ('pending', 'sending')"
        ).fetchone()[0]
    return int(documents) + int(alerts)


def _sent(database: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        return int(db.execute("SELECT count(*) FROM alert WHERE status = 'sent'").fetchone()[0])


def _run(shape: str, sources: list[str] | None) -> Result:
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
        for i, queues in enumerate(SHAPES[shape]):
            args = [
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--pool=prefork",
                "-Q",
                queues,
                "-n",
                f"bench{i}@%h",
            ]
            stack.enter_context(celery_process(args, env, root / f"worker{i}.log", ready="ready."))
        client = stack.enter_context(celery_client(REDIS_URL))

        start = time.perf_counter()
        pending = {
            s: client.send_task("tipwatch.poll_source", args=[s], queue="poll") for s in names
        }

        database = root / "data" / "tipwatch.db"
        wait_until(lambda: all(r.ready() for r in pending.values()), TIMEOUT, "polls", every=0.05)
        polls_seconds = time.perf_counter() - start

        def done() -> bool:
            if _unfinished(database):
                return False
            with mailbox.lock:
                return len(mailbox.messages) >= _sent(database)

        wait_until(done, TIMEOUT, "every extraction and every email", every=0.05)
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
        return Result(shape, documents, emails, polls_seconds, seconds)


def run(smoke: bool = False) -> str:
    sources = ["unodc-glotip"] if smoke else None
    shapes = list(SHAPES)[:1] if smoke else list(SHAPES)
    results = [_run(shape, sources) for shape in shapes]
    base = results[0]
    lines = [
        f"Sources: {', '.join(sources) if sources else 'all 5'}; one subscription `{QUERY}` "
        "(every document matches), email to a local aiosmtpd server; SQLite; Redis broker.",
        "",
        "| Celery processes (1 slot each) | documents archived | emails | polls done (s) "
        "| all delivered (s) | docs/minute | ratio vs 1 worker |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.shape} | {r.documents:,} | {r.emails:,} | {r.polls_seconds:,.1f} "
            f"| {r.seconds:,.1f} | {r.per_minute:,.0f} | {r.per_minute / base.per_minute:,.2f}× |"
        )
    lines += [
        "",
        "Each process is a separate `celery -A tasks.celery_app worker --concurrency=1 "
        "--pool=prefork -Q <queues>`. *polls done*: from sending `tipwatch.poll_source` for "
        "every source until every poll returned (its PDFs may still wait on the extract "
        "queue); *all delivered*: until every PDF is extracted and the last email received. "
        "`tipwatch alerts --json` is then asserted to hold as many alerts as emails, all `sent`.",
    ]
    return "\n".join(lines)
