"""The compose stack run natively: each service's exact command, PostgreSQL, Redis, faults.

docker-compose.yml is parsed and each app service's command is run as a local process with
only its host names and ports changed (postgres → a fresh database on 127.0.0.1, redis →
127.0.0.1:6379/11, /data → a temporary directory, port 8000 → a free port).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
import yaml

from tests.conftest import (
    BIN,
    OPERATOR_AUTH,
    ROOT,
    Replica,
    SmtpServer,
    Tipwatch,
    flushed_redis,
    free_port,
    make_env,
    redis_available,
    redis_db_url,
)
from tests.databases import PG_ADMIN, pg_available
from tests.matrix_server import BOT_USER, Homeserver
from tests.test_bot import ask, invite_bot
from tests.test_celery_e2e import (
    assert_dubrovnik_archived_once,
    assert_dubrovnik_email,
    celery_client,
    emails_for,
    service,
    subscribe_dubrovnik,
    wait_until,
)

REDIS_URL = redis_db_url(11)
TASK_TIMEOUT = 240

pytestmark = [
    pytest.mark.skipif(not redis_available(REDIS_URL), reason=f"no Redis at {REDIS_URL}"),
    pytest.mark.skipif(not pg_available(), reason=f"no PostgreSQL at {PG_ADMIN}"),
]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[str]:
    with flushed_redis(REDIS_URL):
        yield REDIS_URL


class PgDatabase:
    """A fresh PostgreSQL database that can be made unavailable and available again."""

    def __init__(self) -> None:
        self.name = f"tipwatch_{uuid.uuid4().hex[:12]}"
        self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"

    def sql(self, statement: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(statement))

    def make_unavailable(self) -> None:
        self.sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        self.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
        )

    def make_available(self) -> None:
        self.sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def scalar(self, query: str) -> Any:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(query)).scalar()
        finally:
            engine.dispose()


@pytest.fixture
def pg() -> Iterator[PgDatabase]:
    db = PgDatabase()
    db.sql(f'CREATE DATABASE "{db.name}"')
    try:
        yield db
    finally:
        from worker.storage.db import dispose_engines

        dispose_engines()
        db.sql(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')
        db.sql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        db.admin.dispose()


# -- docker-compose.yml, natively -------------------------------------------------------------


def compose_services() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])


def native(value: str, pg_url: str, data_dir: Path, web_port: int) -> str:
    """One compose value with the stack's host names and ports replaced by local ones."""
    value = re.sub(r"postgresql\+psycopg://.*@postgres:5432/tipwatch", pg_url, value)
    value = re.sub(r"redis://redis:6379/\d+", REDIS_URL, value)
    value = re.sub(r"^(--[a-z-]+=)?/data\b", lambda m: (m[1] or "") + str(data_dir), value)
    return {"8000": str(web_port), "0.0.0.0": "127.0.0.1"}.get(value, value)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}`` / ``${NAME:?message}`` with the values ``env`` has (as .env would
    give them); the others are left for :func:`native` (the database password)."""
    return re.sub(r"\$\{(\w+)(?:[:?-][^}]*)?\}", lambda m: env.get(m[1], m[0]), value)


class Stack:
    """The compose services' commands and environment, made local."""

    def __init__(self, pg_url: str, data_dir: Path, base_env: dict[str, str]) -> None:
        self.services = compose_services()
        self.web_port = free_port()
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.pg_url = pg_url
        environment = self.services["worker"]["environment"]
        self.env = {
            **base_env,
            **{
                k: native(interpolate(str(v), base_env), pg_url, data_dir, self.web_port)
                for k, v in environment.items()
            },
        }
        assert self.env["TIPWATCH_DATABASE_URL"] == pg_url, self.env
        assert self.env["TIPWATCH_BROKER_URL"] == REDIS_URL, self.env

    def command(self, service: str, **replace: str) -> list[str]:
        argv = [
            native(str(a), self.pg_url, self.data_dir, self.web_port)
            for a in self.services[service]["command"]
        ]
        argv = [replace.get(a, a) for a in argv]
        return [str(BIN / argv[0]), *argv[1:]]

    def tipwatch(self) -> Tipwatch:
        return Tipwatch(self.data_dir, dict(self.env))


