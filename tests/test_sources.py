"""Discovery against the replica sites: listings, feeds, languages, versions, politeness."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.conftest import Replica, Tipwatch, make_env
from tests.replica import build_pdf


@pytest.fixture
def fresh(replica: Replica, tmp_path: Path) -> Tipwatch:
    """TIP Watch against a replica of its own, for tests that change the sites."""
    return Tipwatch(tmp_path / "data", make_env(tmp_path / "data", replica))


def _documents(tipwatch: Tipwatch, source: str = "onu-vienne") -> list[dict]:
    return tipwatch.json("archive", "list", "--source", source, "--limit", "1000")


def test_listings_paginate_feeds_and_french_dates(
    tipwatch: Tipwatch, replica_session: Replica
) -> None:
    replica_session.reset_hits()
    tipwatch.run("poll", "--source", "onu-vienne")
    paths = [h.path for h in replica_session.hits if h.site == "onu-vienne"]
    assert "/-Lettres-d-information-?debut_articles=10" in paths
    assert "/-Newsletters-?debut_articles=10" in paths
    documents = _documents(tipwatch)
    by_issue = {(d["issue_number"], d["language"], d["kind"]): d for d in documents}
    # n°12 is on the second listing page only; it is listed as "1er avril 2019".
    assert by_issue[(12, "fr", "html")]["published_at"].startswith("2019-04-01")
    assert by_issue[(12, "en", "html")]["published_at"].startswith("2019-04-01")
    # Every issue n°11–23 in both languages, as articles and as PDFs.
    for number in range(11, 24):
        for language in ("fr", "en"):
            for kind in ("html", "pdf"):
                assert (number, language, kind) in by_issue, (number, language, kind)
    # The old-style n°5 article is dated by its footer "Dernière modification : 24/03/2017".
    assert by_issue[(5, "fr", "html")]["published_at"].startswith("2017-03-24")


def test_series_links_languages_and_reports_overdue(fresh: Tipwatch, replica: Replica) -> None:
    fresh.run("poll", "--source", "onu-vienne")
    [status] = fresh.json("series")
    assert status["name"] == "see-newsletter"
    assert (status["latest_issue"], status["languages"]) == (23, ["en", "fr"])
    assert status["latest_date"].startswith("2025-03-12")
    assert status["overdue"]  # quarterly, and nothing since March 2025

    pdf = next(
        d
        for d in _documents(fresh)
        if (d["issue_number"], d["language"], d["kind"]) == (23, "en", "pdf")
    )
    shown = fresh.json("archive", "show", str(pdf["id"]))
    others = {(o["kind"], o["language"]) for o in shown["same_issue"]}
    assert {("pdf", "fr"), ("html", "fr"), ("html", "en")} <= others

    replica.publish_issue(24, datetime.now(UTC).date())
    fresh.run("poll", "--source", "onu-vienne")
    [status] = fresh.json("series")
    assert (status["latest_issue"], status["overdue"]) == (24, False)
    assert "on schedule" in fresh.run("series").stdout


def test_unchanged_poll_transfers_no_document_bytes(fresh: Tipwatch, replica: Replica) -> None:
    fresh.run("poll", "--source", "onu-vienne")
    replica.reset_hits()
    report = fresh.json("poll", "--source", "onu-vienne")["sources"][0]
    assert (report["new"], report["changed"], report["failed"]) == (0, 0, 0)
    assert not [h for h in replica.hits if h.path.startswith("/IMG/pdf/")]  # none is due

    # When their revisits are due, every PDF is asked conditionally: 304, no bytes.
    fresh.make_due_all()
    replica.reset_hits()
    report = fresh.json("poll", "--source", "onu-vienne")["sources"][0]
    assert (report["new"], report["changed"], report["failed"]) == (0, 0, 0)
    pdf_hits = [h for h in replica.hits if h.path.startswith("/IMG/pdf/")]
    assert pdf_hits and {h.status for h in pdf_hits} == {304}
    assert sum(h.bytes_sent for h in pdf_hits) == 0
    assert all(h.headers.get("if-none-match") for h in pdf_hits)

    # Without validators the server resends everything; the content hash still says "unchanged".
    replica.set_conditional("onu-vienne", False)
    fresh.make_due_all()
    replica.reset_hits()
    report = fresh.json("poll", "--source", "onu-vienne")["sources"][0]
    assert (report["new"], report["changed"], report["failed"]) == (0, 0, 0)
    pdf_hits = [h for h in replica.hits if h.path.startswith("/IMG/pdf/")]
    assert {h.status for h in pdf_hits} == {200} and sum(h.bytes_sent for h in pdf_hits) > 0


def test_changed_pdf_is_a_new_version_with_history(
    fresh: Tipwatch, replica: Replica, tmp_path: Path
) -> None:
    fresh.run("poll", "--source", "onu-vienne")
    issue = replica.issue(23)
    before = {d["id"]: d for d in _documents(fresh)}
    corrected = build_pdf(
        tmp_path / "corrected.pdf",
        "Newsletter n°23 (corrected)",
        ["Erratum: the Dubrovnik meeting took place on 27-28 March 2025."],
    )
    replica.replace_pdf("onu-vienne", issue["en"]["pdf"]["path"], corrected.read_bytes())
    report = fresh.json("poll", "--source", "onu-vienne")["sources"][0]
    assert (report["new"], report["changed"]) == (0, 1), report
    [new] = [d for d in _documents(fresh) if d["id"] not in before]
    old = before[new["previous_id"]]
    assert new["canonical_url"] == old["canonical_url"]
    assert (old["version"], new["version"]) == (1, 2)
    assert new["content_sha256"] != old["content_sha256"]
    assert fresh.json("archive", "show", str(old["id"]))["content_sha256"] == old["content_sha256"]


def test_depth_limit_and_robots_txt(replica: Replica, tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("""sources:
  - name: onu-vienne
    kind: spip
    base_url: https://onu-vienne.delegfrance.org
    listings: [-Lettres-d-information-]
    max_depth: 1
