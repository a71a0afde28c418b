"""`tipwatch status` and the web's /status: real Redis (database 11) and a real SQLite archive."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import (
    OPERATOR_AUTH,
    SmtpServer,
    Tipwatch,
    flushed_redis,
    free_port,
    redis_available,
    redis_db_url,
)

STATUS_REDIS_URL = redis_db_url(11)

pytestmark = pytest.mark.skipif(
    not redis_available(STATUS_REDIS_URL), reason=f"Redis does not answer at {STATUS_REDIS_URL}"
)


@pytest.fixture
def status_broker() -> Iterator[redis.Redis]:
    with flushed_redis(STATUS_REDIS_URL) as client:
        yield client


@pytest.fixture
def polled(tipwatch: Tipwatch, smtp: SmtpServer) -> Tipwatch:
    tipwatch.env["TIPWATCH_BROKER_URL"] = STATUS_REDIS_URL
    tipwatch.run("subscribe", "dubrovnik", "--query", "Dubrovnik", "--notify", smtp.url())
    tipwatch.run("poll", "--source", "onu-vienne")
    return tipwatch


def test_status_shows_queues_polls_alerts_and_series(
    polled: Tipwatch, status_broker: redis.Redis
) -> None:
    status_broker.rpush("poll", "a", "b")
    status_broker.rpush("notify", "c")
    status_broker.rpush("notify\x06\x163", "prioritised")
    report = polled.json("status")

    assert report["broker"] == {
        "url": STATUS_REDIS_URL,
        "reachable": True,
        "error": None,
        "queues": {"poll": 2, "extract": 0, "notify": 2},
    }
    sources = {s["name"]: s for s in report["sources"]}
    onu = sources["onu-vienne"]
    assert onu["last_status"] == "ok" and onu["last_poll"] and onu["documents"] > 0, onu
    assert onu["failed"] == 0 and onu["last_error"] is None, onu
    assert sources["osce"]["last_status"] is None and sources["osce"]["last_poll"] is None
    assert report["alerts"] == {"pending": 0, "sending": 0, "sent": 1, "dead": 0}
    documents = polled.json("archive", "list", "--limit", "1000")
    errors = sum(bool(d["extract_error"]) for d in documents)
    assert report["failures"] == {
        "sources_failed": 0,
        "urls_failed": 0,
        "alerts_dead": 0,
        "extraction_errors": errors,
    }
    # A one-shot poll extracts every PDF itself: nothing is left for the extract queue.
    assert report["extraction"] == {"pending": 0, "errors": errors}
    assert all(d["extract_status"] == "done" for d in documents), documents
    series = {s["name"]: s for s in report["series"]}
    assert series, report["series"]
    assert any(s["latest_issue"] for s in series.values()), series
    assert all(isinstance(s["overdue"], bool) for s in series.values())

    table = polled.run("status").stdout
    assert "queued poll 2, extract 0, notify 2" in table, table
    assert "onu-vienne" in table and "1 sent" in table, table
    assert f"documents awaiting extraction: 0, archived with an extraction error: {errors}" in table


def test_status_says_broker_unreachable(polled: Tipwatch) -> None:
    polled.env["TIPWATCH_BROKER_URL"] = f"redis://:secret@127.0.0.1:{free_port()}/0"
    report = polled.json("status")
    broker = report["broker"]
    assert broker["reachable"] is False and broker["queues"] == {}, broker
    assert broker["error"].startswith("broker unreachable"), broker
    assert "secret" not in json.dumps(report)
    # The rest of the picture is still there.
    assert any(s["last_status"] == "ok" for s in report["sources"])
    table = polled.run("status").stdout
    assert "broker unreachable" in table and "secret" not in table, table


def test_failed_source_is_counted(tipwatch: Tipwatch, status_broker: redis.Redis) -> None:
    tipwatch.env["TIPWATCH_BROKER_URL"] = STATUS_REDIS_URL
    tipwatch.env["TIPWATCH_BASE_URLS"] = json.dumps(
        {"onu-vienne": f"http://127.0.0.1:{free_port()}"}
    )
    tipwatch.run("poll", "--source", "onu-vienne", check=False)
    report = tipwatch.json("status")
    onu = next(s for s in report["sources"] if s["name"] == "onu-vienne")
    assert onu["last_status"] == "failed" and onu["last_error"], onu
    assert report["failures"]["sources_failed"] == 1, report["failures"]


def test_web_status_page_and_api(polled: Tipwatch, status_broker: redis.Redis) -> None:
    from worker.storage.db import dispose_engines
    from worker.web import create_app

    status_broker.rpush("extract", "x")
    try:
        with TestClient(create_app(polled.settings())) as client:
            assert client.get("/api/status").status_code == 401  # the operator's only
            client.auth = OPERATOR_AUTH
            api = client.get("/api/status")
            assert api.status_code == 200, api.text
            body = api.json()
            assert body["broker"]["queues"] == {"poll": 0, "extract": 1, "notify": 0}
            assert body["alerts"]["sent"] == 1
            page = client.get("/status")
            assert page.status_code == 200, page.text
            html = page.text
            assert "queue extract" in html and "1 waiting" in html, html
            assert "onu-vienne" in html and "sent: 1" in html, html
            assert "awaiting extraction: 0" in html, html
            assert '<a href="/status"' in client.get("/alerts").text
    finally:
        dispose_engines()
