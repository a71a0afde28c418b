"""The per-host rate limit shared by every worker process (Redis), against the real replica.

Request start times are taken on the client side, right after the pacer lets a request go
(``time.monotonic`` is one system-wide clock on Linux, so processes can be compared).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import Settings
from tests.conftest import ROOT, Replica, flushed_redis, redis_available, redis_db_url
from worker.fetch import Fetcher, HostPacer
from worker.ratelimit import RedisHostPacer, make_pacer
from worker.urls import netloc

REDIS_URL = redis_db_url(12)
UNREACHABLE = "redis://127.0.0.1:1/0"
DELAY = 0.3
TOLERANCE = 0.05

needs_redis = pytest.mark.skipif(
    not redis_available(REDIS_URL), reason=f"Redis does not answer at {REDIS_URL}"
)

# One worker process: fetch the URLs given through the shared pacer, print when each request
# was let go. It waits for "go" on stdin so that both processes start together.
CHILD = """
import json, sys, time
from worker.fetch import Fetcher
from worker.ratelimit import RedisHostPacer
from worker.urls import netloc

redis_url, prefix, delay, spool, *urls = sys.argv[1:]
starts = []

class Recording(RedisHostPacer):
    def wait(self, host, delay=None):
        super().wait(host, delay)
        starts.append((time.monotonic(), host))

pacer = Recording(redis_url, float(delay), prefix)
allowed = frozenset(netloc(u) for u in urls)
with Fetcher(allowed_netlocs=allowed, user_agent="TIPWatch-test/1", pacer=pacer,
             spool_dir=spool, retries=0) as fetcher:
    print("ready", flush=True)
    sys.stdin.readline()
    for url in urls:
        fetcher.get(url).discard()
print(json.dumps(starts), flush=True)
"""


class Recording(HostPacer):
    """Wraps a pacer and notes when each request was let go, and to which host."""

    def __init__(self, inner: HostPacer) -> None:
        super().__init__(0)
        self.inner = inner
        self.starts: list[tuple[float, str]] = []

    def wait(self, host: str, delay: float | None = None) -> None:
        self.inner.wait(host, delay)
        self.starts.append((time.monotonic(), host))


def gaps(starts: list[tuple[float, str]], host: str) -> list[float]:
    times = sorted(t for t, h in starts if h == host)
    return [b - a for a, b in itertools.pairwise(times)]


def run_workers(
    jobs: list[list[str]], prefix: str, tmp_path: Path
) -> list[list[tuple[float, str]]]:
    """Run one OS process per URL list, released together; each process's request starts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, REDIS_URL, prefix, str(DELAY), str(tmp_path), *urls],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for urls in jobs
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", proc.communicate(timeout=30)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "rate limit unavailable" not in err  # really shared, not the fallback
            results.append([(t, h) for t, h in json.loads(out.strip().splitlines()[-1])])
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    with flushed_redis(REDIS_URL) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    return f"tipwatch-test:{uuid.uuid4().hex[:8]}:"


def pages(replica: Replica, site: str, count: int = 4) -> list[str]:
    return [a["url"] for a in replica.articles(site)[:count]]


@needs_redis
def test_two_processes_share_one_host_budget(
    replica_session: Replica, redis_db: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    urls = pages(replica_session, "onu-vienne")
    host = netloc(urls[0])
    first, second = run_workers([urls, urls], prefix, tmp_path)
    assert len(first) == len(second) == len(urls) + 1  # robots.txt, then the pages
    combined = first + second
    assert min(gaps(combined, host)) >= DELAY - TOLERANCE, sorted(combined)
    # the processes really competed: neither had all its requests before the other's
    assert min(t for t, _ in second) < max(t for t, _ in first)
    assert min(t for t, _ in first) < max(t for t, _ in second)
    # one key per host, and it expires
    keys = redis_db.keys(prefix + "*")
    assert keys == [(prefix + host).encode()]
    assert 0 < redis_db.pttl(keys[0]) <= (DELAY + 61) * 1000


@needs_redis
def test_different_hosts_are_not_serialised(
    replica_session: Replica, redis_db: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    onu, osce = pages(replica_session, "onu-vienne"), pages(replica_session, "osce")
    first, second = run_workers([onu, osce], prefix, tmp_path)
    combined = first + second
    for urls in (onu, osce):
        assert min(gaps(combined, netloc(urls[0]))) >= DELAY - TOLERANCE
    # the two hosts' requests interleave instead of waiting for each other
    assert min(t for t, _ in second) < max(t for t, _ in first)
    assert min(t for t, _ in first) < max(t for t, _ in second)


def test_unreachable_redis_falls_back_and_still_paces(
    replica_session: Replica, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    urls = pages(replica_session, "onu-vienne")
    host = netloc(urls[0])
    pacer = Recording(RedisHostPacer(UNREACHABLE, DELAY))
    with (
        caplog.at_level(logging.WARNING, logger="worker.ratelimit"),
        Fetcher(
            allowed_netlocs=frozenset({host}),
            user_agent="TIPWatch-test/1",
            pacer=pacer,
            spool_dir=tmp_path,
        ) as fetcher,
    ):
        for url in urls:
            assert fetcher.get(url).status_code == 200
    assert len(pacer.starts) == len(urls) + 1
    assert min(gaps(pacer.starts, host)) >= DELAY - TOLERANCE
    warnings = [r for r in caplog.records if r.name == "worker.ratelimit"]
    assert len(warnings) == 1 and "rate limit unavailable" in warnings[0].getMessage()


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_robots_crawl_delay_is_honoured(
    replica: Replica, tmp_path: Path, prefix: str, shared: bool, request: pytest.FixtureRequest
) -> None:
    if shared:
        if not redis_available(REDIS_URL):
            pytest.skip(f"Redis does not answer at {REDIS_URL}")
        request.getfixturevalue("redis_db")  # flushed before and after
    crawl_delay = 0.5
    replica.set_robots("onu-vienne", f"User-agent: *\nCrawl-delay: {crawl_delay}\nDisallow:\n")
    urls = pages(replica, "onu-vienne", 3)
    host = netloc(urls[0])
    inner = RedisHostPacer(REDIS_URL, 0.1, prefix) if shared else HostPacer(0.1)
    pacer = Recording(inner)
    with Fetcher(
        allowed_netlocs=frozenset({host}),
        user_agent="TIPWatch-test/1",
        pacer=pacer,
        spool_dir=tmp_path,
    ) as fetcher:
        for url in urls:
            fetcher.get(url).discard()
    assert replica.hit_count(site="onu-vienne", path_prefix="/robots.txt") == 1
    assert min(gaps(pacer.starts, host)) >= crawl_delay - TOLERANCE


def test_make_pacer_chooses_by_settings(tmp_path: Path) -> None:
    def settings(url: str | None) -> Settings:
        return Settings(data_dir=tmp_path, host_delay=0.25, rate_limit_url=url)

    local = make_pacer(settings(None))
    assert type(local) is HostPacer and local.delay == 0.25
    shared = make_pacer(settings(REDIS_URL))
    assert isinstance(shared, RedisHostPacer) and shared.redis_url == REDIS_URL
    assert shared.delay == 0.25
    # the Celery path passes the broker; an explicit setting still wins
    broker = redis_db_url(13)
    assert isinstance(make_pacer(settings(None), default_url=broker), RedisHostPacer)
    assert type(make_pacer(settings("memory://"), default_url=broker)) is HostPacer
    assert type(make_pacer(settings(None), default_url="amqp://guest@localhost//")) is HostPacer
