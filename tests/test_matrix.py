"""Chat alerts reach a real Matrix homeserver (Synapse) on loopback, once each."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Tipwatch
from tests.matrix_server import SERVER_NAME, Homeserver

QUERY = '"Global Report"'


@pytest.fixture
def matrix_room(homeserver: Homeserver, request: pytest.FixtureRequest) -> str:
    """A fresh room per test (bot owner, reader joined); its alias, ``#name:localhost``."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    homeserver.create_room(name)
    return f"#{name}:{SERVER_NAME}"


def test_matrix_room_gets_one_short_message_per_alert(
    tipwatch: Tipwatch, homeserver: Homeserver, matrix_room: str, artifacts: Path
) -> None:
    # matrix:// is the client-server API over plain HTTP; no webhook mode, no .well-known
    # discovery (apprise only does it for matrixs://).
    url = (
        f"matrix://{homeserver.bot_user}:{homeserver.bot_password}"
        f"@{homeserver.host}:{homeserver.port}/{matrix_room}"
    )
    subscribed = tipwatch.run("subscribe", "glotip", "--query", QUERY, "--notify", url)
    polled = tipwatch.run("poll", "--source", "unodc-glotip")

    alerts = tipwatch.json("alerts")
    assert alerts, "the replica's Global Report pages match the query"
    assert {a["status"] for a in alerts} == {"sent"}, alerts
    bodies = homeserver.bodies(matrix_room)
    (artifacts / "matrix-messages.json").write_text(json.dumps(bodies, indent=2))
    assert len(bodies) == len(alerts), bodies

    for alert in alerts:
        link = f"http://tipwatch.test/documents/{alert['document_id']}"
        [body] = [b for b in bodies if b.rstrip().endswith(link)]
        title, *lines = body.splitlines()
        assert "[TIP Watch] glotip: " in title, body
        # One line per matching document: its language and kind, the words, the link.
        assert any(line.startswith('English PDF: "Global Report"') for line in lines), body
        assert lines[-1].endswith(f" — {link}")

    # Nothing new on the second poll: nothing more in the room.
    tipwatch.run("poll", "--source", "unodc-glotip")
    assert len(homeserver.bodies(matrix_room)) == len(alerts)
    assert len(tipwatch.json("alerts")) == len(alerts)

    listing = tipwatch.run("subscriptions", "--json").stdout
    for text in (listing, subscribed.stdout, subscribed.stderr, polled.stdout, polled.stderr):
        assert homeserver.bot_password not in text
    assert f"{homeserver.bot_user}:***@" in listing
