"""An unchanged poll of the replica sites: conditional GET vs a naive full re-download.

Three polls of every source by the installed ``tipwatch poll`` (a subprocess, as a user runs
it) against one loopback replica, counted on the replica's side (requests and body bytes):

1. the first poll (everything is new);
2. an unchanged poll: ETag / Last-Modified validators, 304s, archived bodies reused;
3. the same unchanged poll with conditional GET switched off on every site
   (``replica.set_conditional(site, False)``): every body comes again and the worker falls
   back to comparing hashes with the archive;

and, as a second baseline, a plain httpx GET of every URL the first poll fetched (what a
scraper without an archive or validators downloads each time). Polls 2 and 3 must both
find nothing new.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.replica import SITES, Hit, Replica

BIN = Path(sys.executable).parent


def _poll(env: dict[str, str], sources: Sequence[str]) -> dict:
    args = [str(BIN / "tipwatch"), "poll", "--json", "--no-notify"]
    for source in sources:
        args += ["--source", source]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"tipwatch poll exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _totals(hits: Sequence[Hit], site: str | None = None) -> tuple[int, int]:
    chosen = [h for h in hits if site is None or h.site == site]
    return len(chosen), sum(h.bytes_sent for h in chosen)


def _new(report: dict) -> int:
    return sum(s["new"] + s["changed"] for s in report["sources"])


def _size(n: int) -> str:
    return f"{n:,} B" if n < 10 * 1024 else f"{n / 1024:,.0f} KiB"


def _ratio(baseline: int, measured: int) -> str:
    return f"{baseline / measured:,.1f}×" if measured else "∞"


def run(smoke: bool = False) -> str:
    from tests.conftest import make_env

    sources = ["onu-vienne"] if smoke else []  # [] = every enabled source
    with (
        tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp,
        Replica(Path(tmp) / "replica") as replica,
    ):
        env = make_env(Path(tmp) / "data", replica)
        marks = [0]
        first = _poll(env, sources)
        marks.append(len(replica.hits))
        assert _new(first) > 0, first
        unchanged = _poll(env, sources)
        marks.append(len(replica.hits))
        for site in SITES:
            replica.set_conditional(site, False)
        unconditional = _poll(env, sources)
        marks.append(len(replica.hits))
        for site in SITES:
            replica.set_conditional(site, True)
        assert _new(unchanged) == 0, unchanged
        assert _new(unconditional) == 0, unconditional  # the content hash says "unchanged"
        assert all(s["status"] == "ok" for r in (first, unchanged) for s in r["sources"])

        hits = list(replica.hits)
        fetched = [h for h in hits[: marks[1]] if h.method == "GET" and h.status == 200]
        base = {site: url for site, url in replica.base_urls.items()}
        with httpx.Client(timeout=30) as client:
            for hit in fetched:
                client.get(base[hit.site] + hit.path).raise_for_status()
        marks.append(len(replica.hits))
        hits = list(replica.hits)
        runs = [hits[a:b] for a, b in itertools.pairwise(marks)]
        statuses_304 = sum(1 for h in runs[1] if h.status == 304)

    sites = sorted({h.site for h in hits})
    lines = [
        f"Sources polled: {', '.join(sources) or 'all enabled'}; "
        f"{sum(len(s['document_ids']) for s in first['sources'])} documents archived by the "
        f"first poll. Unchanged poll: {statuses_304} answers were 304 Not Modified, "
        f"{_new(unchanged)} new documents; no-conditional poll: {_new(unconditional)} new "
        "(hash comparison with the archive).",
        "",
        "| site | first poll req / bytes | unchanged poll req / bytes | no-conditional poll "
        "req / bytes | plain GET of first poll's URLs req / bytes | bytes saved vs no-conditional "
        "| bytes saved vs plain GET |",
        "|---|---|---|---|---|---|---|",
    ]
    for site in [*sites, None]:
        row = [_totals(r, site) for r in runs]
        cells = [f"{n:,} / {_size(b)}" for n, b in row]
        lines.append(
            f"| {site or '**total**'} | "
            + " | ".join(cells)
            + f" | {_ratio(row[2][1], row[1][1])} "
            f"| {_ratio(row[3][1], row[1][1])} |"
        )
    lines += [
        "",
        "Counted by the replica server (requests of any status, body bytes sent; robots.txt "
        "included). 'bytes saved' = baseline bytes / unchanged-poll bytes. The unchanged poll "
        "is asserted to archive nothing new.",
    ]
    return "\n".join(lines)
