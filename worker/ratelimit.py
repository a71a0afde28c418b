"""Per-host request spacing shared by every worker process, kept in Redis.

Each caller atomically reserves the next free start time for a host (a Lua script reading
Redis ``TIME``, so the processes' own clocks never matter), then sleeps until it. One key per
host holds the latest reserved start and expires shortly after it stops mattering. When Redis
cannot be reached the pacer falls back to spacing this process's requests only, warns once per
outage, and tries Redis again later: the limiter never makes a poll fail.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

import redis
from redis.commands.core import Script

from worker.fetch import HostPacer
from worker.redact import masked_url

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
KEY_MARGIN_MS = 60_000  # a host's key outlives its latest reservation by the gap plus this

# KEYS[1]: the host's key. ARGV[1]: gap before this request (µs). ARGV[2]: key margin (ms).
# Stores the reserved start (µs, Redis clock); returns how long the caller must wait (µs).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local gap = tonumber(ARGV[1])
local start = now
local last = tonumber(redis.call('GET', KEYS[1]) or '')
if last and last + gap > now then
  start = last + gap
end
local ttl = math.ceil((start - now + gap) / 1000) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', start), 'PX', ttl)
return start - now
"""

_scripts: dict[tuple[int, str], Script] = {}
_scripts_lock = threading.Lock()


def _reserve_script(url: str) -> Script:
    """The reservation script on one client (connection pool) per URL and process."""
    key = (os.getpid(), url)  # never share a pool across a fork
    with _scripts_lock:
        script = _scripts.get(key)
        if script is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
            script = _scripts[key] = client.register_script(_RESERVE)
        return script


class RedisHostPacer(HostPacer):
    """Keeps at least ``delay`` seconds between two requests to a host by *any* process.

    Same interface as :class:`HostPacer`, which it falls back to while Redis is unreachable
    (retrying Redis every ``retry_interval`` seconds).
    """

    def __init__(
        self,
        redis_url: str,
        delay: float,
        prefix: str = "tipwatch:host:",
        *,
        retry_interval: float = 30.0,
    ) -> None:
        super().__init__(delay)
        self.redis_url = redis_url
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._down_until = 0.0  # monotonic time before which Redis is not tried again
        self._degraded = False  # warned about an outage that is not over yet

    def wait(self, host: str, delay: float | None = None) -> None:
        gap = self.gap(delay)
        seconds = self._reserve(host, gap)
        if seconds is None:
            super().wait(host, delay)  # this process only
            return
        with self._lock:  # keep the fallback's view current, for a smooth switch-over
            self._last[host] = time.monotonic() + seconds
        if seconds > 0:
            time.sleep(seconds)

    def _reserve(self, host: str, gap: float) -> float | None:
        """Seconds until this caller's reserved start, or None when Redis is unavailable."""
        if time.monotonic() < self._down_until:
            return None
        try:
            script = _reserve_script(self.redis_url)
            waited = script(keys=[self.prefix + host], args=[round(gap * 1_000_000), KEY_MARGIN_MS])
        except Exception as exc:  # never fail a poll because of the limiter
            self._down_until = time.monotonic() + self.retry_interval
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "shared rate limit unavailable (%s: %s); spacing requests per process "
                    "until %s answers again",
                    type(exc).__name__,
                    exc,
                    masked_url(self.redis_url),
                )
            return None
        if self._degraded:
            self._degraded = False
            log.info("shared rate limit at %s available again", masked_url(self.redis_url))
        return max(0.0, int(waited) / 1_000_000)


def make_pacer(settings: Settings, *, default_url: str | None = None) -> HostPacer:
    """The pacer the settings ask for: shared through Redis, or this process only.

    ``TIPWATCH_RATE_LIMIT_URL`` wins; ``default_url`` (the broker, on the Celery path) is used
    when it is unset. A URL that is not Redis's (e.g. ``memory://``) means this process only.
    """
    url = settings.rate_limit_url or default_url
    if url and url.startswith(REDIS_SCHEMES):
        return RedisHostPacer(url, settings.host_delay)
    if settings.rate_limit_url and url != "memory://":
        log.warning("TIPWATCH_RATE_LIMIT_URL is not a Redis URL; spacing requests per process")
    return HostPacer(settings.host_delay)
