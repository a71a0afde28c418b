"""`tipwatch web`, started with the same command as the compose service, over a polled archive."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.archive_site import (
    HOSTILE_SCRIPT,
    running_web,
)
from tests.conftest import Tipwatch


@pytest.fixture
def web(tipwatch: Tipwatch) -> Iterator[tuple[Tipwatch, str]]:
    tipwatch.run("poll", "--source", "onu-vienne", "--source", "unodc-glotip")
    # docker-compose.yml runs `tipwatch web --host 0.0.0.0 --port 8000`; loopback here.
    with running_web(tipwatch) as base:
        yield tipwatch, base


def test_web_lists_searches_and_serves_originals_safely(web: tuple[Tipwatch, str]) -> None:
    tipwatch, base = web
    documents = httpx.get(f"{base}/api/documents?limit=500").json()
    assert len(documents) == len(tipwatch.json("archive", "list", "--limit", "500"))

    hits = httpx.get(f"{base}/api/search", params={"q": "Dubrovnik"}).json()
    assert hits and "«Dubrovnik»" in hits[0]["snippet"]
    page = httpx.get(base + "/", params={"q": "Dubrovnik"})
    assert page.status_code == 200 and "<mark>Dubrovnik</mark>" in page.text

    pdf = next(d for d in documents if d["kind"] == "pdf")
    detail = httpx.get(f"{base}/documents/{pdf['id']}")
    assert detail.status_code == 200 and pdf["content_sha256"] in detail.text
    original = httpx.get(f"{base}/documents/{pdf['id']}/original")
    assert original.status_code == 200
    assert hashlib.sha256(original.content).hexdigest() == pdf["content_sha256"]
    assert original.headers["content-disposition"].startswith("attachment")
    assert original.headers["x-content-type-options"] == "nosniff"

    html_doc = next(d for d in documents if d["kind"] == "html")
    served = httpx.get(f"{base}/documents/{html_doc['id']}/original")
    # Archived HTML is never served as a page of ours.
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert httpx.get(f"{base}/documents/999999").status_code == 404


# -- a hostile archived page, filters, htmx, the document page ----------------------------------


def test_hostile_archived_html_is_never_rendered(mini_web: tuple[Tipwatch, str]) -> None:
    tipwatch, base = mini_web
    hostile = next(d for d in tipwatch.json("archive", "list") if d["title"] == "Smuggling routes")
    page = httpx.get(f"{base}/documents/{hostile['id']}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page.text  # shown, escaped
    assert "<script>alert" not in page.text and HOSTILE_SCRIPT not in page.text
    assert "onerror=alert" not in page.text.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert page.headers["x-content-type-options"] == "nosniff"

    original = httpx.get(f"{base}/documents/{hostile['id']}/original")
    assert HOSTILE_SCRIPT.encode() in original.content  # the original is kept byte for byte
    assert original.headers["content-type"] == "application/octet-stream"
    assert original.headers["content-disposition"].startswith("attachment")
    assert original.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in original.headers["content-security-policy"]

    hits = httpx.get(f"{base}/", params={"q": "smuggling"})
    assert "<mark>smuggling</mark>" in hits.text.lower()
    assert "&lt;script&gt;" in hits.text and "<script>alert" not in hits.text


def test_document_page_api_filters_and_htmx(mini_web: tuple[Tipwatch, str]) -> None:
    tipwatch, base = mini_web
    hostile = next(d for d in tipwatch.json("archive", "list") if d["title"] == "Smuggling routes")
    detail = httpx.get(f"{base}/api/documents/{hostile['id']}").json()
    assert detail["alerts"][0]["subscription"] == "smuggling"
    assert detail["alerts"][0]["explanation"]["terms"][0]["pages"] == [1]
    assert detail["text_pages"] and detail["versions"][0]["id"] == hostile["id"]
    page = httpx.get(f"{base}/documents/{hostile['id']}").text
    assert "Matches" in page and "smuggling" in page

    pdf = next(d for d in tipwatch.json("archive", "list", "--issue", "7", "--kind", "pdf"))
    shown = httpx.get(f"{base}/api/documents/{pdf['id']}").json()
    assert shown["same_issue"]
    assert (
        f'href="/documents/{shown["same_issue"][0]["id"]}"'
        in httpx.get(f"{base}/documents/{pdf['id']}").text
    )

    french = httpx.get(f"{base}/api/search", params={"q": "exploitations", "language": "fr"})
    assert french.status_code == 200 and {d["language"] for d in french.json()} == {"fr"}
    assert all("«exploitation»" in d["snippet"] for d in french.json())
    dated = httpx.get(
        f"{base}/api/documents", params={"since": "2025-02-01", "until": "2025-02-28"}
    ).json()
    assert [d["title"] for d in dated] == ["Rapport sur la traite des êtres humains"]
    assert httpx.get(f"{base}/api/documents", params={"since": "yesterday"}).status_code == 422
    empty_form = httpx.get(f"{base}/", params={"q": "", "issue": "", "since": "", "language": ""})
    assert empty_form.status_code == 200

    partial = httpx.get(f"{base}/", params={"q": "trafficked"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "<mark>trafficking</mark>" in partial.text
    assert httpx.get(f"{base}/static/htmx.min.js").status_code == 200
