"""`tipwatch web`, started with the same command as the compose service, over a polled archive."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import BIN, Tipwatch, free_port


@pytest.fixture
def web(tipwatch: Tipwatch) -> Iterator[tuple[Tipwatch, str]]:
    tipwatch.run("poll", "--source", "onu-vienne", "--source", "unodc-glotip")
    port = free_port()
    # docker-compose.yml runs `tipwatch web --host 0.0.0.0 --port 8000`; loopback here.
    proc = subprocess.Popen(
        [str(BIN / "tipwatch"), "web", "--host", "127.0.0.1", "--port", str(port)],
        env=tipwatch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            proc.terminate()
            pytest.fail(f"web did not start:\n{proc.communicate(timeout=10)[0]}")
        yield tipwatch, base
    finally:
        proc.terminate()
        proc.wait(10)


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
