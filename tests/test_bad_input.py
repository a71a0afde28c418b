"""Bad documents are recorded with a clear reason; nothing else is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Replica, Tipwatch, make_env, page_server

PDF_LINKS = [
    "/_fault/html-as-pdf.pdf",
    "/_fault/corrupt.pdf",
    "/_fault/500",
    "/IMG/pdf/newsletter_thb_n23_en.pdf?5121/0123456789abcdef0123456789abcdef01234567",
]


@pytest.fixture
def listing(replica_session: Replica) -> str:
    """A loopback page listing the replica's faulty documents next to a good one."""
    base = replica_session.base_urls["onu-vienne"]
    links = "".join(
        f'<li><a href="{base}{p}" type="application/pdf">doc {i}</a></li>'
        for i, p in enumerate(PDF_LINKS)
    )
    body = (
        f"<html><body><main><ul>{links}<li><a href='{base}/_fault/cp1252'>page</a></li>"
        "<li><a href='http://169.254.169.254/latest/meta-data.pdf'>internal</a></li>"
        "</ul></main></body></html>"
    ).encode()

    with page_server(body) as url:
        yield url


def test_bad_documents_are_reported_and_good_ones_archived(
    tmp_path: Path, listing: str, replica_session: Replica
) -> None:
    onu = replica_session.base_urls["onu-vienne"].split("//", 1)[1]
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"""sources:
  - name: faults
    kind: html
    base_url: {listing}
    listings: [list]
    allowed_hosts: ["{onu}"]
    options:
      item_pattern: "_fault/cp1252"
""")
    env = make_env(tmp_path / "data", None, TIPWATCH_SOURCES=str(sources))
    tipwatch = Tipwatch(tmp_path / "data", env)
    report = tipwatch.json("poll")["sources"][0]
    failures = "\n".join(report["failures"])
    assert report["status"] == "partial"
    assert "html-as-pdf.pdf: expected a PDF but the server sent an HTML page" in failures
    assert "_fault/500: HTTP 500" in failures
    assert "169.254.169.254" not in failures  # never requested, so never failed
    assert report["failed"] == 2
    assert report["new"] == 3  # the good PDF, the corrupt PDF (kept as original), the cp1252 page

    documents = {d["canonical_url"].rsplit("/", 1)[-1]: d for d in tipwatch.json("archive", "list")}
    corrupt = documents["corrupt.pdf"]
    assert corrupt["extract_error"].startswith("unreadable PDF")
    assert documents["newsletter_thb_n23_en.pdf"]["extract_error"] is None
    page = tipwatch.json("archive", "show", str(documents["cp1252"]["id"]), "--text")
    assert "é" in "".join(page["text_pages"])  # decoded from windows-1252, not mojibake
    assert "Ã©" not in "".join(page["text_pages"])
    rows = tipwatch.json("sources")
    assert "expected a PDF" in rows[0]["last_error"]
