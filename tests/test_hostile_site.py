"""A hostile or broken site cannot hang, exhaust or corrupt a poll.

Each test serves one kind of hostility from a real loopback server (tests/hostile_site.py) and
runs the real ``tipwatch poll`` as a user would, then checks what the user needs: the poll ends
within its deadline and the other sources are polled, memory stays bounded, nothing is left on
disk, no duplicate version or alert, and the reason is said.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest

from tests.archive_site import newsletter
from tests.conftest import BIN, Tipwatch, make_env
from tests.hostile_site import (
    HostileSite,
    huge_html,
    links_page,
    regenerated_pdf,
    static,
    trickle,
)

GOOD_LISTING = links_page(2, prefix="/good/n", suffix=".pdf")


def site_tipwatch(
    tmp_path: Path, site: HostileSite, *sources: tuple[str, str], **env: str
) -> Tipwatch:
    """A TIP Watch whose sources are ``html`` listings on the hostile site."""
    options = {k: v for k, v in env.items() if not k.startswith("TIPWATCH_")}
    settings = {k: v for k, v in env.items() if k.startswith("TIPWATCH_")}
    path = site.sources_yaml(tmp_path / "sources.yaml", *sources, **options)
    return Tipwatch(
        tmp_path / "data", make_env(tmp_path / "data", None, TIPWATCH_SOURCES=str(path), **settings)
    )


def poll(tipwatch: Tipwatch, *args: str, timeout: float = 180) -> dict[str, Any]:
    """``tipwatch poll --json``, by source name."""
    out = json.loads(tipwatch.run("poll", "--no-notify", "--json", *args, timeout=timeout).stdout)
    return {report["source"]: report for report in out["sources"]}


def good_routes() -> dict[str, Any]:
    return {
        "/good": static(GOOD_LISTING),
        "/good/n0.pdf": static(newsletter(1, "en"), "application/pdf"),
        "/good/n1.pdf": static(newsletter(2, "en"), "application/pdf"),
    }


# -- hangs --------------------------------------------------------------------------------------


def test_slowloris_ends_at_the_deadline_and_the_next_source_is_polled(tmp_path: Path) -> None:
    """Trickled bodies and headers (a byte well inside every read timeout) end at the
    download deadline; after three in a row the host is left alone for this poll."""
    slow_docs = {f"/slow/d{i}.pdf": trickle(every=0.5) for i in range(6)}
    routes = {
        "/slow-list": static(links_page(6, prefix="/slow/d")),
        "/slow-headers": trickle(every=0.5, in_headers=True),
        **slow_docs,
        **good_routes(),
    }
    with HostileSite(routes) as site:
        tipwatch = site_tipwatch(
            tmp_path,
            site,
            ("slowloris", "/slow-list"),
            ("slow-headers", "/slow-headers"),
            ("good", "/good"),
            TIPWATCH_DOWNLOAD_DEADLINE="2",
        )
        reports = poll(tipwatch, timeout=120)  # before the fix: never returned
        slow_requests = sum(site.hits[p] for p in slow_docs)

    assert reports["good"]["status"] == "ok" and reports["good"]["new"] == 2
    slow = reports["slowloris"]
    assert slow["status"] == "partial"
    assert slow["failed"] == 3 and slow_requests == 3  # three deadlines, then no more requests
    assert all("took longer than 2 s" in f for f in slow["failures"]), slow["failures"]
    assert slow["skipped"] == 3
    assert any("timed out 3 times in a row" in w for w in slow["warnings"]), slow["warnings"]
    headers = reports["slow-headers"]
    assert headers["status"] == "failed"
    assert "took longer than 2 s" in headers["error"]


def test_a_poll_stops_at_its_own_deadline(tmp_path: Path) -> None:
    """Many documents each just under the download deadline cannot hold a poll past its
    own deadline: what is left is said and waits for the next poll."""
    routes = {
        "/list": static(links_page(20, prefix="/d")),
        **{f"/d{i}.pdf": static(newsletter(i, "en"), "application/pdf") for i in range(20)},
    }
    with HostileSite(routes) as site:
        tipwatch = site_tipwatch(
            tmp_path,
            site,
            ("slow", "/list"),
            TIPWATCH_HOST_DELAY="0.5",
            TIPWATCH_POLL_DEADLINE="4",
        )
        report = poll(tipwatch)["slow"]
        fetched = sum(site.hits[f"/d{i}.pdf"] for i in range(20))
    assert 0 < fetched < 20
    assert report["new"] == fetched
    assert report["skipped"] == 20 - fetched
    assert any("TIPWATCH_POLL_DEADLINE" in w for w in report["warnings"]), report["warnings"]


# -- exhaustion -------------------------------------------------------------------------------

HUGE = 300 * 1024 * 1024


def max_rss_mib(tipwatch: Tipwatch, *args: str) -> tuple[float, str]:
    """Run ``tipwatch`` and measure its peak resident memory (its own, from wait4)."""
    proc = subprocess.Popen(
        [str(BIN / "tipwatch"), *args],
        env=tipwatch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, out
    return usage.ru_maxrss / 1024, out


def test_huge_pages_are_refused_unread_and_memory_stays_bounded(tmp_path: Path) -> None:
    """300 MB HTML pages (a listing, an article labelled HTML, an article sent as a file
    type) are refused with the reason; the poll's memory stays under 400 MiB (it was 7.8 GB)."""
    listing = (
        b'<html><body><main><a href="/item-html">one</a> <a href="/item-binary">two</a>'
        b' <a href="/good/n0.pdf" type="application/pdf">three</a></main></body></html>'
    )
    routes = {
        "/huge-list": huge_html(HUGE),
        "/list": static(listing),
        "/item-html": huge_html(HUGE),
        "/item-binary": _as_octet_stream(huge_html(HUGE, declare_length=True)),
        **good_routes(),
    }
    with HostileSite(routes) as site:
        tipwatch = site_tipwatch(
            tmp_path, site, ("huge", "/huge-list"), ("items", "/list"), item_pattern="/item-"
        )
        rss, out = max_rss_mib(tipwatch, "poll", "--no-notify", "--json")
    reports = {r["source"]: r for r in json.loads(out)["sources"]}
    assert rss < 400, f"peak RSS {rss:.0f} MiB"
    assert reports["huge"]["status"] == "failed"
    assert "too large" in reports["huge"]["error"]
    items = reports["items"]
    assert items["status"] == "partial" and items["new"] == 1  # the PDF beside them
    failures = "\n".join(items["failures"])
    assert "/item-html: too large: more than 10485760 bytes for a page" in failures
    assert "/item-binary: page too large to parse: 314572800 bytes" in failures
    assert not list((tmp_path / "data" / "archive" / ".spool").iterdir())


