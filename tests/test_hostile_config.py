"""Hostile configuration: secrets in debug logs, invalid settings, an unusable archive, a
killed poll. Everything through the real ``tipwatch`` command (and the real Celery app)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.archive_site import MiniSite, mini_tipwatch
from tests.conftest import (
    BIN,
    ROOT,
    Mailbox,
    Tipwatch,
    flushed_redis,
    free_port,
    make_env,
    redis_available,
    redis_db_url,
)

# -- secrets at DEBUG -------------------------------------------------------------------------

SMTP_PASSWORD = "S3cretPass"
QUERY_TOKEN = "T0kenInQuery42"  # ?token=…: apprise keeps it in the URL it logs
GET_TOKEN = "T0kenSentAsGet43"  # ?-token=…: apprise sends it as a GET parameter (urllib3 logs it)
WEBHOOK_PASSWORD = "W3bhookPass44"  # json://user:password@host
SECRETS = (SMTP_PASSWORD, QUERY_TOKEN, GET_TOKEN, WEBHOOK_PASSWORD)


class AuthSmtp:
    """A real SMTP server (aiosmtpd) that accepts only the right password."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.logins: list[tuple[bytes, bytes]] = []
        self.port = free_port()

        def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
            self.logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=auth_data.password == SMTP_PASSWORD.encode())

        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=False,
        )


class Webhook:
    """A JSON endpoint recording the path (with its query) of every POST."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def auth_smtp() -> Iterator[AuthSmtp]:
    server = AuthSmtp()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_debug_logs_never_show_notification_secrets(
    log_format: str,
    mini_site: MiniSite,
    tmp_path: Path,
    auth_smtp: AuthSmtp,
    webhook: Webhook,
) -> None:
    tipwatch = mini_tipwatch(
        mini_site, tmp_path, TIPWATCH_LOG_LEVEL="DEBUG", TIPWATCH_LOG_FORMAT=log_format
    )
    mailto = (
        f"mailto://user:{SMTP_PASSWORD}@127.0.0.1:{auth_smtp.port}"
        "?from=tipwatch@example.org&to=analyst@example.org&mode=insecure"
    )
    hooks = [
        f"json://127.0.0.1:{webhook.port}/query?token={QUERY_TOKEN}",
        f"json://127.0.0.1:{webhook.port}/get?-token={GET_TOKEN}",
        f"json://hook:{WEBHOOK_PASSWORD}@127.0.0.1:{webhook.port}/basic",
    ]
    notify = [arg for url in (mailto, *hooks) for arg in ("--notify", url)]
    subscribed = tipwatch.run("subscribe", "labour", "--query", '"child labour"', *notify)
    polled = tipwatch.run("poll")

    # The secrets were used: the email went out with the password, the token was sent...
    assert auth_smtp.mailbox.wait_for(1), "no email delivered"
    assert (b"user", SMTP_PASSWORD.encode()) in auth_smtp.logins
    assert f"/get?token={GET_TOKEN}" in webhook.paths, webhook.paths
    assert {a["status"] for a in tipwatch.json("alerts")} == {"sent"}
    # ...and the debug output, TIP Watch's and apprise's and urllib3's, was really written...
    output = "\n".join((subscribed.stdout, subscribed.stderr, polled.stdout, polled.stderr))
    assert "Loaded JSON URL" in output and "urllib3" in output, output[-3000:]
    if log_format == "json":
        lines = [line for line in polled.stderr.splitlines() if line.startswith("{")]
        assert lines and all(json.loads(line)["message"] is not None for line in lines)
    # ...without any of the secrets.
    leaks = [line for line in output.splitlines() if any(s in line for s in SECRETS)]
    assert not leaks, "\n".join(leaks[:10])
    assert "-token=***" in output or "token=***" in output


# -- invalid configuration --------------------------------------------------------------------


def assert_config_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit code != 0 and, on stderr, the one line ``configuration error: …`` naming ``names``."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("configuration error: "), line
    for name in names:
        assert name in line, (name, line)
    return line


@pytest.fixture
def configured(tmp_path: Path) -> Tipwatch:
    """A TIP Watch with one (unreachable) source: only its configuration is of interest."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  - {name: local, kind: rss, base_url: 'http://127.0.0.1:9', feeds: [f]}\n"
    )
    env = make_env(tmp_path / "data", None, TIPWATCH_SOURCES=str(sources))
    return Tipwatch(tmp_path / "data", env)


