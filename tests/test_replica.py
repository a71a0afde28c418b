"""The test replica itself: real sockets, real HTTP, real PDFs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import feedparser
import httpx
import pytest

from tests.replica import Replica, build_pdf, pdf_text
from tests.replica.pdfs import pdf_page_count

HASH_QUERY = re.compile(r"\.pdf\?\d+/[0-9a-f]{40}$")
BACKEND_45 = "/spip.php?page=backend&id_rubrique=45"


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """Shared, read-only replica (tests that mutate use ``fresh``)."""
    with Replica(tmp_path_factory.mktemp("replica")) as r:
        yield r


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Replica]:
    with Replica(tmp_path) as r:
        yield r


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def get(client: httpx.Client, r: Replica, site: str, path: str, **kw: object) -> httpx.Response:
    return client.get(r.url(site, path), **kw)  # type: ignore[arg-type]


# --- SPIP RSS backend -------------------------------------------------------------------------


def test_backend_is_spip_rss_with_dc_date_and_enclosures(
    replica: Replica, client: httpx.Client
) -> None:
    resp = get(client, replica, "onu-vienne", BACKEND_45)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/xml; charset=utf-8"
    assert "<pubDate>" not in resp.text and "<dc:date>2025-03-12T09:30:00Z</dc:date>" in resp.text
    feed = feedparser.parse(resp.content)
    assert not feed.bozo and feed.feed.generator == "SPIP - www.spip.net"
    assert len(feed.entries) == 10
    first = feed.entries[0]
    # feedparser 6 maps dc:date to "updated" (not "published")
    assert "n°23" in first.title and first.updated_parsed[:3] == (2025, 3, 12)
    base = replica.base_urls["onu-vienne"]
    for entry in feed.entries:
        assert entry.link.startswith(base + "/") and entry.id == entry.link
        assert entry.enclosures, entry.title
        for enc in entry.enclosures:
            assert enc.href.startswith(base + "/IMG/pdf/") and HASH_QUERY.search(enc.href)
            assert enc.type == "application/pdf" and int(enc.length) > 1000
    # description: escaped HTML with the rubrique link
    assert 'rel="directory"' in first.summary
    n23 = replica.issue(23)
    assert {e.href for e in first.enclosures} == {n23["fr"]["pdf"]["url"], n23["en"]["pdf"]["url"]}


def test_backend_filters_and_traps(replica: Replica, client: httpx.Client) -> None:
    en = feedparser.parse(get(client, replica, "onu-vienne", BACKEND_45 + "&lang=en").content)
    assert len(en.entries) == 10 and {e.language for e in en.entries} == {"en"}
    assert en.entries[0].title == "Newsletter n°23 – March 2025"
    fr = feedparser.parse(
        get(client, replica, "onu-vienne", "/spip.php?page=backend&lang=fr&id_rubrique=45").content
    )
    assert fr.entries[0].title == "Lettre d'information n°23 – mars 2025"
    site = feedparser.parse(get(client, replica, "onu-vienne", "/spip.php?page=backend").content)
    assert site.entries[0].title == "Human trafficking"  # the whole site: news articles too
    assert get(client, replica, "onu-vienne", "/spip.php?page=rss").status_code == 404
    trap = get(client, replica, "onu-vienne", "/spip.php?page=rss&id_rubrique=2")
    assert trap.status_code == 200 and trap.headers["content-type"].startswith("text/html")
    assert trap.text.startswith("<!DOCTYPE html>")
    redirect = get(client, replica, "onu-vienne", "/spip.php?article2040")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == replica.issue(23)["fr"]["url"]


# --- listings and articles --------------------------------------------------------------------


def test_listing_pagination(replica: Replica, client: httpx.Client) -> None:
    page1 = get(client, replica, "onu-vienne", "/-Lettres-d-information-").text
    page2 = get(client, replica, "onu-vienne", "/-Lettres-d-information-?debut_articles=10").text
    links = re.compile(r'<h3><a href="([^"]+)">')
    first, second = links.findall(page1), links.findall(page2)
    assert len(first) == 10 and 0 < len(second) < 10 and not set(first) & set(second)
    assert first[0] == "Lettre-d-information-no23-mars-2025"
    assert "-Lettres-d-information-?debut_articles=10#pagination_articles" in page1
    assert "<small>12 mars 2025</small>" in page1 and "<small>1er avril 2019</small>" in page2
    assert "Lettre-trimestrielle-d-information-no9" in page2
    en = get(client, replica, "onu-vienne", "/-Newsletters-").text
    assert links.findall(en)[0] == "Newsletter-no23-March-2025" and "12 March 2025" in en


def test_article_pages(replica: Replica, client: httpx.Client) -> None:
    n23 = replica.issue(23)
    assert n23["fr"]["title"] == "Lettre d'information n°23 – mars 2025"
    assert n23["en"]["title"] == "Newsletter n°23 – March 2025"
    fr = client.get(n23["fr"]["url"]).text
    assert '<abbr class="published" title="2025-03-12T09:30:00Z">12 mars 2025</abbr>' in fr
    pdf_fr = n23["fr"]["pdf"]
    assert pdf_fr["path"] == "/IMG/pdf/lettre_teh_n23_fr.pdf"
    assert (
        f'<a href="IMG/pdf/lettre_teh_n23_fr.pdf{pdf_fr["query"]}" class="spip_in"'
        ' type="application/pdf">'
    ) in fr
    assert 'id="documents_joints"' in fr and 'hreflang="en"' in fr
    assert n23["en"]["url"] in fr and "Dernière modification : 12/03/2025" in fr
    old = get(
        client,
        replica,
        "onu-vienne",
        "/Lettre-d-information-sur-la-traite-des-etres-humains-no5-fevrier-2017",
    ).text
    assert "Dernière modification : 24/03/2017" in old and "abbr" not in old
    assert 'href="IMG/pdf/newsletter_thb_n5_en.pdf"' in old  # old links: no query string


def test_pages_never_point_at_the_real_hosts(replica: Replica, client: httpx.Client) -> None:
    paths = {
        "onu-vienne": ["/", BACKEND_45, "/-Newsletters-", "/Human-trafficking-2140"],
        "osce": ["/", "/spip.php?page=backend", "/Lutte-contre-la-traite-des-etre-humains"],
        "unodc": [
            "/unodc/en/human-trafficking/news-and-stories.html",
            "/unodc/en/press/releases.html",
            "/unodc/en/data-and-analysis/glotip.html",
        ],
    }
    for site, site_paths in paths.items():
        for path in site_paths:
            text = get(client, replica, site, path).text
            assert "delegfrance.org" not in text and "unodc.org" not in text, (site, path)


# --- PDFs, conditional GET --------------------------------------------------------------------


def test_pdf_conditional_get_and_ignored_query(replica: Replica, client: httpx.Client) -> None:
    pdf = replica.issue(23)["en"]["pdf"]
    first = client.get(pdf["url"])
    assert first.status_code == 200 and first.content.startswith(b"%PDF-")
    assert first.headers["content-type"] == "application/pdf"
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag == pdf["etag"]
    for query in ("", "?1/0000000000000000000000000000000000000000", "?ref=fs6"):
        assert get(client, replica, "onu-vienne", pdf["path"] + query).content == first.content
    replica.reset_hits()
    by_etag = client.get(pdf["url"], headers={"If-None-Match": etag})
    by_date = client.get(pdf["url"], headers={"If-Modified-Since": modified})
    assert by_etag.status_code == by_date.status_code == 304
    assert by_etag.content == by_date.content == b""
    assert [h.bytes_sent for h in replica.hits] == [0, 0]
    assert replica.hits[0].headers["if-none-match"] == etag
    stale = client.get(pdf["url"], headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == first.content


def test_html_last_modified_without_etag(replica: Replica, client: httpx.Client) -> None:
    resp = get(client, replica, "onu-vienne", "/-Lettres-d-information-")
    assert "etag" not in resp.headers
    again = get(
        client,
        replica,
        "onu-vienne",
        "/-Lettres-d-information-",
        headers={"If-Modified-Since": resp.headers["last-modified"]},
    )
    assert again.status_code == 304 and again.content == b""
    head = client.head(replica.url("onu-vienne", BACKEND_45))
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 1000


def test_pdf_text_is_extractable(replica: Replica, client: httpx.Client) -> None:
    en = pdf_text(client.get(replica.issue(23)["en"]["pdf"]["url"]).content)
    assert (
        "Human trafficking remains a major issue in Europe, and the Balkans, particularly"
        " Serbia, are no exception."
    ) in en
    fr_bytes = client.get(replica.issue(23)["fr"]["pdf"]["url"]).content
    fr = pdf_text(fr_bytes)
    for words in (
        "Lettre d'information n°23 – mars 2025",
        "traite des êtres humains",
        "délinquance forcée",
        "mendicité forcée",
        "principe de non-sanction",
        "exploitation par le travail",
    ):
        assert words in fr
    assert pdf_page_count(fr_bytes) >= 3
    n11 = pdf_text(client.get(replica.issue(11)["en"]["pdf"]["url"]).content)
    assert "The eleventh issue of the quarterly" in n11
    book = get(
        client, replica, "unodc", "/documents/data-and-analysis/glotip/2024/GLOTIP2024_BOOK.pdf"
    ).content
    assert "Global Report on Trafficking in Persons 2024" in pdf_text(book)
    assert pdf_page_count(book) >= 6


def test_build_pdf_pads_pages(tmp_path: Path) -> None:
    path = build_pdf(
        tmp_path / "x.pdf", "Traite – œuvre", "Un paragraphe.\n\nUn autre.", lang="fr", pages_min=3
    )
    assert pdf_page_count(path) == 3 and "Traite – œuvre" in pdf_text(path)


# --- other sites ------------------------------------------------------------------------------


def test_osce_links_onu_vienne_pdfs(replica: Replica, client: httpx.Client) -> None:
    page = get(client, replica, "osce", "/Lutte-contre-la-traite-des-etre-humains").text
    assert replica.issue(23)["fr"]["pdf"]["url"] in page
    assert replica.issue(23)["en"]["pdf"]["url"] in page
    feed = get(client, replica, "osce", "/spip.php?page=backend")
    assert feed.headers["content-type"].startswith("text/html")  # mislabeled, like some MEAE sites
    parsed = feedparser.parse(feed.content)
    assert parsed.entries[0].enclosures[0].href.startswith(replica.base_urls["osce"])


def test_unodc_listings(replica: Replica, client: httpx.Client) -> None:
    news = get(client, replica, "unodc", "/unodc/en/human-trafficking/news-and-stories.html").text
    assert '<p class="date">12 January 2021</p>' in news and "03 March 2016" in news
    story = re.search(r'href="(/unodc/fr/frontpage/2017/June/[^"]+\?ref=fs6)"', news)
    assert story and get(client, replica, "unodc", story.group(1)).status_code == 200
    press = get(client, replica, "unodc", "/unodc/en/press/releases.html").text
    link = re.search(
        r'href="(/unodc/en/press/releases/2024/December/unodc-global-report[^"]+)"', press
    )
    assert link
    release = get(client, replica, "unodc", link.group(1)).text
    assert "<strong>Vienna (Austria), 11 December 2024</strong> –" in release
    assert 'href="/documents/data-and-analysis/glotip/2024/GLOTIP2024_BOOK.pdf"' in release
    glotip = get(client, replica, "unodc", "/unodc/en/data-and-analysis/glotip.html").text
    for href in re.findall(r'href="([^"]+\.pdf)"', glotip):
        url = href if href.startswith("http") else replica.url("unodc", href)
        assert client.get(url).content.startswith(b"%PDF-")


def test_robots(fresh: Replica, client: httpx.Client) -> None:
    assert get(client, fresh, "unodc", "/robots.txt").text == "User-agent: *\nDisallow:\n"
    fresh.set_robots("osce", "User-agent: *\nDisallow: /\n")
    assert get(client, fresh, "osce", "/robots.txt").text.endswith("Disallow: /\n")


# --- mutations --------------------------------------------------------------------------------


def test_publish_issue(fresh: Replica, client: httpx.Client) -> None:
    before = get(client, fresh, "onu-vienne", BACKEND_45)
    info = fresh.publish_issue(
        24, date(2025, 6, 17), en_text="A new issue about the non-punishment principle."
    )
    assert info["fr"]["title"] == "Lettre d'information n°24 – juin 2025"
    assert HASH_QUERY.search(info["en"]["pdf"]["url"])
    after = get(
        client,
        fresh,
        "onu-vienne",
        BACKEND_45,
        headers={"If-Modified-Since": before.headers["last-modified"]},
    )
    assert after.status_code == 200
    entries = feedparser.parse(after.content).entries
    assert entries[0].title == "Newsletter n°24 – June 2025"
    assert entries[0].enclosures[1].href == info["en"]["pdf"]["url"]
    listing = get(client, fresh, "onu-vienne", "/-Lettres-d-information-").text
    top = re.search(r'<h3><a href="([^"]+)">', listing)
    assert top and top.group(1) == "Lettre-d-information-no24-juin-2025"
    assert "<small>17 juin 2025</small>" in listing
    pdf = client.get(info["en"]["pdf"]["url"]).content
    assert "non-punishment principle" in pdf_text(pdf)


def test_replace_pdf(fresh: Replica, client: httpx.Client) -> None:
    old = fresh.issue(23)["fr"]["pdf"]
    first = client.get(old["url"])
    new = fresh.replace_pdf("onu-vienne", old["path"] + old["query"], b"%PDF-1.4 replaced")
    assert new["etag"] != old["etag"] and new["query"] != old["query"]
    resp = client.get(
        old["url"],
        headers={"If-None-Match": old["etag"], "If-Modified-Since": first.headers["last-modified"]},
    )
    assert resp.status_code == 200 and resp.content == b"%PDF-1.4 replaced"
    assert resp.headers["etag"] == new["etag"]
    assert new["query"] in client.get(fresh.issue(23)["fr"]["url"]).text
    osce = get(client, fresh, "osce", "/Lutte-contre-la-traite-des-etre-humains").text
    assert old["query"] in osce  # the sister site keeps the stale "?id/hash" link


def test_set_conditional_off(fresh: Replica, client: httpx.Client) -> None:
    pdf = fresh.issue(23)["en"]["pdf"]
    etag = client.get(pdf["url"]).headers["etag"]
    fresh.set_conditional("onu-vienne", False)
    resp = client.get(
        pdf["url"],
        headers={"If-None-Match": etag, "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    )
    assert resp.status_code == 200 and "etag" not in resp.headers
    assert "last-modified" not in resp.headers
    assert "last-modified" not in get(client, fresh, "onu-vienne", BACKEND_45).headers


def test_hit_counting(fresh: Replica, client: httpx.Client) -> None:
    fresh.reset_hits()
    pdf = fresh.issue(11)["fr"]["pdf"]
    size = len(client.get(pdf["url"]).content)
    get(client, fresh, "onu-vienne", "/-Newsletters-")
    get(client, fresh, "unodc", "/nowhere.html")
    assert fresh.hit_count() == 3
    assert fresh.hit_count("onu-vienne", "/IMG/pdf/") == 1
    assert fresh.hit_count(path_prefix="/-Newsletters-") == 1
    assert fresh.bytes_sent("unodc") == fresh.hits[-1].bytes_sent > 0
    hit = fresh.hits[0]
    assert (hit.site, hit.method, hit.path, hit.status, hit.bytes_sent) == (
        "onu-vienne",
        "GET",
        pdf["path"] + pdf["query"],
        200,
        size,
    )
    assert fresh.hits[-1].status == 404 and "user-agent" in hit.headers


# --- faults -----------------------------------------------------------------------------------


def test_fault_routes(fresh: Replica, client: httpx.Client) -> None:
    def fault(path: str, **kw: object) -> httpx.Response:
        return get(client, fresh, "osce", "/_fault/" + path, **kw)

    assert fault("500").status_code == 500
    start = time.monotonic()
    assert fault("slow?seconds=0.3").status_code == 200 and time.monotonic() - start >= 0.3
    with pytest.raises(httpx.TooManyRedirects):
        fault("redirect-loop", follow_redirects=True)
    fake = fault("html-as-pdf.pdf")
    assert fake.headers["content-type"] == "application/pdf" and b"<html" in fake.content
    big = fault("big.pdf?mb=2")
    assert len(big.content) == 2 * 1024 * 1024 and big.content.startswith(b"%PDF-")
    cp = fault("cp1252")
    assert cp.headers["content-type"] == "text/html; charset=windows-1252"
    assert "L’œuvre commune" in cp.text and "œ".encode("cp1252") in cp.content
    statuses = [fault("retry-after?k=1") for _ in range(2)]
    assert [s.status_code for s in statuses] == [503, 200]
    assert statuses[0].headers["retry-after"] == "1"
    fresh.reset_faults()
    assert fault("retry-after?k=1").status_code == 503
    corrupt = fault("corrupt.pdf").content
    assert corrupt.startswith(b"%PDF-")
    with pytest.raises(Exception):  # noqa: B017 - pypdfium2 raises its own PdfiumError
        pdf_text(corrupt)