def _as_octet_stream(behaviour: Any) -> Any:
    """The same body, labelled as a download (so only the size of what arrived can tell)."""

    def serve(request: Any) -> None:
        original = request.send_header

        def send_header(key: str, value: str) -> None:
            if key.lower() == "content-type":
                value = "application/octet-stream"
            original(key, value)

        request.send_header = send_header
        behaviour(request)

    return serve


def test_fan_out_is_bounded_per_page_and_per_poll(tmp_path: Path) -> None:
    """A page linking 10,000 PDFs costs at most ``max_documents_per_page`` requests; a poll at
    most ``max_documents``, new documents first, so the backlog is worked through."""
    pdf = newsletter(9, "en")
    items = "".join(f'<a href="/item{i}">item {i}</a> ' for i in range(3))
    routes: dict[str, Any] = {
        "/wide": static(links_page(10_000)),
        "/items": static(f"<html><body><main>{items}</main></body></html>".encode()),
        "/docs/f0.pdf": static(pdf, "application/pdf"),
    }
    pdfs = {
        f"/item{i}/d{j}.pdf": newsletter(100 + 10 * i + j, "en") for i in range(3) for j in range(8)
    }
    for i in range(3):
        routes[f"/item{i}"] = static(links_page(8, prefix=f"/item{i}/d"))
    routes.update({path: static(body, "application/pdf") for path, body in pdfs.items()})
    with HostileSite(routes) as site:
        tipwatch = site_tipwatch(
            tmp_path,
            site,
            ("wide", "/wide"),
            ("items", "/items"),
            max_documents_per_page=50,
            max_documents=10,
            item_pattern=r"/item\d+$",
        )
        first = poll(tipwatch)
        wide_requests = sum(n for p, n in site.hits.items() if p.startswith("/docs/"))
        first_fetched = {p for p in pdfs if site.hits[p]}
        second = poll(tipwatch)
        second_fetched = {p for p in pdfs if site.hits[p]} - first_fetched

    wide = first["wide"]
    assert wide_requests == 10  # 50 taken from the page, then 10 per poll
    assert wide["skipped"] == 9_990
    assert any("links 10000 documents: took the first 50" in w for w in wide["warnings"])
    assert any("40 left for the next poll" in w for w in wide["warnings"])
    assert first["items"]["new"] == 3 + 10 and len(first_fetched) == 10  # 3 item pages
    assert second["items"]["new"] == 10 and len(second_fetched) == 10  # the next ten, new ones
    assert not first_fetched & second_fetched