""")
    env = make_env(
        tmp_path / "data",
        None,
        TIPWATCH_SOURCES=str(sources),
        TIPWATCH_BASE_URLS=f'{{"onu-vienne": "{replica.base_urls["onu-vienne"]}"}}',
    )
    shallow = Tipwatch(tmp_path / "data", env)
    shallow.run("poll")
    kinds = {d["kind"] for d in _documents(shallow)}
    assert kinds == {"html"}  # articles are depth 1; their PDFs (depth 2) are not followed
    assert replica.hit_count(site="onu-vienne", path_prefix="/IMG/") == 0

    replica.set_robots("onu-vienne", "User-agent: *\nDisallow: /IMG/\n")
    deep = Tipwatch(tmp_path / "deep", make_env(tmp_path / "deep", replica))
    report = deep.json("poll", "--source", "onu-vienne")["sources"][0]
    assert report["failed"] > 0
    assert all("disallowed by robots.txt" in f for f in report["failures"])
    assert replica.hit_count(site="onu-vienne", path_prefix="/IMG/") == 0
    assert {d["kind"] for d in _documents(deep)} == {"html"}


def test_generic_html_source_with_selectors(tmp_path: Path, replica_session: Replica) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("""sources:
  - name: unodc-stories
    kind: html
    base_url: https://www.unodc.org
    listings: [unodc/en/human-trafficking/news-and-stories.html]
    options:
      item_selector: "h3"
      item_pattern: "/frontpage/"
""")
    env = make_env(
        tmp_path / "data",
        replica_session,
        TIPWATCH_SOURCES=str(sources),
        TIPWATCH_BASE_URLS=f'{{"www.unodc.org": "{replica_session.base_urls["unodc"]}"}}',
    )
    tipwatch = Tipwatch(tmp_path / "data", env)
    report = tipwatch.json("poll")["sources"][0]
    assert report["status"] == "ok" and report["new"] >= 5
    documents = [d for d in _documents(tipwatch, "unodc-stories") if d["kind"] == "html"]
    assert documents and all("/frontpage/" in d["url"] for d in documents)
    assert all("ref=" not in d["canonical_url"] for d in documents)
    assert {d["language"] for d in documents} >= {"en", "fr"}
    assert date.fromisoformat(min(d["published_at"][:10] for d in documents)) < date(2020, 1, 1)


def test_a_listing_that_is_also_an_item_is_archived(fresh: Tipwatch) -> None:
    """The OSCE page is both an entry listing and an item of its feed: read first as a listing
    (validators stored), it must still be archived as a document, not answered by a 304."""
    fresh.run("poll", "--source", "osce")
    urls = {d["canonical_url"].rsplit("/", 1)[-1] for d in _documents(fresh, "osce")}
    assert "Lutte-contre-la-traite-des-etre-humains" in urls
    report = fresh.json("poll", "--source", "osce")["sources"][0]
    assert (report["new"], report["changed"]) == (0, 0)
