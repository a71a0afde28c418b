"""One picture of a running installation: broker queues, last polls, the outbox, late series.

Shared by ``tipwatch status`` and the web's ``/status`` and ``/api/status``. The broker is
asked with a short timeout, so a dead Redis makes the answer say so instead of hanging it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from config.settings import Settings
from worker.newsletter import series_status
from worker.storage import ALERT_STATUSES
from worker.storage.db import session_scope
from worker.storage.models import Alert, Document
from worker.storage.repo import document_counts, source_states

QUEUES = ("poll", "extract", "notify")
# kombu's Redis transport keeps a queue's prioritised messages in sibling lists "<queue>\x06\x16N".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
BROKER_TIMEOUT = 2.0


def masked_url(url: str) -> str:
    """A broker URL fit to show: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


@dataclass
class BrokerStatus:
    url: str
    reachable: bool | None  # None: not a Redis broker, queue lengths cannot be read
    error: str | None = None
    queues: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "reachable": self.reachable,
            "error": self.error,
            "queues": self.queues,
        }


def broker_status(broker_url: str, timeout: float = BROKER_TIMEOUT) -> BrokerStatus:
    """Length of each Celery queue (Redis LLEN), or why it could not be read."""
    import redis

    shown = masked_url(broker_url)
    if not broker_url.startswith(("redis://", "rediss://")):
        return BrokerStatus(shown, None, "queue lengths are only read from a Redis broker")
    client = redis.Redis.from_url(
        broker_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    lengths: dict[str, int] = {}
    try:
        for queue in QUEUES:
            keys = [queue + suffix for suffix in _PRIORITY_SUFFIXES]
            lengths[queue] = sum(cast(int, client.llen(key)) for key in keys)
    except redis.RedisError as exc:
        return BrokerStatus(shown, False, f"broker unreachable: {exc}")
    finally:
        client.close()
    return BrokerStatus(shown, True, None, lengths)


def collect_status(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """Everything ``tipwatch status`` shows, as plain JSON-ready data."""
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        states = source_states(session)
        counts = document_counts(session)
        rows = session.execute(select(Alert.status, func.count()).group_by(Alert.status))
        by_status: dict[str, int] = {row[0]: row[1] for row in rows}
        series = [s.as_dict() for s in series_status(session, settings, now)]
        pending_extraction = session.scalar(
            select(func.count()).where(Document.extract_status == "pending")
        )
        failed_extraction = session.scalar(
            select(func.count()).where(Document.extract_error.is_not(None))
        )
    sources = []
    for source in settings.source_list:
        state = states.get(source.name)
        last_counts = (state.last_counts if state else None) or {}
        finished = state.last_poll_finished_at if state else None
        sources.append(
            {
                "name": source.name,
                "enabled": source.enabled,
                "interval_minutes": source.interval_minutes,
                "documents": counts.get(source.name, 0),
                "last_poll": finished.isoformat() if finished else None,
                "last_status": state.last_status if state else None,
                "last_error": state.last_error if state else None,
                "failed": int(last_counts.get("failed", 0)),
            }
        )
    return {
        "checked_at": now.isoformat(),
        "broker": broker_status(settings.broker_url).as_dict(),
        "sources": sources,
        "failures": {
            "sources_failed": sum(s["last_status"] == "failed" for s in sources),
            "urls_failed": sum(s["failed"] for s in sources),
            "alerts_dead": by_status.get("dead", 0),
            "extraction_errors": failed_extraction or 0,
        },
        "extraction": {"pending": pending_extraction or 0, "errors": failed_extraction or 0},
        "alerts": {status: by_status.get(status, 0) for status in ALERT_STATUSES},
        "series": series,
    }
