"""Exactly one Celery beat: a lock in the Redis broker, held while beat runs.

Two schedulers would send every periodic task twice. Beat takes ``tipwatch:beat`` on start
and a daemon thread renews it; if the holder dies the lock expires after ``LOCK_TTL``
seconds and a restarted beat can take it. A second beat refuses to start.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import threading
from contextlib import suppress
from typing import cast

import redis

from worker.status import masked_url

log = logging.getLogger(__name__)

LOCK_NAME = "tipwatch:beat"
LOCK_TTL = 60.0
RENEW_EVERY = LOCK_TTL / 4


class BeatAlreadyRunning(RuntimeError):
    """Another beat holds the lock."""


def acquire_beat_lock(broker_url: str) -> redis.lock.Lock | None:
    """Take the beat lock and keep renewing it; ``None`` when the broker is not Redis.

    Raises :class:`BeatAlreadyRunning` when another live beat holds it.
    """
    if not broker_url.startswith(("redis://", "rediss://")):
        log.warning("broker is not Redis: cannot guarantee a single beat")
        return None
    client = redis.Redis.from_url(broker_url)
    # Not thread-local: the renewing thread must see the token the main thread took.
    lock = client.lock(LOCK_NAME, timeout=LOCK_TTL, blocking=False, thread_local=False)
    if not lock.acquire(token=f"{socket.gethostname()}:{os.getpid()}".encode()):
        holder = cast(bytes | None, client.get(LOCK_NAME))
        client.close()
        raise BeatAlreadyRunning(
            f"another celery beat holds the lock {LOCK_NAME!r} on {masked_url(broker_url)}"
            f" (held by {holder.decode(errors='replace') if holder else 'unknown'}):"
            f" run exactly one beat; if its holder died, the lock expires within"
            f" {LOCK_TTL:.0f} s"
        )
    stop = threading.Event()
    threading.Thread(
        target=_renew, args=(lock, stop), name="tipwatch-beat-lock", daemon=True
    ).start()

    def release() -> None:
        stop.set()
        with suppress(redis.RedisError, redis.exceptions.LockError):
            lock.release()
        client.close()

    atexit.register(release)
    log.info("beat lock %s taken", LOCK_NAME)
    return lock


def _renew(lock: redis.lock.Lock, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY):
        try:
            lock.reacquire()
        except redis.exceptions.LockNotOwnedError:
            if _retake(lock):
                continue
            # It expired (this process stalled past the TTL) and another beat runs now.
            log.critical("beat lock %s lost to another process: stopping this beat", LOCK_NAME)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except redis.RedisError as exc:
            # The broker is down: nobody else can take the lock meanwhile; try again later.
            log.warning("could not renew beat lock %s: %s", LOCK_NAME, exc)


def _retake(lock: redis.lock.Lock) -> bool:
    """The lock is gone without another holder (a broker restarted without its data): take it
    again rather than stop the only beat. False when another beat holds it."""
    try:
        retaken = lock.acquire(blocking=False, token=lock.local.token)
    except redis.RedisError:
        return True  # the broker is flapping: look again at the next renewal
    if retaken:
        log.warning("beat lock %s was gone (broker restarted?): taken again", LOCK_NAME)
    return bool(retaken)
