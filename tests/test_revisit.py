"""An unchanged poll costs almost nothing: entry pages conditionally, robots.txt once per host,
and an archived page or file only when there is a sign it changed or its revisit is due.

Time is not waited for: a test moves a URL's ``next_visit_at`` / ``retry_at`` into the past
(``Tipwatch.make_due``), as the hours passing would."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Tipwatch, make_env, page_server
from tests.replica import Hit, Replica
from worker.urls import canonical_url


def poll(tipwatch: Tipwatch, *sources: str) -> dict:
    args = [a for s in sources for a in ("--source", s)]
    report = tipwatch.json("poll", *args)
    return {s["source"]: s for s in report["sources"]}


def hits_since(replica: Replica, mark: int) -> list[Hit]:
    return replica.hits[mark:]


def conditional(hit: Hit) -> bool:
    """Asked with validators, and answered 304 without a body."""
    validators = {"if-none-match", "if-modified-since"} & set(hit.headers)
    return bool(validators) and hit.status == 304 and hit.bytes_sent == 0


@pytest.fixture
def onu(tmp_path: Path, replica: Replica) -> Tipwatch:
    data_dir = tmp_path / "data"
    return Tipwatch(data_dir, make_env(data_dir, replica))


def test_unchanged_poll_asks_only_for_entry_pages_and_robots(
    onu: Tipwatch, replica: Replica
) -> None:
    first = poll(onu, "onu-vienne", "unodc-news", "unodc-press", "unodc-glotip")
    assert all(r["status"] == "ok" and r["new"] > 0 for r in first.values()), first
    mark = len(replica.hits)
    second = poll(onu, "onu-vienne", "unodc-news", "unodc-press", "unodc-glotip")
    hits = hits_since(replica, mark)
    settings = onu.settings()
    entries = {
        canonical_url(u)
        for name in second
        for u in settings.source(name).entry_urls
    }  # fmt: skip
    asked = [h for h in hits if not h.path.startswith("/robots.txt")]
    assert {canonical_url(replica.base_urls[h.site] + h.path) for h in asked} <= entries, asked
    # One robots.txt per host, though three sources share www.unodc.org.
    robots = sorted(h.site for h in hits if h.path == "/robots.txt")
    assert robots == ["onu-vienne", "unodc"], robots
    assert sum(h.bytes_sent for h in hits if h.path.endswith(".pdf") or "/IMG/" in h.path) == 0
    assert all(h.status == 304 for h in asked), [(h.path, h.status) for h in asked]
    for name, report in second.items():
        assert report["new"] == report["changed"] == 0, report
        assert report["not_due"] > 0 and report["requests"] >= 1, report
        assert report["not_modified"] == len(
            [h for h in asked if canonical_url(replica.base_urls[h.site] + h.path)
             in {canonical_url(u) for u in settings.source(name).entry_urls}]
        )  # fmt: skip
    # The sources table shows what the last poll cost.
    table = onu.run("sources").stdout
    assert "not due" in table and "requests / 304 / bytes" in table


def test_old_article_waits_for_its_revisit_then_is_asked_conditionally(
    onu: Tipwatch, replica: Replica
) -> None:
    poll(onu, "onu-vienne")
    issue = replica.issue(23)
    article = issue["en"]["url"]
    mark = len(replica.hits)
    poll(onu, "onu-vienne")
    assert not [h for h in hits_since(replica, mark) if h.path == issue["en"]["path"]]

    onu.make_due(article)
    mark = len(replica.hits)
    report = poll(onu, "onu-vienne")["onu-vienne"]
    (visit,) = [h for h in hits_since(replica, mark) if h.path == issue["en"]["path"]]
    assert conditional(visit), visit
    assert report["changed"] == 0
    # Visited, it is scheduled again: the next poll leaves it alone.
    mark = len(replica.hits)
    poll(onu, "onu-vienne")
    assert not [h for h in hits_since(replica, mark) if h.path == issue["en"]["path"]]


def test_a_changed_listing_entry_brings_its_article(onu: Tipwatch, replica: Replica) -> None:
    poll(onu, "onu-vienne")
    issue = replica.issue(22)
    replica.retitle_article("onu-vienne", issue["en"]["id"], "Newsletter n°22 (corrected)")
    mark = len(replica.hits)
    report = poll(onu, "onu-vienne")["onu-vienne"]
    visits = [h for h in hits_since(replica, mark) if h.path == issue["en"]["path"]]
    assert [h.status for h in visits] == [200], visits
    assert report["changed"] == 1, report
    untouched = replica.issue(21)["en"]["path"]
    assert not [h for h in hits_since(replica, mark) if h.path == untouched]


def test_new_issue_is_found_in_one_poll(onu: Tipwatch, replica: Replica) -> None:
    poll(onu, "onu-vienne")
    poll(onu, "onu-vienne")
    replica.publish_issue(24, dt.date(2026, 10, 1))
    report = poll(onu, "onu-vienne")["onu-vienne"]
    assert report["new"] == 4 and report["failed"] == 0, report


@pytest.fixture
def links_page(replica: Replica) -> Iterator[tuple[str, list[str]]]:
    """A page on its own host linking a replica PDF, the same PDF under a second URL (an
    alias: same bytes), and a URL that serves HTML as a PDF."""
    base = replica.base_urls["onu-vienne"]
    pdf = replica.issue(23)["en"]["pdf"]
    links = [
        pdf["url"],
        f"{base}{pdf['path'].replace('.pdf', '-copy.pdf')}",
        f"{base}/_fault/html-as-pdf.pdf",
    ]
    with replica.lock:  # the alias: the same file served under a second path
        site = replica.sites["onu-vienne"]
        document = site.files()[pdf["path"]]
        site.files()[pdf["path"].replace(".pdf", "-copy.pdf")] = document
    items = "".join(f'<li><a href="{u}" type="application/pdf">file</a></li>' for u in links)
    body = f"<html><body><main><ul>{items}</ul></main></body></html>".encode()

    with page_server(body, etag='"list-1"') as listing:
        yield listing, links


def test_alias_and_failed_urls_are_asked_conditionally(
    tmp_path: Path, replica: Replica, links_page: tuple[str, list[str]]
) -> None:
    listing, (original, alias, refused) = links_page
    onu_host = replica.base_urls["onu-vienne"].split("//", 1)[1]
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"""sources:
  - name: files
    kind: html
    base_url: {listing}
    listings: [list]
    allowed_hosts: ["{onu_host}"]