# -- disk -----------------------------------------------------------------------------------


def test_refused_bodies_leave_nothing_on_disk_and_orphans_are_swept(tmp_path: Path) -> None:
    big_html = b"<html><body>" + b"<p>not a pdf</p>" * 200_000 + b"</body></html>"
    routes = {
        "/list": static(links_page(2, prefix="/fake")),
        "/fake0.pdf": static(big_html, "application/pdf"),
        "/fake1.pdf": static(b"", "application/pdf"),
    }
    with HostileSite(routes) as site:
        tipwatch = site_tipwatch(tmp_path, site, ("fake", "/list"))
        spool = tmp_path / "data" / "archive" / ".spool"
        for poll_number in range(2):
            if poll_number:  # both are retried once their backoff is over
                for name in ("/fake0.pdf", "/fake1.pdf"):
                    tipwatch.make_due(site.base + name, "retry_at")
            report = poll(tipwatch)["fake"]
            assert report["failed"] == 2
            assert "expected a PDF but the server sent an HTML page" in "".join(report["failures"])
            assert not list(spool.iterdir())
        orphan, fresh = spool / "fetch-orphan", spool / "fetch-fresh"
        orphan.write_bytes(b"x" * 1000)
        fresh.write_bytes(b"y")
        old = time.time() - 2 * 3600
        os.utime(orphan, (old, old))
        poll(tipwatch)
    assert sorted(p.name for p in spool.iterdir()) == ["fetch-fresh"]


# -- corruption ------------------------------------------------------------------------------


