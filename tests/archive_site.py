"""A tiny RSS site for archive tests: English and French articles (stemming), a hostile page
(stored XSS), a newsletter issue in two languages, an encrypted and a truncated PDF; plus a
helper that starts ``tipwatch web`` on it exactly as the compose service does."""

from __future__ import annotations

import io
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest

from tests.conftest import BIN, Tipwatch, free_port, make_env
from tests.replica.pdfs import render_pdf

HOSTILE_SCRIPT = "document.title='PWNED';window.__pwned=1;fetch('/api/documents?pwned=1')"

EN_ARTICLE = """<!doctype html><html lang="en"><head><title>Labour report</title></head><body>
<main><article><h1>Child labour report</h1>
<p>The report documents trafficking networks that moved children across three borders to work
on farms and in factories, where inspectors found forced labour and debt bondage.</p>
<p>Investigators said the trafficking networks advertised fake jobs online and confiscated the
passports of every worker they recruited, then sold their debts to other employers.</p>
<p>Labour inspectors and prosecutors now share a case file system across the region.</p>
</article></main></body></html>"""

FR_ARTICLE = """<!doctype html><html lang="fr"><head><title>Rapport</title></head><body>
<main><article><h1>Rapport sur la traite des êtres humains</h1>
<p>La traite des êtres humains à des fins d'exploitation sexuelle reste la forme la plus
signalée dans la région, selon le rapport publié par les autorités nationales.</p>
<p>Les enquêteurs ont démantelé un réseau qui recrutait des femmes par de fausses offres
d'emploi, puis confisquait leurs passeports et leurs salaires pendant des mois.</p>
<p>Les victimes ont été orientées vers des associations spécialisées et des refuges.</p>
</article></main></body></html>"""

HOSTILE_ARTICLE = f"""<!doctype html><html lang="en"><head><title>Hostile</title>
<script>{HOSTILE_SCRIPT}</script></head><body onload="{HOSTILE_SCRIPT}">
<main><article><h1>Smuggling routes <img src=x onerror="{HOSTILE_SCRIPT}"></h1>
<p>This page about smuggling routes quotes markup literally:
&lt;script&gt;alert('xss')&lt;/script&gt; and &lt;img src=x onerror=alert(1)&gt;
must be shown as text, never run.</p>
<p>Smuggling routes across the Balkans shifted after the border closures, the report says,
and migrants paid more to intermediaries who promised safe passage and delivered none.</p>
<script>{HOSTILE_SCRIPT}</script>
</article></main></body></html>"""


def newsletter(number: int, lang: str, extra: str = "") -> bytes:
    if lang == "fr":
        title = f"Lettre d'information n°{number} sur la traite des êtres humains"
        body = (
            "La coopération judiciaire contre la traite des êtres humains progresse.",
            "Les poursuites pour exploitation par le travail ont doublé cette année." + extra,
        )
    else:
        title = f"Quarterly newsletter n°{number} on trafficking in persons"
        body = (
            "Judicial cooperation against trafficking in persons is improving in the region.",
            "Prosecutions for labour exploitation doubled this year." + extra,
        )
    return render_pdf(title, body, lang, 2)


def encrypted(data: bytes) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


ITEMS = [
    # (path, title, date, language, enclosure paths)
    ("/articles/en-report.html", "Child labour report", "Wed, 01 May 2024 10:00:00 GMT", "en", []),
    ("/articles/fr-rapport.html", "Rapport traite", "Mon, 10 Feb 2025 10:00:00 GMT", "fr", []),
    ("/articles/hostile.html", "Smuggling routes", "Sun, 01 Jun 2025 10:00:00 GMT", "en", []),
    (
        "/articles/newsletter-7.html",
        "Quarterly newsletter n°7",
        "Sat, 15 Mar 2025 10:00:00 GMT",
        "en",
        ["/docs/newsletter_n7_en.pdf", "/docs/lettre_n7_fr.pdf"],
    ),
    (
        "/articles/broken.html",
        "Broken files",
        "Tue, 01 Apr 2025 10:00:00 GMT",
        "en",
        ["/docs/encrypted.pdf", "/docs/truncated.pdf"],
    ),
]


