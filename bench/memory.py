"""Peak memory while archiving a big PDF: the worker's streamed fetch vs reading the body.

The replica serves ``/_fault/big.pdf?mb=N`` (N MiB starting with ``%PDF-``). Each path runs in
its own fresh Python subprocess, which reports its peak RSS (``VmHWM``; ``getrusage`` would
also count the parent's memory at fork, which Linux keeps across exec):

- **streamed** (what a poll does): ``worker.fetch.Fetcher.get`` streams the body to a spool
  file while hashing it, then ``LocalBlobStore.put_file`` moves it into the archive by sha256
  and the kind is sniffed from its first bytes;
- **in memory** (baseline): ``httpx.get(url).content``, hashed and written with ``put_bytes``;
- **imports only**: the same imports and nothing else, the floor both start from.

The streamed path's peak above the floor must stay below 64 MiB whatever the file's size, and
both paths must archive the same sha256.

A second table polls a hostile site (tests/hostile_site.py) with the real pipeline:

- a **300 MB HTML listing**: the poll refuses it past ``max_page_bytes`` while it streams;
  the baseline reads it whole and parses it, as polls did before that cap;
- a **page linking 10,000 PDFs**: the poll takes ``max_documents_per_page`` of them; the
  baseline is the same poll with the budgets lifted (every link requested).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.replica import Replica

MIB = 1024 * 1024


def peak_rss_kib() -> int:
    """This process's peak RSS. ``VmHWM`` starts afresh at exec; ``ru_maxrss`` would also count
    the memory of the parent it was forked from (Linux keeps it across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(mode: str, url: str, workdir: str) -> None:
    """Runs in the subprocess: archive ``url`` the ``mode`` way, print a JSON line."""
    import httpx

    from worker.blobs import LocalBlobStore
    from worker.extract.formats import sniff_kind
    from worker.fetch import Fetcher
    from worker.urls import netloc

    store = LocalBlobStore(Path(workdir) / "blobs")
    out: dict[str, object] = {"mode": mode}
    if mode == "streamed":
        with Fetcher(
            allowed_netlocs=frozenset({netloc(url)}),
            user_agent="TIPWatch/bench",
            max_bytes=4096 * MIB,
            spool_dir=Path(workdir),
        ) as fetcher:
            result = fetcher.get(url)
        assert result.path is not None and result.sha256 is not None
        with open(result.path, "rb") as handle:
            out["kind"] = sniff_kind(handle.read(1024), result.media_type, url)
        store.put_file(result.path, result.sha256)
        out["sha256"], out["size"] = result.sha256, result.size
    elif mode == "in memory":
        response = httpx.get(url, timeout=60)
        body = response.content
        out["kind"] = sniff_kind(body[:1024], "application/pdf", url)
        out["sha256"], out["size"] = store.put_bytes(body), len(body)
    out["maxrss_kib"] = peak_rss_kib()
    print(json.dumps(out))


def poll_child(mode: str, url: str, workdir: str) -> None:
    """Runs in the subprocess: poll the hostile listing at ``url`` the ``mode`` way."""
    import time

    from config.settings import Settings, SourceConfig
    from worker.discover import Page, kind_for
    from worker.ingest.poll import poll_source
    from worker.storage.db import get_engine

    out: dict[str, object] = {"mode": mode}
    started = time.monotonic()
    base, _, path = url.partition("/list")
    if mode == "parse in memory":
        import httpx

        response = httpx.get(url, timeout=600)
        page = Page(url, response.content, "text/html", "utf-8")
        out["links"] = len(kind_for("html").parse_entry(page))
    else:
        unbounded = mode == "poll, no budgets"
        limits = {"max_documents_per_page": 10**6, "max_documents": 10**6} if unbounded else {}
        settings = Settings(data_dir=Path(workdir), host_delay=0)
        source = SourceConfig(
            name="hostile", kind="html", base_url=base, listings=[f"list{path}"], **limits
        )
        engine = get_engine(settings.resolved_database_url)
        report = poll_source(engine, settings, source)
        out["status"] = report.status
        out["requests"] = report.new + report.changed + report.unchanged + report.failed
    out["seconds"] = time.monotonic() - started
    out["maxrss_kib"] = peak_rss_kib()
    print(json.dumps(out))


def hostile_rows(tmp: Path, smoke: bool) -> list[str]:
    from tests.hostile_site import HostileSite, huge_html, links_page, static

    size = (12 if smoke else 300) * MIB
    links = 300 if smoke else 10_000
    routes = {"/list-huge": huge_html(size), "/list-links": static(links_page(links))}
    rows = []
    with HostileSite(routes) as site:
        floor = _measure("imports only", site.url("/"), tmp / "hostile-floor")
        base = floor["maxrss_kib"] / 1024
        for label, path, modes in (
            (f"{size // MIB} MB HTML listing", "/list-huge", ("poll", "parse in memory")),
            (f"{links:,} PDF links", "/list-links", ("poll", "poll, no budgets")),
        ):
            ours, baseline = (
                _measure(mode, site.url(path), tmp / f"{mode}{path}".replace(" ", "-"))
                for mode in modes
            )
            ours_mib, baseline_mib = ours["maxrss_kib"] / 1024, baseline["maxrss_kib"] / 1024
            if "requests" in baseline:
                detail = f"{ours['requests']:,} vs {baseline['requests']:,} document requests"
            else:
                detail = f"{ours['status']}: refused unread vs parsed whole"
            rows.append(
                f"| {label} | {ours_mib:,.0f} ({ours_mib - base:+,.0f}) | {ours['seconds']:.1f} "
                f"| {modes[1]}: {baseline_mib:,.0f} ({baseline_mib - base:+,.0f}) "
                f"| {baseline['seconds']:.1f} "
                f"| {(baseline_mib - base) / max(ours_mib - base, 1):,.1f}× | {detail} |"
            )
    return [
        "",
        f"A poll of a hostile site (imports-only floor {base:,.0f} MiB): peak RSS MiB (above "
        "floor) and seconds, the pipeline as it is vs its baseline.",
        "",
        "| page | poll peak | poll s | baseline peak | baseline s | memory ratio (above floor) "
        "| what happened |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def _measure(mode: str, url: str, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", mode, url, str(workdir)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(smoke: bool = False) -> str:
    sizes = (16,) if smoke else (50, 200)
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        Replica(Path(tmp) / "replica") as replica,
    ):
        floor = _measure("imports only", replica.url("onu-vienne", "/"), Path(tmp) / "floor")
        for mb in sizes:
            url = replica.url("onu-vienne", f"/_fault/big.pdf?mb={mb}")
            streamed = _measure("streamed", url, Path(tmp) / f"s{mb}")
            naive = _measure("in memory", url, Path(tmp) / f"m{mb}")
            assert streamed["size"] == naive["size"] == mb * MIB, (streamed, naive)
            assert streamed["sha256"] == naive["sha256"], (streamed, naive)
            assert streamed["kind"] == naive["kind"] == "pdf"
            rows.append((mb, streamed, naive))
        hostile = hostile_rows(Path(tmp), smoke)
    base = floor["maxrss_kib"] / 1024
    lines = [
        f"Peak RSS of a fresh Python process archiving `/_fault/big.pdf?mb=N` from the replica; "
        f"imports-only floor {base:,.0f} MiB.",
        "",
        "| file MiB | streamed peak MiB (above floor) | in-memory peak MiB (above floor) "
        "| in-memory / streamed (above floor) |",
        "|---|---|---|---|",
    ]
    for mb, streamed, naive in rows:
        s, n = streamed["maxrss_kib"] / 1024, naive["maxrss_kib"] / 1024
        assert s - base < 64, f"streamed archiving of {mb} MiB peaked {s - base:.0f} MiB above"
        lines.append(
            f"| {mb} | {s:,.0f} ({s - base:+,.0f}) | {n:,.0f} ({n - base:+,.0f}) "
            f"| {(n - base) / max(s - base, 1):,.0f}× |"
        )
    lines += [
        "",
        "Both paths archive the same bytes (same sha256 and size, sniffed as PDF). The streamed "
        "path is asserted to stay within 64 MiB above the floor.",
        *hostile,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    mode, url, workdir = sys.argv[1:4]
    if mode == "imports only":
        import httpx  # noqa: F401

        import worker.blobs
        import worker.extract.formats
        import worker.fetch  # noqa: F401

        print(json.dumps({"maxrss_kib": peak_rss_kib()}))
    elif mode in ("streamed", "in memory"):
        child(mode, url, workdir)
    else:
        poll_child(mode, url, workdir)
    sys.stdout.flush()