def rerendered(stamp: str) -> bytes:
    """The n°7 newsletter with the same text and a new /ID and date: new bytes."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(newsletter(7, "en"))))
    writer.add_metadata({"/ModDate": stamp, "/Producer": f"render {stamp}"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def rerendering_site() -> Any:
    routes = {
        "/list": static(links_page(1, prefix="/regen")),
        "/regen0.pdf": regenerated_pdf(rerendered),
    }
    with HostileSite(routes) as site:
        yield site


def rerendering_tipwatch(tmp_path: Path, site: HostileSite) -> Tipwatch:
    """A TIP Watch polling the re-rendering site, with a subscription its PDF matches."""
    tipwatch = site_tipwatch(tmp_path, site, ("regen", "/list"))
    tipwatch.run(
        "subscribe",
        "cooperation",
        "--query",
        "judicial cooperation",
        "--notify",
        "json://127.0.0.1:9/",
    )
    return tipwatch


def test_a_pdf_rerendered_on_every_request_is_one_version_and_one_alert(
    tmp_path: Path, rerendering_site: HostileSite
) -> None:
    tipwatch = rerendering_tipwatch(tmp_path, rerendering_site)
    reports = []
    for poll_number in range(3):
        if poll_number:  # its revisit is due (else an unchanged listing leaves it alone)
            tipwatch.make_due(rerendering_site.base + "/regen0.pdf")
        reports.append(poll(tipwatch)["regen"])
    assert rerendering_site.hits["/regen0.pdf"] == 3  # new bytes each time
    assert [r["new"] for r in reports] == [1, 0, 0]
    assert [r["changed"] for r in reports] == [0, 0, 0]
    assert sum(r["alerts"] for r in reports) == 1
    documents = tipwatch.json("archive", "list")
    assert len(documents) == 1 and documents[0]["version"] == 1
    blobs = [
        p
        for p in (tmp_path / "data" / "archive").rglob("*")
        if p.is_file() and ".spool" not in p.parts and p.suffix != ".db"
    ]
    assert len([p for p in blobs if p.read_bytes().startswith(b"%PDF")]) == 1


def test_a_rerendered_pdf_extracted_on_the_queue_folds_into_its_version(
    tmp_path: Path, rerendering_site: HostileSite
) -> None:
    """Under Celery the PDF is archived before it is read: the extraction job finds the
    previous version's text and folds the new row into it (no version, no alert)."""
    from sqlalchemy import func, select

    from worker.extract.job import extract_document
    from worker.ingest.poll import poll_source
    from worker.storage.db import get_engine, session_scope
    from worker.storage.models import Alert, Document, DocumentLink

    tipwatch = rerendering_tipwatch(tmp_path, rerendering_site)
    settings = tipwatch.settings()
    engine = get_engine(settings.resolved_database_url)
    source = settings.source("regen")
    outcomes = []
    for poll_number in range(3):
        if poll_number:  # its revisit is due
            tipwatch.make_due(rerendering_site.base + "/regen0.pdf")
        queued: list[int] = []
        report = poll_source(engine, settings, source, defer_extraction=queued.append)
        assert report.status == "ok", report.failures
        outcomes += [extract_document(engine, settings, i).status for i in queued]
    assert outcomes == ["extracted", "same-text", "same-text"]
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 1
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        document = session.scalars(select(Document)).one()
        links = session.scalars(select(DocumentLink.document_id)).all()
    assert document.version == 1 and set(links) == {document.id}


def test_an_unreadable_feed_fails_and_an_empty_listing_warns(tmp_path: Path) -> None:
    """Random bytes where a feed should be are an error, not an "ok" poll with 0 links; a
    readable page without a single link says the layout may have changed."""
    noise = bytes((i * 7919 + 13) % 256 for i in range(20_000))
    routes = {
        "/feed.xml": static(noise, "application/rss+xml"),
        "/empty": static(b"<html><body><main><p>Nothing here yet.</p></main></body></html>"),
    }
    with HostileSite(routes) as site:
        path = tmp_path / "sources.yaml"
        path.write_text(
            "sources:\n"
            f"  - {{name: noise, kind: rss, base_url: '{site.base}', feeds: [feed.xml]}}\n"
            f"  - {{name: empty, kind: html, base_url: '{site.base}', listings: [empty]}}\n"
        )
        tipwatch = Tipwatch(
            tmp_path / "data", make_env(tmp_path / "data", None, TIPWATCH_SOURCES=str(path))
        )
        reports = poll(tipwatch)
        sources = {s["name"]: s for s in tipwatch.json("sources")}
    assert reports["noise"]["status"] == "failed"
    assert (
        "neither a feed nor an HTML page (application/rss+xml, 20000 bytes)"
        in (reports["noise"]["error"])
    )
    assert reports["empty"]["status"] == "ok"
    assert any("no links found" in w for w in reports["empty"]["warnings"])
    assert "no links found" in (sources["empty"].get("last_error") or "")
