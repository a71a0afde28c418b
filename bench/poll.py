"""What an unchanged poll costs: this crawler vs revisiting everything vs the floor.

One replica of the sites, one archive, polled by the installed ``tipwatch poll`` (a
subprocess, as a user runs it) with the default host delay, counted on the replica's side:

1. a first poll fills the archive (not measured);
2. **this crawler**: an unchanged poll (entry pages conditionally, robots.txt once per host,
   archived items and files only when a sign of change or their revisit is due);
3. **revisit every poll**: the same poll with every source's ``revisit.every_poll`` set, the
   schedule before revisits went by evidence (every item and file asked again, conditionally);
4. **the floor**: a plain client asking each entry URL once, conditionally, and robots.txt
   once per host, paced like the crawler: no crawler can see a change for less.

Every unchanged poll must archive nothing new.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import yaml

from tests.replica import Hit, Replica

BIN = Path(sys.executable).parent
HOST_DELAY = 1.0  # seconds: TIPWATCH_HOST_DELAY's default


def _poll(env: dict[str, str], sources: Sequence[str]) -> tuple[dict, float]:
    """A poll's report, and its wall time: the sources' own (the process's start-up, the
    same for every schedule, left out)."""
    args = [str(BIN / "tipwatch"), "poll", "--json", "--no-notify"]
    for source in sources:
        args += ["--source", source]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"tipwatch poll exited {done.returncode}: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return report, sum(s["seconds"] for s in report["sources"])


def _new(report: dict) -> int:
    return sum(s["new"] + s["changed"] for s in report["sources"])


def _size(n: int) -> str:
    return f"{n:,} B" if n < 10 * 1024 else f"{n / 1024:,.0f} KiB"


def _every_poll(sources_file: Path, into: Path) -> Path:
    """The same sources, each revisiting everything on every poll."""
    config = yaml.safe_load(sources_file.read_text(encoding="utf-8"))
    for source in config["sources"]:
        source["revisit"] = {**source.get("revisit", {}), "every_poll": True}
    into.write_text(yaml.safe_dump(config), encoding="utf-8")
    return into


def _validators(entry_urls: list[str]) -> dict[str, dict[str, str]]:
    """The floor's first pass: each entry URL's validators, as request headers."""
    validators: dict[str, dict[str, str]] = {}
    with httpx.Client(timeout=30) as client:
        for url in entry_urls:
            answer = client.get(url)
            validators[url] = {
                k: v
                for k, v in (
                    ("If-None-Match", answer.headers.get("etag")),
                    ("If-Modified-Since", answer.headers.get("last-modified")),
                )
                if v
            }
    return validators


def _paced_pass(
    client: httpx.Client, urls: list[str], validators: dict[str, dict[str, str]], delay: float
) -> float:
    """The floor: robots.txt once per host, each entry URL conditionally, ``delay`` between
    two requests to a host. Returns the wall time."""
    started = time.perf_counter()
    last: dict[str, float] = {}
    hosts_done: set[str] = set()

    def pace(host: str) -> None:
        wait = last.get(host, -1e9) + delay - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        last[host] = time.perf_counter()

    for url in urls:
        host = httpx.URL(url).netloc.decode()
        if host not in hosts_done:
            hosts_done.add(host)
            pace(host)
            client.get(httpx.URL(url).copy_with(path="/robots.txt", query=None))
        pace(host)
        client.get(url, headers=validators[url])
    return time.perf_counter() - started


def _counts(hits: Sequence[Hit]) -> tuple[int, int, int]:
    """Requests, body bytes, and body bytes of PDFs."""
    pdf = sum(h.bytes_sent for h in hits if h.path.split("?")[0].lower().endswith(".pdf"))
    return len(hits), sum(h.bytes_sent for h in hits), pdf


def run(smoke: bool = False) -> str:
    from config.settings import DEFAULT_SOURCES, Settings
    from tests.conftest import make_env, replica_base_urls

    sources = ["onu-vienne"] if smoke else []  # [] = every enabled source
    delay = 0.0 if smoke else HOST_DELAY
    with (
        tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp,
        Replica(Path(tmp) / "replica") as replica,
    ):
        env = make_env(Path(tmp) / "data", replica)
        first, _ = _poll(env, sources)
        assert _new(first) > 0, first
        env["TIPWATCH_HOST_DELAY"] = str(delay)

        runs: dict[str, tuple[tuple[int, int, int], float]] = {}
        mark = len(replica.hits)
        ours, wall = _poll(env, sources)
        runs["this crawler"] = (_counts(replica.hits[mark:]), wall)
        assert _new(ours) == 0, ours

        every_file = _every_poll(DEFAULT_SOURCES, Path(tmp) / "every-poll.yaml")
        every = dict(env, TIPWATCH_SOURCES=str(every_file))
        mark = len(replica.hits)
        everything, wall = _poll(every, sources)
        runs["revisit every poll"] = (_counts(replica.hits[mark:]), wall)
        assert _new(everything) == 0, everything

        settings = Settings(base_urls=replica_base_urls(replica))
        chosen = [
            s for s in settings.source_list if s.enabled and (not sources or s.name in sources)
        ]
        entry_urls = list(dict.fromkeys(u for s in chosen for u in s.entry_urls))
        validators = _validators(entry_urls)
        mark = len(replica.hits)
        with httpx.Client(timeout=30) as client:
            wall = _paced_pass(client, entry_urls, validators, delay)
        runs["floor: entry URLs only"] = (_counts(replica.hits[mark:]), wall)

    (floor_requests, _, _), floor_wall = runs["floor: entry URLs only"]
    hosts = len({httpx.URL(u).netloc for u in entry_urls})
    lines = [
        f"Sources: {', '.join(sources) or 'all enabled'} ({len(entry_urls)} entry URLs on "
        f"{hosts} hosts); "
        f"{sum(len(s['document_ids']) for s in first['sources'])} documents archived by the "
        f"first poll; host delay {delay:g} s. Each unchanged poll archived nothing new.",
        "",
        "| unchanged poll | requests | bytes | PDF bytes | wall time | requests vs floor "
        "| wall time vs floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, ((requests, size, pdf), wall) in runs.items():
        lines.append(
            f"| {name} | {requests:,} | {_size(size)} | {_size(pdf)} | {wall:.1f} s "
            f"| {requests / floor_requests:.2f}× | {wall / floor_wall:.2f}× |"
        )
    lines += [
        "",
        "Counted by the replica server (requests of any status, robots.txt included; body "
        "bytes sent). The floor's requests are its second, conditional pass. Wall time: the "
        "polls' own (`seconds` in `tipwatch poll --json`), without the process's start-up.",
    ]
    return "\n".join(lines)
