"""Structured logs: a real Celery worker with ``TIPWATCH_LOG_FORMAT=json`` polls, extracts and
delivers; every log line is one JSON object, and the lines of the work carry the source, URL,
document or alert they are about."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import SmtpServer, Tipwatch
from tests.test_celery_e2e import (
    WORKER_ARGS,
    celery_client,
    celery_env,
    celery_process,
    emails_for,
    subscribe_dubrovnik,
    wait_until,
)

PLAIN_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def json_records(log: Path) -> tuple[list[dict[str, Any]], list[str]]:
    records, plain = [], []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))  # a line that is not valid JSON fails here
        elif PLAIN_LOG_LINE.match(line):
            plain.append(line)
    return records, plain


def test_json_logs_carry_source_url_and_document(
    tipwatch: Tipwatch, smtp: SmtpServer, broker: str, tmp_path: Path
) -> None:
    subscribe_dubrovnik(tipwatch, smtp)
    env = {**celery_env(tipwatch, broker), "TIPWATCH_LOG_FORMAT": "json"}
    log = tmp_path / "worker.log"
    with celery_process(WORKER_ARGS, env, log, "ready"), celery_client(broker) as client:
        report = client.send_task("tipwatch.poll_source", args=["onu-vienne"], queue="poll").get(
            timeout=180
        )
        assert report["status"] == "ok" and report["new"] > 0, report
        wait_until(lambda: emails_for(smtp, "dubrovnik"), 120, "the dubrovnik email")
        wait_until(lambda: tipwatch.json("status")["extraction"]["pending"] == 0, 60, "extractions")

    records, plain = json_records(log)
    assert not plain, plain[:5]  # every log line went through the JSON formatter
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)

    archived = [r for r in records if r["message"].startswith("archived ")]
    assert len(archived) == report["new"], len(archived)
    extracted = [r for r in records if r["message"].startswith("extracted document")]
    # One extraction job for every archived document: the PDFs on the extract queue, the HTML
    # pages in the poll task.
    assert len(extracted) == report["new"] > report["deferred"], len(extracted)
    for record in archived + extracted:
        assert record["source"] == "onu-vienne", record
        assert record["url"].startswith("http://127.0.0.1:"), record
        assert isinstance(record["document_id"], int), record
        assert str(record["document_id"]) in record["message"], record

    # Every line logged inside a task names the task and what it is about.
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "task" in record:
            by_task.setdefault(record["task"], []).append(record)
    assert all(r["source"] == "onu-vienne" for r in by_task["tipwatch.poll_source"])
    assert all(isinstance(r["document_id"], int) for r in by_task["tipwatch.extract_document"])
    deliveries = by_task["tipwatch.deliver_alert"]
    (alert,) = tipwatch.json("alerts")
    assert deliveries and all(r["alert_id"] == alert["id"] for r in deliveries), deliveries
    assert all(r["task_id"] for rows in by_task.values() for r in rows)