class MiniSite:
    """Serves ``files`` (path → (content type, bytes)); tests may replace a file's bytes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        en7 = newsletter(7, "en")
        self.files: dict[str, tuple[str, bytes]] = {
            "/articles/en-report.html": ("text/html", EN_ARTICLE.encode()),
            "/articles/fr-rapport.html": ("text/html; charset=utf-8", FR_ARTICLE.encode()),
            "/articles/hostile.html": ("text/html", HOSTILE_ARTICLE.encode()),
            "/articles/newsletter-7.html": ("text/html", self._article("Newsletter n°7")),
            "/articles/broken.html": ("text/html", self._article("Broken files")),
            "/docs/newsletter_n7_en.pdf": ("application/pdf", en7),
            "/docs/lettre_n7_fr.pdf": ("application/pdf", newsletter(7, "fr")),
            "/docs/encrypted.pdf": ("application/pdf", encrypted(en7)),
            "/docs/truncated.pdf": ("application/pdf", en7[: int(len(en7) * 0.6)]),
        }
        self.files["/feed.xml"] = ("application/rss+xml", self._feed())
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                entry = site.files.get(self.path)
                if entry is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", entry[0])
                self.send_header("Content-Length", str(len(entry[1])))
                self.end_headers()
                self.wfile.write(entry[1])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _article(title: str) -> bytes:
        text = " ".join(["This page announces the files attached to it for download."] * 5)
        return f"<html><body><main><h1>{title}</h1><p>{text}</p></main></body></html>".encode()

    def _feed(self) -> bytes:
        items = []
        for path, title, date, lang, enclosures in ITEMS:
            encl = "".join(
                f'<enclosure url="{self.base}{e}" type="application/pdf" length="1"/>'
                for e in enclosures
            )
            items.append(
                f"<item><title>{title}</title><link>{self.base}{path}</link>"
                f"<pubDate>{date}</pubDate><dc:language>{lang}</dc:language>{encl}</item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Mini</title>'
            f"<link>{self.base}/</link>{''.join(items)}</channel></rss>"
        ).encode()

    def sources_yaml(self, path: Path) -> Path:
        path.write_text(
            "sources:\n"
            "  - name: mini\n"
            "    kind: rss\n"
            f"    base_url: {self.base}\n"
            "    feeds: [feed.xml]\n"
            "    series:\n"
            '      - {name: mini-newsletter, pattern: "newsletter|lettre", every_days: 92}\n',
            encoding="utf-8",
        )
        return path

    def __enter__(self) -> MiniSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def mini_site() -> Iterator[MiniSite]:
    with MiniSite() as site:
        yield site


def mini_tipwatch(site: MiniSite, tmp_path: Path, **extra: str) -> Tipwatch:
    """A TIP Watch whose only source is the mini site."""
    sources = site.sources_yaml(tmp_path / "sources.yaml")
    env = make_env(tmp_path / "data", None, TIPWATCH_SOURCES=str(sources), **extra)
    return Tipwatch(tmp_path / "data", env)


@contextmanager
def running_web(tipwatch: Tipwatch, port: int | None = None) -> Iterator[str]:
    """``tipwatch web`` on a loopback port (a free one by default); yields its base URL."""
    port = port or free_port()
    # Its output goes to a file: a pipe nobody reads fills up and blocks the server.
    with tempfile.TemporaryFile(mode="w+") as output:
        proc = subprocess.Popen(
            [str(BIN / "tipwatch"), "web", "--host", "127.0.0.1", "--port", str(port)],
            env=tipwatch.env,
            stdout=output,
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
                proc.wait(10)
                output.seek(0)
                pytest.fail(f"web did not start:\n{output.read()}")
            yield base
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def mini_web(mini_site: MiniSite, tmp_path: Path) -> Iterator[tuple[Tipwatch, str]]:
    """The mini site polled (a subscription matching its hostile page), and ``tipwatch web``."""
    tipwatch = mini_tipwatch(mini_site, tmp_path)
    tipwatch.run(
        "subscribe", "smuggling", "--query", "smuggling", "--notify", "json://127.0.0.1:9/"
    )
    tipwatch.run("poll", "--no-notify")
    with running_web(tipwatch) as base:
        yield tipwatch, base
