"""Thin Celery tasks: each builds its inputs and calls one plain function of ``worker``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from config.settings import Settings
from tasks.celery_app import app
from worker import runtime
from worker.alerts.deliver import deliver_alert, pending_alert_ids
from worker.alerts.digest import send_digests
from worker.extract.job import extract_document, lease_seconds, pending_extractions
from worker.fetch import RobotsCache
from worker.ingest.poll import poll_source

POLL_SOFT_LIMIT = 50 * 60
# One per worker process: the sources on one host (UNODC's three) read its robots.txt once
# per poll cycle, not once each.
ROBOTS = RobotsCache()


@contextmanager
def source_lock(broker_url: str, name: str, owner: str) -> Iterator[bool]:
    """True when the task ``owner`` may poll ``name``: one poll per source at a time,
    cluster-wide.

    Beat's ``expires`` drops queued duplicates, but a poll slower than its interval would
    otherwise overlap the next one. The lock lives in the Redis broker and expires by itself
    if its holder dies. Its token is the task id: the same task redelivered after its worker
    was killed mid-poll takes its own lock over instead of waiting for it to expire.
    """
    if not broker_url.startswith(("redis://", "rediss://")):
        yield True
        return
    client = redis.Redis.from_url(broker_url)
    key, token = f"tipwatch:poll:{name}", owner.encode()
    lock = client.lock(key, timeout=POLL_SOFT_LIMIT + 600, blocking=False, thread_local=False)
    acquired = lock.acquire(token=token)
    if not acquired and client.get(key) == token:  # our own earlier delivery died holding it
        lock.local.token = token
        acquired = lock.reacquire()
    try:
        yield bool(acquired)
    finally:
        if acquired:  # lost already (expired, or the broker restarted): nothing to release
            with suppress(redis.RedisError):
                lock.release()
        client.close()


# The database is unavailable (a restart, a failover): retry with exponential backoff.
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
}


def queue_deliveries(
    engine: Engine,
    settings: Settings,
    *,
    source: str | None = None,
    publication_ids: Sequence[int] | None = None,
) -> int:
    """Queue the delivery of the settled alerts: all, those about ``source``'s documents (its
    poll is over: the alerts it held are free), or those of these publications."""
    alert_ids = pending_alert_ids(engine, settings, source=source, publication_ids=publication_ids)
    for alert_id in alert_ids:
        deliver_alert_task.delay(alert_id)
    return len(alert_ids)


@app.task(
    name="tipwatch.poll_source",
    bind=True,
    **DATABASE_RETRY,
    max_retries=5,
    soft_time_limit=POLL_SOFT_LIMIT,
    time_limit=55 * 60,
)
def poll_source_task(self: Task, name: str) -> dict[str, Any]:
    """Poll one source: HTML is matched here, each new PDF goes to the extract queue; then
    queue delivery of the alerts created."""
    settings = runtime.settings()
    engine = runtime.engine(settings)
    with source_lock(settings.broker_url, name, self.request.id or uuid.uuid4().hex) as acquired:
        if not acquired:
            return {"source": name, "status": "skipped", "reason": "already being polled"}
        report = poll_source(
            engine,
            settings,
            settings.source(name),
            defer_extraction=lambda document_id: extract_document_task.delay(document_id),
            robots=ROBOTS,
        )
    queue_deliveries(engine, settings, source=name)
    return report.as_dict()


@app.task(name="tipwatch.extract_document", bind=True, **DATABASE_RETRY, max_retries=None)
def extract_document_task(self: Task, document_id: int) -> dict[str, Any]:
    """Extract, match and alert one archived PDF (time limits: ``task_annotations``)."""
    settings = runtime.settings()
    engine = runtime.engine(settings)
    try:
        outcome = extract_document(engine, settings, document_id)
    except SoftTimeLimitExceeded:  # the attempt is recorded: the retry waits out its lease
        raise self.retry(countdown=lease_seconds(settings), max_retries=None) from None
    if outcome.status == "busy":  # another attempt holds the lease, or died holding it
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    # Its publication's alerts, new or held until this file was read, may now be settled.
    if outcome.publication_id is not None:
        queue_deliveries(engine, settings, publication_ids=[outcome.publication_id])
    return outcome.as_dict()


@app.task(
    name="tipwatch.deliver_alert", bind=True, max_retries=None, soft_time_limit=120, time_limit=180
)
def deliver_alert_task(self: Task, alert_id: int) -> str:
    """Deliver one alert; retried with exponential backoff while endpoints fail."""
    settings = runtime.settings()
    status = deliver_alert(runtime.engine(settings), settings, alert_id)
    if status == "sending":
        # Claimed by another worker, or by one that died mid-send: look again after the
        # claim's lease, when a dead worker's claim can be taken over.
        raise self.retry(countdown=settings.notify_claim_lease + 1)
    if status == "pending":
        raise self.retry(countdown=min(30 * 2**self.request.retries, 3600))
    return status  # also "held": the extraction of its publication's last file queues it


@app.task(name="tipwatch.send_digests", soft_time_limit=600, time_limit=660)
def send_digests_task() -> dict[str, int]:
    """Send the daily and weekly digests that are due."""
    settings = runtime.settings()
    return send_digests(runtime.engine(settings), settings)


@app.task(name="tipwatch.sweep_alerts")
def sweep_alerts_task() -> dict[str, int]:
    """Re-queue pending alerts and extractions whose task was lost (e.g. a broker restart)."""
    settings = runtime.settings()
    engine = runtime.engine(settings)
    alerts = queue_deliveries(engine, settings)
    # A pending extraction whose task went missing (a broker restarted without its data) is
    # queued again once it has waited far beyond any normal queue delay.
    document_ids = pending_extractions(engine, settings, idle=settings.extract_requeue_after)
    for document_id in document_ids:
        extract_document_task.delay(document_id)
    return {"alerts": alerts, "extractions": len(document_ids)}