def onu_only_env(tmp_path: Path, replica: Replica, interval: float = 0.05) -> dict[str, str]:
    """A sources file with only onu-vienne, polled every ``interval`` minutes, on the replica."""
    config = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    onu = next(s for s in config["sources"] if s["name"] == "onu-vienne")
    sources_file = tmp_path / "sources-onu.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": [{**onu, "interval_minutes": interval}]}))
    base_urls = {"onu-vienne.delegfrance.org": replica.base_urls["onu-vienne"]}
    return make_env(
        tmp_path / "unused",
        None,
        TIPWATCH_SOURCES=str(sources_file),
        TIPWATCH_BASE_URLS=json.dumps(base_urls),
    )


def worker_log_count(log: Path, needle: str) -> int:
    return sum(needle in line for line in log.read_text(errors="replace").splitlines())


def send_polls(client: Any, sources: list[str]) -> list[Any]:
    return [client.send_task("tipwatch.poll_source", args=[s], queue="poll") for s in sources]


def extraction_pending(cli: Tipwatch) -> int:
    return int(cli.json("status")["extraction"]["pending"])


# -- the stack --------------------------------------------------------------------------------


def test_compose_stack_natively(
    pg: PgDatabase,
    broker: str,
    smtp: SmtpServer,
    replica_session: Replica,
    tmp_path: Path,
) -> None:
    stack = Stack(pg.url, tmp_path / "data", onu_only_env(tmp_path, replica_session))
    tipwatch = stack.tipwatch()
    subscribe_dubrovnik(tipwatch, smtp)
    assert [s["name"] for s in tipwatch.json("sources")] == ["onu-vienne"]
    worker_log = tmp_path / "worker.log"
    base = f"http://127.0.0.1:{stack.web_port}"
    with (
        service(stack.command("worker"), stack.env, worker_log, "ready."),
        service(stack.command("extractor"), stack.env, tmp_path / "extractor.log", "ready."),
        service(stack.command("beat"), stack.env, tmp_path / "beat.log", "beat: Starting"),
        service(stack.command("web"), stack.env, tmp_path / "web.log", "Uvicorn running"),
    ):
        messages = wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the dubrovnik email")
        wait_until(
            lambda: worker_log_count(worker_log, "tipwatch.poll_source[") >= 6,
            90,
            "three finished polls",
        )
        time.sleep(3)
        messages = emails_for(smtp, "dubrovnik")
        assert len(messages) == 1, [m["Subject"] for m in messages]
        assert_dubrovnik_email(messages[0])

        assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
        api = httpx.get(f"{base}/api/status", timeout=10, auth=OPERATOR_AUTH).json()
        assert api["broker"]["reachable"] is True, api["broker"]
        assert api["alerts"]["sent"] == 1, api["alerts"]
        assert "onu-vienne" in httpx.get(f"{base}/status", timeout=10, auth=OPERATOR_AUTH).text

        status = tipwatch.json("status")
        (onu,) = status["sources"]
        # Beat fires a poll every 3 s: one may be running now (the worker holds its lock).
        assert onu["name"] == "onu-vienne" and onu["last_status"] in {"ok", "running"}, onu
        wait_until(
            lambda: tipwatch.json("status")["sources"][0]["last_status"] == "ok",
            30,
            "a poll shown as ok",
        )
        assert onu["last_poll"] and onu["documents"] > 0 and onu["failed"] == 0, onu
        assert set(status["broker"]["queues"]) == {"poll", "extract", "notify"}

    assert (tmp_path / "data" / "celerybeat-schedule").exists() or list(
        (tmp_path / "data").glob("celerybeat-schedule*")
    )
    assert_dubrovnik_archived_once(tipwatch)


