"""Shared fixtures: real servers on loopback, started once, and a fresh TIP Watch per test."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.replica import Replica

# Fixtures of the small archive site (mini_site, mini_web) for the archive and web tests, and
# the Matrix homeserver (homeserver) for the chat tests.
pytest_plugins = ["tests.archive_site", "tests.matrix_server"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP -------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """Messages received by the local SMTP server, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        with self.lock:
            return list(self.messages)


def body_text(message: EmailMessage) -> str:
    """The text/plain part of an email (apprise sends HTML with a text alternative)."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def body_html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part else ""


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox

    def url(self, to: str = "analyst@example.org") -> str:
        return f"mailto://{self.host}:{self.port}?from=tipwatch@example.org&to={to}&name=TIPWatch"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, mailbox)
    finally:
        controller.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    smtp_server.mailbox.clear()
    return smtp_server


# -- one page on loopback ---------------------------------------------------------------------


@contextmanager
def page_server(body: bytes, path: str = "/list", etag: str | None = None) -> Iterator[str]:
    """Serve one HTML page at ``path`` on loopback (404 elsewhere); with ``etag``, answer a
    matching If-None-Match with 304. Yields the server's base URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == path and etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200 if self.path == path else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body if self.path == path else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- the replica sites ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def replica_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    with Replica(tmp_path_factory.mktemp("replica")) as replica:
        yield replica


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    """A fresh replica per test, for tests that change the sites."""
    with Replica(tmp_path / "replica") as site:
        yield site


# -- TIP Watch configured against the replica -------------------------------------------------


@dataclass
class Tipwatch:
    """A TIP Watch installation in a temporary directory, pointed at a replica."""

    data_dir: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed ``tipwatch`` command exactly as a user would."""
        result = subprocess.run(
            [str(BIN / "tipwatch"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"tipwatch {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def make_due(self, url: str, column: str = "next_visit_at") -> None:
        """The hours pass for one URL: its revisit (``next_visit_at``) or its retry after a
        failure (``retry_at``) is due now."""
        from worker.urls import canonical_url

        assert self._make_due(column, canonical_url(url)) == 1, url

    def make_due_all(self) -> None:
        """The weeks pass: every URL's revisit is due now."""
        self._make_due("next_visit_at")

    def _make_due(self, column: str, key: str | None = None) -> int:
        import sqlalchemy as sa

        assert column in ("next_visit_at", "retry_at"), column
        where = " WHERE canonical_url = :u" if key else ""
        engine = sa.create_engine(self.settings().resolved_database_url)
        try:
            with engine.begin() as conn:
                done = conn.execute(
                    sa.text(f"UPDATE http_resource SET {column} = :t{where}"),
                    {"t": "2000-01-01 00:00:00.000000", "u": key},
                )
                return int(done.rowcount)
        finally:
            engine.dispose()

    def settings(self) -> Any:
        from config.settings import Settings

        keys = {
            k[len("TIPWATCH_") :].lower(): v
            for k, v in self.env.items()
            if k.startswith("TIPWATCH_")
        }
        if "base_urls" in keys:
            keys["base_urls"] = json.loads(keys["base_urls"])
        return Settings(**keys)


REAL_HOSTS = {
    "onu-vienne": "onu-vienne.delegfrance.org",
    "osce": "osce.delegfrance.org",
    "unodc": "www.unodc.org",
}


def replica_base_urls(replica: Replica) -> dict[str, str]:
    """TIPWATCH_BASE_URLS for a replica: each real host mapped to its loopback stand-in."""
    return {REAL_HOSTS[site]: url for site, url in replica.base_urls.items()}


# The operator's credentials (HTTP Basic) for /alerts, /status and their APIs.
OPERATOR_AUTH = ("operator", "test-operator-password")


def make_env(data_dir: Path, replica: Replica | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPWATCH_")}
    env.update(
        {
            "TIPWATCH_DATA_DIR": str(data_dir),
            "TIPWATCH_HOST_DELAY": "0",
            "TIPWATCH_HTTP_TIMEOUT": "10",
            "TIPWATCH_WEB_BASE_URL": "http://tipwatch.test",
            # Most tests subscribe, then poll once and expect alerts: they alert on the first
            # poll. tests/test_publications.py runs the default, a quiet baseline.
            "TIPWATCH_QUIET_FIRST_POLL": "false",
            "TIPWATCH_OPERATOR_PASSWORD": OPERATOR_AUTH[1],
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    if replica is not None:
        env["TIPWATCH_BASE_URLS"] = json.dumps(replica_base_urls(replica))
    env.update(extra)
    return env


@pytest.fixture
def tipwatch(tmp_path: Path, replica_session: Replica) -> Tipwatch:
    data_dir = tmp_path / "data"
    return Tipwatch(data_dir, make_env(data_dir, replica_session))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# The Redis server the tests use: 127.0.0.1:6379, or a private one (TIPWATCH_TEST_REDIS, e.g.
# redis://127.0.0.1:6390) so that two checkouts can run their suites at once.
TEST_REDIS = os.environ.get("TIPWATCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")


def redis_db_url(db: int) -> str:
    """A numbered database of the tests' Redis server."""
    return f"{TEST_REDIS}/{db}"


def redis_available(url: str = redis_db_url(0)) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def which(name: str) -> str | None:
    return shutil.which(name, path=f"{BIN}:{os.environ.get('PATH', '')}")


# -- Celery -----------------------------------------------------------------------------------

CELERY_REDIS_URL = redis_db_url(13)


@contextmanager
def flushed_redis(url: str) -> Iterator[Any]:
    """A client of a dedicated Redis database, emptied before and after use."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def broker() -> Iterator[str]:
    """A dedicated Redis database for Celery tests, empty before and after each test."""
    with flushed_redis(CELERY_REDIS_URL):
        yield CELERY_REDIS_URL
