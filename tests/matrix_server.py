"""A real Matrix homeserver (Synapse) on loopback, for end-to-end tests of chat alerts.

``Homeserver.start(workdir)`` writes a minimal ``homeserver.yaml`` (server name ``localhost``,
SQLite, one plain-HTTP client listener on 127.0.0.1, no federation, no registration but a
shared secret for the admin registration API, relaxed rate limits), generates the signing key,
starts ``python -m synapse.app.homeserver`` and waits for the client API. It then registers the
bot ``tipwatch`` and the reader ``analyst`` through the shared-secret admin API and logs them in.
``create_room`` makes a room owned by the bot that the reader has joined; ``messages`` reads a
room's timeline as the reader.

Synapse runs under ``$TIPWATCH_SYNAPSE_PYTHON`` if set, else under this interpreter (the
``dev`` extra installs ``matrix-synapse``). Without it the tests are skipped — except under CI
(``$CI`` set), where they fail.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import free_port

SERVER_NAME = "localhost"
BOT_USER = "tipwatch"
READER_USER = "analyst"
START_TIMEOUT = 90.0

_UNLIMITED = {"per_second": 10000, "burst_count": 10000}


def synapse_python() -> str | None:
    """An interpreter that can run Synapse (``$TIPWATCH_SYNAPSE_PYTHON``, else this one), or
    None."""
    configured = os.environ.get("TIPWATCH_SYNAPSE_PYTHON")
    if not configured:
        return sys.executable if importlib.util.find_spec("synapse") else None
    if not Path(configured).exists():
        return None
    probe = subprocess.run(
        [configured, "-c", "import synapse.app.homeserver"], capture_output=True, timeout=120
    )
    return configured if probe.returncode == 0 else None


def require_synapse() -> str:
    """The Synapse interpreter; skip the test without one (fail under CI)."""
    python = synapse_python()
    if python is None:
        configured = os.environ.get("TIPWATCH_SYNAPSE_PYTHON")
        reason = (
            f"TIPWATCH_SYNAPSE_PYTHON={configured} cannot import synapse"
            if configured
            else "matrix-synapse is not installed (the dev extra installs it; "
            "or set TIPWATCH_SYNAPSE_PYTHON)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the Matrix test", pytrace=False)
        pytest.skip(reason)
    return python


def homeserver_yaml(workdir: Path, port: int, shared_secret: str) -> str:
    """A minimal, loopback-only homeserver configuration (JSON is valid YAML)."""
    limits = {
        "rc_message": _UNLIMITED,
        "rc_registration": _UNLIMITED,
        "rc_registration_token_validity": _UNLIMITED,
        "rc_login": {
            "address": _UNLIMITED,
            "account": _UNLIMITED,
            "failed_attempts": _UNLIMITED,
        },
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_joins_per_room": _UNLIMITED,
        "rc_invites": {
            "per_room": _UNLIMITED,
            "per_user": _UNLIMITED,
            "per_issuer": _UNLIMITED,
        },
        "rc_3pid_validation": _UNLIMITED,
        "rc_room_creation": _UNLIMITED,
        "rc_admin_redaction": _UNLIMITED,
    }
    config: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(workdir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}},
        "media_store_path": str(workdir / "media_store"),
        "signing_key_path": str(workdir / f"{SERVER_NAME}.signing.key"),
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "report_stats": False,
        # No federation: no federation listener, no outgoing federation, no key servers.
        "federation_domain_whitelist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "url_preview_enabled": False,
        "enable_metrics": False,
        "presence": {"enabled": False},
        "encryption_enabled_by_default_for_room_type": "off",
        **limits,
    }
    return json.dumps(config, indent=2)


@dataclass
class Homeserver:
    """A running Synapse; see the module docstring."""

    workdir: Path
    port: int
    shared_secret: str
    process: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    rooms: list[str] = field(default_factory=list)

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def start(cls, workdir: Path, python: str) -> Homeserver:
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(workdir, free_port(), secrets.token_hex(24))
        config = workdir / "homeserver.yaml"
        config.write_text(homeserver_yaml(workdir, server.port, server.shared_secret))
        generate = subprocess.run(
            [python, "-m", "synapse.app.homeserver", "-c", str(config), "--generate-keys"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if generate.returncode != 0:
            raise RuntimeError(f"synapse --generate-keys failed:\n{generate.stderr[-4000:]}")
        log = (workdir / "homeserver.log").open("wb")
        server.process = subprocess.Popen(
            [python, "-m", "synapse.app.homeserver", "-c", str(config)],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            server._wait_ready()
            for user in (BOT_USER, READER_USER):
                server.register(user, secrets.token_urlsafe(18))
                server.login(user)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"synapse exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/_matrix/client/versions", timeout=2).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"synapse not ready after {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def log_tail(self, chars: int = 6000) -> str:
        path = self.workdir / "homeserver.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- addresses ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def bot_user(self) -> str:
        return BOT_USER

    @property
    def bot_password(self) -> str:
        return self.passwords[BOT_USER]

    @staticmethod
    def user_id(user: str) -> str:
        return f"@{user}:{SERVER_NAME}"

    def apprise_url(self, room: str) -> str:
        """The apprise URL for the bot posting to ``room`` (a ``!room:id`` or ``#alias``) over
        the client-server API in plain HTTP (``matrix://``; ``matrixs://`` would be HTTPS)."""
        return (
            f"matrix://{BOT_USER}:{quote(self.bot_password, safe='')}@{self.host}:{self.port}/"
            f"{quote(room, safe='!:')}"
        )

    # -- client-server API --------------------------------------------------------------------

    def _request(
        self, method: str, path: str, user: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        response = httpx.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs
        )
        if not response.is_success:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def register(self, user: str, password: str, admin: bool = False) -> None:
        """Create an account through the shared-secret admin registration API."""
        nonce = self._request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join(
                [
                    nonce.encode(),
                    user.encode(),
                    password.encode(),
                    b"admin" if admin else b"notadmin",
                ]
            )
        )
        self._request(
            "POST",
            "/_synapse/admin/v1/register",
            json={
                "nonce": nonce,
                "username": user,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        self.passwords[user] = password

    def login(self, user: str) -> str:
        reply = self._request(
            "POST",
            "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": self.passwords[user],
                "initial_device_display_name": "tests",
            },
        )
        self.tokens[user] = reply["access_token"]
        return self.tokens[user]

    def create_room(self, alias: str) -> str:
        """A private room created by the bot, with the reader invited and joined. Returns
        its room id; its alias is ``#<alias>:localhost``."""
        room_id: str = self._request(
            "POST",
            "/_matrix/client/v3/createRoom",
            BOT_USER,
            json={
                "preset": "private_chat",
                "room_alias_name": alias,
                "name": f"TIP Watch {alias}",
                "invite": [self.user_id(READER_USER)],
            },
        )["room_id"]
        self._request(
            "POST", f"/_matrix/client/v3/join/{quote(room_id, safe='')}", READER_USER, json={}
        )
        self.rooms.append(room_id)
        return room_id

    def resolve(self, room: str) -> str:
        """The room id of ``#alias:server`` (a room id is returned as is)."""
        if not room.startswith("#"):
            return room
        path = f"/_matrix/client/v3/directory/room/{quote(room, safe='')}"
        room_id: str = self._request("GET", path, READER_USER)["room_id"]
        return room_id

    def messages(self, room: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The ``m.room.message`` events of a room (id or alias), oldest first, read by the
        reader."""
        room = self.resolve(room)
        events: list[dict[str, Any]] = []
        params: dict[str, Any] = {"dir": "b", "limit": 100}
        while len(events) < limit:
            page = self._request(
                "GET",
                f"/_matrix/client/v3/rooms/{quote(room, safe='')}/messages",
                READER_USER,
                params=params,
            )
            events += page.get("chunk", [])
            if not page.get("chunk") or "end" not in page:
                break
            params["from"] = page["end"]
        return [e for e in reversed(events) if e.get("type") == "m.room.message"]

    def bodies(self, room: str) -> list[str]:
        return [str(e.get("content", {}).get("body", "")) for e in self.messages(room)]

    # -- as the reader: rooms of their own, invitations, messages ------------------------------

    def reader_room(self, name: str, invite: tuple[str, ...] = ()) -> str:
        """A private room created by the reader, inviting ``invite`` (user names). Returns its
        room id."""
        room_id: str = self._request(
            "POST",
            "/_matrix/client/v3/createRoom",
            READER_USER,
            json={
                "preset": "private_chat",
                "name": name,
                "invite": [self.user_id(u) for u in invite],
            },
        )["room_id"]
        self.rooms.append(room_id)
        return room_id

    def invite(self, room: str, user: str, by: str = READER_USER) -> None:
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}/invite"
        self._request("POST", path, by, json={"user_id": self.user_id(user)})

    def kick(self, room: str, user: str, by: str = READER_USER) -> None:
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}/kick"
        self._request("POST", path, by, json={"user_id": self.user_id(user)})

    def say(self, room: str, body: str, user: str = READER_USER) -> str:
        """Send a plain text message; returns its event id."""
        txn = secrets.token_hex(8)
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message/{txn}"
        event_id: str = self._request("PUT", path, user, json={"msgtype": "m.text", "body": body})[
            "event_id"
        ]
        return event_id

    def membership(self, room: str, user: str) -> str | None:
        """``invite``, ``join``, ``leave``… of ``user`` in ``room``, as the reader sees it."""
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}/members"
        for event in self._request("GET", path, READER_USER).get("chunk", []):
            if event.get("state_key") == self.user_id(user):
                return str(event.get("content", {}).get("membership"))
        return None


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    """One Synapse for the whole session (tests make rooms of their own)."""
    python = require_synapse()
    server = Homeserver.start(tmp_path_factory.mktemp("synapse"), python)
    try:
        yield server
    finally:
        server.stop()