def test_two_workers_archive_once_and_email_once(
    pg: PgDatabase, broker: str, smtp: SmtpServer, tipwatch: Tipwatch, tmp_path: Path
) -> None:
    stack = Stack(pg.url, tmp_path / "data", tipwatch.env)
    cli = stack.tipwatch()
    subscribe_dubrovnik(cli, smtp)
    cli.run("subscribe", "trafficking", "--query", "trafficking", "--notify", smtp.url())
    sources = [s["name"] for s in cli.json("sources")]
    assert len(sources) == 5, sources

    def scaled(name: str, copy: str) -> list[str]:
        """The service's command as its ``--scale`` copy: one slot, its own node name."""
        command = stack.command(
            name,
            **{"--concurrency=4": "--concurrency=1", "--concurrency=2": "--concurrency=1"},
            **{f"--hostname={name}@%h": f"--hostname={name}-{copy}@%h"},
        )
        assert "--concurrency=1" in command and f"--hostname={name}-{copy}@%h" in command
        return command

    with (
        service(scaled("worker", "a"), stack.env, tmp_path / "worker-a.log", "ready."),
        service(scaled("worker", "b"), stack.env, tmp_path / "worker-b.log", "ready."),
        service(scaled("extractor", "a"), stack.env, tmp_path / "extractor-a.log", "ready."),
        service(scaled("extractor", "b"), stack.env, tmp_path / "extractor-b.log", "ready."),
        celery_client(broker) as client,
    ):
        results = send_polls(client, sources) + send_polls(client, sources)
        reports = [r.get(timeout=TASK_TIMEOUT) for r in results]
        both = [worker_log_count(tmp_path / f"worker-{w}.log", "poll_source[") for w in "ab"]
        assert all(both), f"each worker should have polled: {both}"

        def settled() -> list[dict[str, Any]] | None:
            alerts = cli.json("alerts", "--limit", "1000")
            return alerts if alerts and all(a["status"] == "sent" for a in alerts) else None

        wait_until(lambda: not extraction_pending(cli), 180, "every PDF extracted")
        alerts = wait_until(settled, 120, "every alert sent")
        time.sleep(5)  # a (wrong) second delivery would have arrived by now
        with smtp.mailbox.lock:
            messages = list(smtp.mailbox.messages)
        extracted = [
            worker_log_count(tmp_path / f"extractor-{w}.log", "extract_document[") for w in "ab"
        ]
        polled_only = [
            worker_log_count(tmp_path / f"worker-{w}.log", "extract_document[") for w in "ab"
        ]

    for report in reports:
        assert report["status"] in ("ok", "skipped"), report
    assert all(extracted), f"each extractor should have extracted: {extracted}"
    assert polled_only == [0, 0], "extraction ran outside the extract queue"
    documents = pg.scalar("SELECT count(*) FROM document")
    assert documents > 0
    pdfs = pg.scalar("SELECT count(*) FROM document WHERE kind = 'pdf'")
    assert sum(r.get("deferred", 0) for r in reports) == pdfs > 0
    assert pg.scalar("SELECT max(extract_attempts) FROM document WHERE kind = 'pdf'") == 1
    assert pg.scalar("SELECT count(DISTINCT content_sha256) FROM document") == documents
    # Every archived document was "new" to exactly one poll, and under its own source.
    counts = {s["name"]: s["documents"] for s in cli.json("sources")}
    new_by_source: dict[str, int] = {}
    for report in reports:
        new_by_source[report["source"]] = new_by_source.get(report["source"], 0) + report.get(
            "new", 0
        )
    assert sum(new_by_source.values()) == documents, (new_by_source, documents)
    assert new_by_source == {k: v for k, v in counts.items()}, (new_by_source, counts)

    headers = [m["X-TIPWatch-Alert"] for m in messages]
    assert len(headers) == len(alerts), (len(headers), len(alerts))
    assert len(set(headers)) == len(headers), sorted(headers)
    assert {f"alert-{a['id']}" for a in alerts} == set(headers)
    assert len(emails_for(smtp, "dubrovnik")) == 1


