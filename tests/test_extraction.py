"""Deferred PDF extraction (the ``extract`` queue's work), called as plain functions.

A poll with ``defer_extraction`` archives PDFs ``pending``; :func:`extract_document` must then
produce exactly what an inline poll produces, once, whatever the retries, duplicates or crashes.
The Celery routing itself is tested with the compose services in test_deploy.py.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from config.settings import Settings
from tests.conftest import Replica, SmtpServer, Tipwatch, make_env
from worker.extract.job import (
    MAX_ATTEMPTS,
    extract_document,
    lease_seconds,
    pending_extractions,
)
from worker.ingest.poll import SourceReport, poll_source
from worker.storage.db import dispose_engines, get_engine, session_scope
from worker.storage.models import Alert, Document

SOURCE = "onu-vienne"


@dataclass
class Install:
    cli: Tipwatch
    settings: Settings
    engine: Engine

    def poll(self, deferred: list[int] | None = None) -> SourceReport:
        defer = deferred.append if deferred is not None else None
        return poll_source(
            self.engine, self.settings, self.settings.source(SOURCE), defer_extraction=defer
        )

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every document by URL, with what extraction and matching produced."""
        with session_scope(self.engine) as session:
            rows = {}
            for d in session.scalars(select(Document)):
                rows[d.canonical_url] = {
                    "kind": d.kind,
                    "status": d.extract_status,
                    "title": d.title,
                    "language": d.language,
                    "issue_number": d.issue_number,
                    "series": d.series,
                    "published_at": d.published_at,
                    "text_sha256": d.text_sha256,
                    "page_count": d.page_count,
                    "pages": [p.text for p in d.pages],
                    "keywords": d.keywords,
                    "extract_error": d.extract_error,
                    "attempts": d.extract_attempts,
                    "alerts": sorted(
                        (a.subscription_id, str(a.explanation))
                        for a in session.scalars(select(Alert).where(Alert.document_id == d.id))
                    ),
                }
            return rows


@pytest.fixture
def make_install(tmp_path: Path, replica_session: Replica, smtp: SmtpServer) -> Iterator[Any]:
    def make(name: str) -> Install:
        data = tmp_path / name
        cli = Tipwatch(data, make_env(data, replica_session))
        cli.run("subscribe", "dubrovnik", "--query", "Dubrovnik", "--notify", smtp.url())
        cli.run("subscribe", "traite", "--query", "traite OR trafficking", "--notify", smtp.url())
        settings = cli.settings()
        return Install(cli, settings, get_engine(settings.resolved_database_url))

    yield make
    dispose_engines()


def test_deferred_extraction_gives_what_inline_extraction_gives(make_install: Any) -> None:
    inline, deferred = make_install("inline"), make_install("deferred")
    assert inline.poll().deferred == 0

    queued: list[int] = []
    report = deferred.poll(queued)
    assert report.status == "ok", report.failures
    assert report.deferred == len(queued) > 0
    before = deferred.documents()
    pdfs = {url: d for url, d in before.items() if d["kind"] == "pdf"}
    assert len(pdfs) == len(queued)
    for url, d in before.items():
        if d["kind"] == "pdf":  # archived, waiting: no text, no alerts yet
            assert (d["status"], d["pages"], d["alerts"]) == ("pending", [], []), url
        else:
            assert d["status"] == "done", url
    assert report.alerts == sum(len(d["alerts"]) for d in before.values())

    outcomes = [extract_document(deferred.engine, deferred.settings, i) for i in queued]
    assert {o.status for o in outcomes} == {"extracted"}
    assert sum(o.alerts for o in outcomes) > 0
    assert inline.documents() == deferred.documents()
    # One path: every document, HTML or PDF, in the poll or on the queue, went through the
    # extraction job's claim exactly once.
    assert {d["attempts"] for d in inline.documents().values()} == {1}