""")
    data_dir = tmp_path / "data"
    tipwatch = Tipwatch(data_dir, make_env(data_dir, None, TIPWATCH_SOURCES=str(sources)))
    first = poll(tipwatch)["files"]
    assert first["new"] == 1 and first["unchanged"] == 1 and first["failed"] == 1, first
    assert "expected a PDF but the server sent an HTML page" in first["failures"][0]

    # Not due, and the refused URL backs off: nothing but the listing and robots.txt.
    mark = len(replica.hits)
    second = poll(tipwatch)["files"]
    assert hits_since(replica, mark) == [], hits_since(replica, mark)
    assert second["not_due"] == 3 and second["failed"] == 0, json.dumps(second)

    # Hours later: every file is due again; each is asked with its own validators.
    for url in (original, alias):
        tipwatch.make_due(url)
    tipwatch.make_due(refused, "retry_at")
    mark = len(replica.hits)
    third = poll(tipwatch)["files"]
    asked = {h.path.split("?")[0]: h for h in hits_since(replica, mark)}
    for url in (original, alias, refused):
        path = "/" + url.split("/", 3)[3].split("?")[0]
        assert conditional(asked[path]), asked
    assert third["failed"] == 1 and "unchanged since" in third["failures"][0], third
    assert third["new"] == third["changed"] == 0, third