def test_pdf_extraction_runs_on_its_own_queue(
    pg: PgDatabase, broker: str, smtp: SmtpServer, replica_session: Replica, tmp_path: Path
) -> None:
    """The worker service polls and archives; PDFs wait on the extract queue, untouched, until
    the extractor service runs; then each is extracted and matched once, and alerts go out."""
    stack = Stack(pg.url, tmp_path / "data", onu_only_env(tmp_path, replica_session))
    cli = stack.tipwatch()
    subscribe_dubrovnik(cli, smtp)
    queue = redis.Redis.from_url(broker)
    try:
        with (
            service(stack.command("worker"), stack.env, tmp_path / "worker.log", "ready."),
            celery_client(broker) as client,
        ):
            (result,) = send_polls(client, ["onu-vienne"])
            report = result.get(timeout=TASK_TIMEOUT)
            assert report["status"] == "ok" and report["deferred"] > 0, report
            time.sleep(2)  # a (wrong) extraction on the poll worker would have started
            status = cli.json("status")
            assert status["extraction"]["pending"] == report["deferred"], status["extraction"]
            assert status["broker"]["queues"]["extract"] == report["deferred"], status["broker"]
            assert queue.llen("extract") == report["deferred"]
        assert cli.json("archive", "search", "Dubrovnik") == []  # not extracted yet
        assert emails_for(smtp, "dubrovnik") == []
        pending = [d for d in cli.json("archive", "list", "--limit", "500") if d["kind"] == "pdf"]
        assert {d["extract_status"] for d in pending} == {"pending"}, pending
        assert len(pending) == report["deferred"]

        extractor_log = tmp_path / "extractor.log"
        with (  # the worker again too: alerts are delivered on the notify queue
            service(stack.command("worker"), stack.env, tmp_path / "worker2.log", "ready."),
            service(stack.command("extractor"), stack.env, extractor_log, "ready."),
        ):
            messages = wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the email")
            wait_until(lambda: not extraction_pending(cli), 60, "every PDF extracted")
            time.sleep(3)
            assert len(emails_for(smtp, "dubrovnik")) == 1
        assert_dubrovnik_email(messages[0])
        assert worker_log_count(extractor_log, "extract_document[") >= len(pending)
        for log in ("worker.log", "worker2.log"):
            assert worker_log_count(tmp_path / log, "extract_document[") == 0, log
        assert queue.llen("extract") == 0
    finally:
        queue.close()
    assert_dubrovnik_archived_once(cli)
    documents = cli.json("archive", "list", "--limit", "500")
    assert {d["extract_status"] for d in documents} == {"done"}
    newsletter = next(d for d in documents if d["kind"] == "pdf" and d["issue_number"] == 23)
    assert newsletter["pages"] > 0 and newsletter["series"], newsletter


def test_second_beat_refuses_to_start(broker: str, tipwatch: Tipwatch, tmp_path: Path) -> None:
    env = {**tipwatch.env, "TIPWATCH_BROKER_URL": broker, "TIPWATCH_RESULT_BACKEND": broker}
    services = compose_services()
    argv = [str(BIN / "celery"), *services["beat"]["command"][1:]]

    def beat(n: int) -> list[str]:
        return [a.replace("/data/", f"{tmp_path}/beat{n}-") for a in argv]

    lock = redis.Redis.from_url(broker)
    try:
        with service(beat(1), env, tmp_path / "beat1.log", "beat: Starting") as first:
            wait_until(lambda: lock.get("tipwatch:beat"), 30, "the beat lock")
            second = subprocess.run(
                beat(2), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
            )
            output = second.stdout + second.stderr
            assert second.returncode != 0, output
            assert "another celery beat holds the lock 'tipwatch:beat'" in output, output
            assert "refusing to start" in output, output
            time.sleep(2)
            assert first.poll() is None, "the first beat must keep running"
            ttl = lock.ttl("tipwatch:beat")
            assert 0 < ttl <= 60, ttl
        # A beat stopped cleanly lets the next one start at once.
        assert lock.get("tipwatch:beat") is None
        with service(beat(3), env, tmp_path / "beat3.log", "beat: Starting") as third:
            time.sleep(2)
            assert third.poll() is None
    finally:
        lock.close()


# -- faults -----------------------------------------------------------------------------------