BAD_SETTINGS = [
    pytest.param({"TIPWATCH_BASE_URLS": '{"local": '}, "TIPWATCH_BASE_URLS", id="base-urls-json"),
    pytest.param({"TIPWATCH_HOST_DELAY": "-1"}, "TIPWATCH_HOST_DELAY", id="negative-delay"),
    pytest.param({"TIPWATCH_HOST_DELAY": "inf"}, "TIPWATCH_HOST_DELAY", id="infinite-delay"),
    pytest.param({"TIPWATCH_HTTP_TIMEOUT": "soon"}, "TIPWATCH_HTTP_TIMEOUT", id="timeout-text"),
    pytest.param({"TIPWATCH_LOG_FORMAT": "xml"}, "TIPWATCH_LOG_FORMAT", id="log-format"),
    pytest.param({"TIPWATCH_LOG_LEVEL": "LOUD"}, "TIPWATCH_LOG_LEVEL", id="log-level"),
    pytest.param(
        {"TIPWATCH_DATABASE_URL": "postgresql://tw:dbS3cret@127.0.0.1:1/x"},
        "TIPWATCH_DATABASE_URL",
        id="database-unreachable",
    ),
    pytest.param(
        {"TIPWATCH_DATABASE_URL": "nosuchdb://127.0.0.1/x"},
        "TIPWATCH_DATABASE_URL",
        id="database-dialect",
    ),
]


@pytest.mark.parametrize(("env", "key"), BAD_SETTINGS)
def test_invalid_setting_is_one_line_naming_it(
    configured: Tipwatch, env: dict[str, str], key: str
) -> None:
    configured.env.update(env)
    for command in (("sources",), ("status", "--json")):
        line = assert_config_error(configured.run(*command, check=False), key)
        assert "dbS3cret" not in line


def test_non_utf8_sources_file(configured: Tipwatch, tmp_path: Path) -> None:
    sources = tmp_path / "latin1.yaml"
    sources.write_bytes("sources:\n  - name: café\n".encode("latin-1"))
    configured.env["TIPWATCH_SOURCES"] = str(sources)
    line = assert_config_error(configured.run("sources", check=False), str(sources))
    assert "TIPWATCH_SOURCES" in line and "UTF-8" in line


