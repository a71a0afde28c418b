"""The Celery application: production defaults for a worker that must not lose work."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    beat_init,
    worker_process_init,
)
from kombu import Exchange, Queue

from config.settings import ConfigError
from tasks.schedule import beat_schedule
from worker import runtime
from worker.extract.job import lease_seconds
from worker.logs import configure_logging
from worker.status import QUEUES


def _tolerate_collected_transport() -> None:
    """Work around celery 5.7.0 + kombu 5.7.0 killing a worker when its Redis broker goes away.

    On a lost broker connection the consumer first *collects* the connection, which drops its
    transport, and then closes its channel and acks late-acked messages through it; both want
    the dropped transport and raise AttributeError (``'NoneType' object has no attribute
    'hostname'``), which celery reports as "Unrecoverable error": the worker exits, killing
    running tasks. Here a channel whose transport is gone raises redis's ConnectionError
    instead, the error every caller already expects of a lost connection, and the consumer
    goes on reconnecting. tests/test_broker_restart.py restarts Redis mid-poll.
    """
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._connparams
    if getattr(original, "tipwatch_patched", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise kombu_redis.get_redis_ConnectionError()(
                "the broker connection of this channel was lost and collected"
            )
        return original(self, asynchronous=asynchronous)

    _connparams.tipwatch_patched = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]


def make_app() -> Celery:
    _tolerate_collected_transport()
    try:
        settings = runtime.settings()
        settings.source_list  # noqa: B018 - validate the sources file up front
    except ConfigError as exc:  # the worker or beat would fail on it anyway: say why, once
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from exc
    app = Celery("tipwatch", broker=settings.broker_url, backend=settings.resolved_result_backend)
    app.conf.update(
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        task_default_queue="poll",
        task_routes={
            "tipwatch.poll_source": {"queue": "poll"},
            "tipwatch.extract_document": {"queue": "extract"},
            "tipwatch.deliver_alert": {"queue": "notify"},
            "tipwatch.sweep_alerts": {"queue": "notify"},
            "tipwatch.send_digests": {"queue": "notify"},
        },
        # A task is acknowledged only when done: a worker killed mid-task gets it redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        # PDFium may hang on a hostile PDF: the soft limit is the extraction timeout, the hard
        # one kills the child (the attempt is recorded; see worker.extract.job).
        task_annotations={
            "tipwatch.extract_document": {
                "soft_time_limit": settings.extract_timeout,
                "time_limit": lease_seconds(settings),
            }
        },
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 2 * 3600},
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule=beat_schedule(settings),
    )
    return app


app = make_app()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger: logging.Logger, **_: object) -> None:
    configure_logging(runtime.settings(), handlers=logger.handlers)


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    # Pooled database connections must not be shared across a fork.
    from worker.storage.db import dispose_engines

    dispose_engines()


@beat_init.connect
def _single_beat(**_: object) -> None:
    """Refuse to run a second scheduler: it would send every periodic task twice."""
    from worker.beatlock import BeatAlreadyRunning, acquire_beat_lock

    try:
        acquire_beat_lock(runtime.settings().broker_url)
    except BeatAlreadyRunning as exc:
        logging.getLogger("tipwatch.beat").error("refusing to start: %s", exc)
        raise SystemExit(1) from exc