def test_poll_survives_postgres_outage(
    pg: PgDatabase, broker: str, replica_session: Replica, tmp_path: Path
) -> None:
    stack = Stack(pg.url, tmp_path / "data", onu_only_env(tmp_path, replica_session))
    cli = stack.tipwatch()
    cli.run("sources")  # creates the schema
    log = tmp_path / "worker.log"
    with (
        service(stack.command("worker"), stack.env, log, "ready."),
        service(stack.command("extractor"), stack.env, tmp_path / "extractor.log", "ready."),
        celery_client(broker) as client,
    ):
        pg.make_unavailable()
        try:
            (result,) = send_polls(client, ["onu-vienne"])
            wait_until(lambda: "Retry in" in log.read_text(errors="replace"), 60, "a retry")
            time.sleep(1)
        finally:
            pg.make_available()
        report = result.get(timeout=TASK_TIMEOUT)
        assert report["status"] == "ok" and report["new"] > 0, report
        assert "OperationalError" in log.read_text(errors="replace")
        (again,) = send_polls(client, ["onu-vienne"])
        second = again.get(timeout=TASK_TIMEOUT)
        assert (second["status"], second["new"], second["changed"]) == ("ok", 0, 0), second
        wait_until(lambda: not extraction_pending(cli), 120, "every PDF extracted")
    documents = pg.scalar("SELECT count(*) FROM document")
    assert documents == report["new"]
    assert pg.scalar("SELECT count(DISTINCT content_sha256) FROM document") == documents
    assert_dubrovnik_archived_once(cli)


def test_hanging_source_times_out_while_another_completes(
    broker: str, tipwatch: Tipwatch, replica_session: Replica, tmp_path: Path
) -> None:
    config = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    onu = next(s for s in config["sources"] if s["name"] == "onu-vienne")
    slow = {
        "name": "slow-site",
        "kind": "spip",
        "base_url": onu["base_url"],
        "listings": ["_fault/slow?seconds=60"],
        "interval_minutes": 360,
    }
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": [onu, slow]}))
    env = {
        **tipwatch.env,
        "TIPWATCH_SOURCES": str(sources_file),
        "TIPWATCH_BASE_URLS": json.dumps(
            {"onu-vienne.delegfrance.org": replica_session.base_urls["onu-vienne"]}
        ),
        "TIPWATCH_HTTP_TIMEOUT": "2",
        "TIPWATCH_BROKER_URL": broker,
        "TIPWATCH_RESULT_BACKEND": broker,
    }
    argv = [str(BIN / "celery"), *compose_services()["worker"]["command"][1:]]
    with (
        service(argv, env, tmp_path / "worker.log", "ready."),
        celery_client(broker) as client,
    ):
        started = time.monotonic()
        slow_result, onu_result = send_polls(client, ["slow-site", "onu-vienne"])
        slow_report = slow_result.get(timeout=TASK_TIMEOUT)
        onu_report = onu_result.get(timeout=TASK_TIMEOUT)
        elapsed = time.monotonic() - started
    assert onu_report["status"] == "ok" and onu_report["new"] > 0, onu_report
    assert slow_report["status"] == "failed", slow_report
    assert "timeout" in json.dumps(slow_report).lower(), slow_report
    assert elapsed < 60, f"the hanging listing held the worker for {elapsed:.0f}s"


def test_bot_service_natively(pg: PgDatabase, homeserver: Homeserver, tmp_path: Path) -> None:
    """The ``bot`` service's exact command, on PostgreSQL: a room subscribes itself, and the
    bot's memory (sync token, room, answered command) is in the database."""
    base_env = make_env(
        tmp_path / "unused",
        None,
        TIPWATCH_MATRIX_HOMESERVER=homeserver.base_url,
        TIPWATCH_MATRIX_USER=BOT_USER,
        TIPWATCH_MATRIX_PASSWORD=homeserver.bot_password,
    )
    stack = Stack(pg.url, tmp_path / "data", base_env)
    assert stack.services["bot"]["profiles"] == ["matrix"]
    with service(stack.command("bot"), stack.env, tmp_path / "bot.log", "ready in", timeout=90):
        room = invite_bot(homeserver, "deployed")
        answer = ask(homeserver, room, '!subscribe "forced criminality"')
        assert answer.startswith("Subscribed #"), answer
    assert pg.scalar("SELECT owner FROM subscription WHERE channel = 'matrix'") == room
    assert pg.scalar("SELECT room_id FROM matrix_room") == room
    assert pg.scalar("SELECT count(*) FROM matrix_command WHERE answered_at IS NOT NULL") == 1
    assert pg.scalar("SELECT next_batch FROM matrix_sync") is not None
