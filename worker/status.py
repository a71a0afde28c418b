"""One picture of a running installation: broker queues, last polls, the outbox, late series.

Shared by ``tipwatch status`` and the web's ``/status`` and ``/api/status``. The broker is
asked with a short timeout, so a dead Redis makes the answer say so instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from config.settings import Settings
from worker.dates import as_utc
from worker.email_channel import pending_confirmations
from worker.newsletter import series_status
from worker.redact import masked_url
from worker.storage import ALERT_STATUSES
from worker.storage.db import session_scope
from worker.storage.models import Alert, Document, SourceState
from worker.storage.repo import document_counts, source_states

QUEUES = ("poll", "extract", "notify")
# kombu's Redis transport keeps a queue's prioritised messages in sibling lists "<queue>\x06\x16N".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
BROKER_TIMEOUT = 2.0


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


# The per-source lock a Celery poll holds (tasks.jobs.source_lock), in the broker.
POLL_LOCK_KEY = "tipwatch:poll:{}"


def unfinished_polls(states: Iterable[SourceState]) -> list[str]:
    """Sources whose latest poll started and never finished: interrupted, or running."""
    return [
        s.name
        for s in states
        if s.last_poll_started_at is not None
        and (
            s.last_poll_finished_at is None
            or as_utc(s.last_poll_started_at) > as_utc(s.last_poll_finished_at)
        )
    ]


def polls_running(
    broker_url: str, names: Sequence[str], timeout: float = BROKER_TIMEOUT
) -> set[str] | None:
    """Which of these sources a worker is polling now (its lock is held); None when the broker
    cannot tell (not Redis, or unreachable)."""
    if not names:
        return set()
    if not broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    client = redis.Redis.from_url(
        broker_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        held = client.mget([POLL_LOCK_KEY.format(name) for name in names])
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {name for name, value in zip(names, cast(list[Any], held), strict=True) if value}


def poll_states(engine: Engine, broker_url: str) -> tuple[dict[str, SourceState], set[str] | None]:
    """Every source's last poll, and which of the unfinished ones a worker is polling now.

    The database and the broker are read one after the other, so a poll that ends between the
    two reads would look interrupted (started, not finished, its lock released): such a
    source's row is read again, and then shows how that poll ended."""
    with session_scope(engine) as session:
        states = source_states(session)
    running = polls_running(broker_url, unfinished_polls(states.values()))
    if running is not None and (ended := set(unfinished_polls(states.values())) - running):
        with session_scope(engine) as session:
            again = source_states(session)
        states.update({name: again[name] for name in ended if name in again})
    return states, running


def poll_state(state: SourceState | None, running: set[str] | None) -> dict[str, Any]:
    """A source's last poll for people: ``last_poll`` (finished at), ``last_poll_started``,
    ``last_status`` and ``last_error``. A poll that started and never finished is
    ``interrupted`` (its process was killed) unless a worker holds its lock (``running``)."""
    if state is None:
        return {
            "last_poll": None,
            "last_poll_started": None,
            "last_status": None,
            "last_error": None,
        }
    started, finished = state.last_poll_started_at, state.last_poll_finished_at
    view: dict[str, Any] = {
        "last_poll": finished.isoformat() if finished else None,
        "last_poll_started": as_utc(started).isoformat() if started else None,
        "last_status": state.last_status,
        "last_error": state.last_error,
    }
    if started is None or (finished is not None and as_utc(finished) >= as_utc(started)):
        return view
    since = as_utc(started).isoformat(timespec="seconds")
    if running is not None and state.name in running:
        view["last_status"] = "running"
    elif running is None:  # no broker to ask: maybe a poll in another process
        view["last_status"] = "interrupted"
        view["last_error"] = f"poll started {since} has not finished (interrupted or still running)"
    else:
        view["last_status"] = "interrupted"
        view["last_error"] = f"poll started {since} never finished (interrupted)"
    return view


def collect_status(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """Everything ``tipwatch status`` shows, as plain JSON-ready data."""
    now = now or datetime.now(UTC)
    states, running = poll_states(engine, settings.broker_url)
    with session_scope(engine) as session:
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
        pending_confirmation = pending_confirmations(session)
    sources = []
    for source in settings.source_list:
        state = states.get(source.name)
        last_counts = (state.last_counts if state else None) or {}
        sources.append(
            {
                "name": source.name,
                "enabled": source.enabled,
                "interval_minutes": source.interval_minutes,
                "documents": counts.get(source.name, 0),
                **poll_state(state, running),
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
        "subscriptions": {"pending_confirmation": pending_confirmation},
    }