def run_installed(
    tipwatch: Tipwatch, *argv: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """An installed command (``tipwatch``, ``celery``) with the TIP Watch's environment, to
    its end: one that fails fast on its configuration."""
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        env=tipwatch.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_web(tipwatch: Tipwatch) -> subprocess.CompletedProcess[str]:
    return run_installed(tipwatch, "tipwatch", "web", "--port", str(free_port()))


def test_setting_from_dotenv_names_the_file(configured: Tipwatch, tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / ".env").write_text("TIPWATCH_LOG_FORMAT=yaml\n")
    result = run_installed(configured, "tipwatch", "sources", cwd=workdir, timeout=120)
    assert_config_error(result, "TIPWATCH_LOG_FORMAT", str(workdir / ".env"))


def test_web_and_celery_fail_fast_on_a_bad_setting(configured: Tipwatch) -> None:
    configured.env["TIPWATCH_HOST_DELAY"] = "-1"
    assert_config_error(run_web(configured), "TIPWATCH_HOST_DELAY")
    for role in (["worker", "--pool", "solo"], ["beat"]):
        celery = run_installed(configured, "celery", "-A", "tasks.celery_app", *role, cwd=ROOT)
        assert_config_error(celery, "TIPWATCH_HOST_DELAY")


def test_web_fails_fast_on_an_unreachable_database(configured: Tipwatch) -> None:
    configured.env["TIPWATCH_DATABASE_URL"] = "postgresql://tw:dbS3cret@127.0.0.1:1/x"
    web = run_web(configured)
    line = assert_config_error(web, "TIPWATCH_DATABASE_URL", "127.0.0.1:1")
    assert "dbS3cret" not in line


def test_unwritable_archive_directory_is_one_line(mini_site: MiniSite, tmp_path: Path) -> None:
    # Tests run as root, for whom permission bits mean nothing: a directory below a regular
    # file cannot be created by anyone.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file\n")
    archive = blocker / "archive"
    tipwatch = mini_tipwatch(mini_site, tmp_path, TIPWATCH_ARCHIVE_DIR=str(archive))
    line = assert_config_error(tipwatch.run("poll", check=False), "TIPWATCH_ARCHIVE_DIR")
    assert str(archive) in line, line


# -- a killed poll ----------------------------------------------------------------------------


class SlowSite:
    """A feed that answers only when released: a poll of it hangs until then."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/feed.xml":
                    site.requested.set()
                    site.release.wait(120)
                self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def slow_site() -> Iterator[SlowSite]:
    site = SlowSite()
    yield site
    site.close()


LOCK_REDIS_URL = redis_db_url(10)


def slow_tipwatch(site: SlowSite, tmp_path: Path, **extra: str) -> Tipwatch:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - {{name: slow, kind: rss, base_url: '{site.base}', feeds: [feed.xml]}}\n"
    )
    env = make_env(
        tmp_path / "data",
        None,
        TIPWATCH_SOURCES=str(sources),
        TIPWATCH_HTTP_TIMEOUT="120",
        **extra,
    )
    return Tipwatch(tmp_path / "data", env)


def kill_mid_poll(tipwatch: Tipwatch, site: SlowSite) -> tuple[datetime, datetime]:
    """Start ``tipwatch poll``, SIGKILL it while it waits for the feed; the time span."""
    before = datetime.now(UTC)
    proc = subprocess.Popen(
        [str(BIN / "tipwatch"), "poll"],
        env=tipwatch.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert site.requested.wait(120), "the poll never asked for the feed"
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    return before, datetime.now(UTC)


def source_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    (row,) = [r for r in rows if r["name"] == "slow"]
    return row


def test_killed_poll_shows_as_interrupted(slow_site: SlowSite, tmp_path: Path) -> None:
    tipwatch = slow_tipwatch(slow_site, tmp_path)
    before, after = kill_mid_poll(tipwatch, slow_site)

    for row in (
        source_row(tipwatch.json("sources")),
        source_row(tipwatch.json("status")["sources"]),
    ):
        assert row["last_status"] == "interrupted", row
        started = datetime.fromisoformat(row["last_poll_started"])
        assert before <= started <= after, (before, started, after)
        assert row["last_poll"] is None, row  # it never finished
        assert started.isoformat(timespec="seconds") in row["last_error"], row
        assert "never finished" in row["last_error"] or "not finished" in row["last_error"]
    for command in ("sources", "status"):
        table = tipwatch.run(command).stdout
        slow = next(line for line in table.splitlines() if "slow" in line)
        assert "interrupted" in slow and "never polled" not in table, table


@pytest.mark.skipif(not redis_available(LOCK_REDIS_URL), reason="no Redis for the poll lock")
def test_unfinished_poll_holding_its_lock_is_running(slow_site: SlowSite, tmp_path: Path) -> None:
    tipwatch = slow_tipwatch(slow_site, tmp_path, TIPWATCH_BROKER_URL=LOCK_REDIS_URL)
    kill_mid_poll(tipwatch, slow_site)
    with flushed_redis(LOCK_REDIS_URL) as client:
        client.set("tipwatch:poll:slow", "a-celery-task-id", ex=60)  # a worker polls it now
        assert source_row(tipwatch.json("status")["sources"])["last_status"] == "running"
        assert source_row(tipwatch.json("sources"))["last_status"] == "running"
        client.delete("tipwatch:poll:slow")  # the worker died: its lock expired
        assert source_row(tipwatch.json("sources"))["last_status"] == "interrupted"