def test_duplicate_tasks_extract_and_alert_once(make_install: Any) -> None:
    install = make_install("dup")
    queued: list[int] = []
    install.poll(queued)
    first = [extract_document(install.engine, install.settings, i) for i in queued]
    alerts = install.documents()
    again = [extract_document(install.engine, install.settings, i) for i in queued]
    assert {o.status for o in again} == {"done"} and sum(o.alerts for o in again) == 0
    assert install.documents() == alerts
    assert sum(o.alerts for o in first) == sum(
        len(d["alerts"]) for d in alerts.values() if d["kind"] == "pdf"
    )
    assert extract_document(install.engine, install.settings, 10**9).status == "missing"


def _crash_extraction(settings: Settings, document_id: int) -> None:
    """In a forked child: start an extraction and die inside it, as a PDFium crash would."""
    import os

    import worker.extract.job

    def die(*_: object) -> None:
        os._exit(70)

    worker.extract.job._extract_blob = die  # type: ignore[assignment]
    dispose_engines()  # the parent's pooled connections are not ours
    engine = get_engine(settings.resolved_database_url)
    worker.extract.job.extract_document(engine, settings, document_id)


def test_a_pdf_that_kills_its_worker_is_retried_then_given_up(make_install: Any) -> None:
    install = make_install("crash")
    queued: list[int] = []
    install.poll(queued)
    victim = queued[0]
    lease = lease_seconds(install.settings)

    def expire_lease() -> None:
        with session_scope(install.engine) as session:
            started = datetime.now(UTC) - timedelta(seconds=lease + 1)
            session.execute(
                update(Document).where(Document.id == victim).values(extract_started_at=started)
            )

    for attempt in range(1, MAX_ATTEMPTS + 1):
        child = multiprocessing.get_context("fork").Process(
            target=_crash_extraction, args=(install.settings, victim)
        )
        child.start()
        child.join(60)
        assert child.exitcode == 70
        with session_scope(install.engine) as session:
            document = session.get(Document, victim)
            assert document is not None
            assert (document.extract_status, document.extract_attempts) == ("pending", attempt)
        # The lease of the dead attempt holds: a redelivered task waits, the sweeper skips it.
        busy = extract_document(install.engine, install.settings, victim)
        assert busy.status == "busy" and 0 < busy.retry_in <= lease + 1, busy
        assert victim not in pending_extractions(install.engine, install.settings)
        expire_lease()
        assert victim in pending_extractions(install.engine, install.settings)

    # The sweeper waits before re-queueing a fresh document (its task is probably queued).
    later = datetime.now(UTC) + timedelta(hours=1)
    fresh = [i for i in queued if i != victim]
    assert not set(fresh) & set(pending_extractions(install.engine, install.settings, idle=1800))
    assert set(fresh) <= set(
        pending_extractions(install.engine, install.settings, now=later, idle=1800)
    )

    gave_up = extract_document(install.engine, install.settings, victim)
    assert gave_up.status == "gave-up" and "abandoned" in str(gave_up.error), gave_up
    with session_scope(install.engine) as session:
        document = session.get(Document, victim)
        assert document is not None
        assert document.extract_status == "done" and document.extract_error == gave_up.error
        assert document.title  # still archived and listed, under its linking page's title
    status = install.cli.json("status")["extraction"]
    assert status == {"pending": len(fresh), "errors": 1}, status


def test_one_shot_poll_finishes_extractions_left_pending(
    make_install: Any, smtp: SmtpServer
) -> None:
    install = make_install("leftover")
    queued: list[int] = []
    install.poll(queued)
    assert install.cli.json("archive", "search", "Dubrovnik") == []

    result = install.cli.json("poll", "--source", SOURCE)
    assert sorted(o["document_id"] for o in result["extracted"]) == sorted(queued)
    assert {o["status"] for o in result["extracted"]} == {"extracted"}
    (hit,) = install.cli.json("archive", "search", "Dubrovnik")
    assert hit["issue_number"] == 23 and hit["extract_status"] == "done", hit
    subjects = [str(m["Subject"]) for m in smtp.mailbox.messages]  # poll delivered before exit
    assert sum("dubrovnik" in s for s in subjects) == 1, subjects
    assert install.cli.json("status")["extraction"]["pending"] == 0
