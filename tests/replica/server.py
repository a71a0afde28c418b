"""``Replica``: three local HTTP sites standing in for onu-vienne, osce and unodc."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import threading
import time
import traceback
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from . import content, pdfs, texts
from .base import Hit, Response, Site
from .spip import SpipSite
from .unodc import UnodcSite

SITES = ("onu-vienne", "osce", "unodc")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    site: Site
    replica: Replica


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, head: bool) -> None:
        replica, site = self.server.replica, self.server.site
        split = urlsplit(self.path)
        path, query = unquote(split.path) or "/", split.query
        try:
            with replica.lock:
                resp = site.handle(path, query)
                conditional = site.conditional
        except Exception:
            traceback.print_exc(file=sys.stderr)
            resp, conditional = Response(500, b"replica error\n", "text/plain"), False
        headers = {"Content-Type": resp.content_type, **resp.headers}
        status = resp.status
        if conditional and status == 200:
            if resp.mtime is not None:
                headers["Last-Modified"] = format_datetime(
                    resp.mtime.astimezone(dt.UTC), usegmt=True
                )
            if resp.etag is not None:
                headers["ETag"] = resp.etag
            if _not_modified(
                self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"), resp
            ):
                status = 304
        if resp.delay:
            time.sleep(resp.delay)
        body_len = 0 if head or status == 304 else resp.content_length
        hit = Hit(
            site.name,
            self.command,
            self.path,
            status,
            body_len,
            {k.lower(): v for k, v in self.headers.items()},
        )
        replica._record(hit)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(resp.content_length))
        self.end_headers()
        if head or status == 304:
            return
        try:
            if resp.stream is None:
                self.wfile.write(resp.body)
                return
            sent = 0
            for chunk in resp.stream():
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            if resp.stream is not None:
                hit.bytes_sent = sent


def _not_modified(if_none_match: str | None, if_modified_since: str | None, resp: Response) -> bool:
    if if_none_match is not None and resp.etag is not None:  # takes precedence (RFC 9110)
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or resp.etag.removeprefix("W/") in tags
    if if_modified_since and resp.mtime is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return resp.mtime.replace(microsecond=0) <= since
    return False


class Replica:
    """Serves replicas of onu-vienne.delegfrance.org, osce.delegfrance.org and www.unodc.org.

    ``port_base`` fixes the ports (onu-vienne, osce, unodc = base, base+1, base+2); by default
    each site gets an ephemeral port. Files are written under ``workdir/<site>/``.
    """

    def __init__(
        self, workdir: Path, *, port_base: int | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.workdir = Path(workdir)
        self.host, self.port_base = host, port_base
        self.lock = threading.RLock()  # guards content; handlers render under it
        self._hits: list[Hit] = []
        self._hits_lock = threading.Lock()
        self.base_urls: dict[str, str] = {}
        onu = content.build_onu_vienne(self.workdir / "onu-vienne")
        osce = content.build_osce(self.workdir / "osce", onu)
        unodc = content.build_unodc(self.workdir / "unodc")
        self.sites: dict[str, Site] = {
            "onu-vienne": SpipSite(onu, self.base_urls),
            "osce": SpipSite(osce, self.base_urls),
            "unodc": UnodcSite(unodc, self.base_urls),
        }
        self._clock = max(site.modified for site in self.sites.values())
        self._servers: dict[str, _Server] = {}
        self._threads: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Replica:
        for i, name in enumerate(SITES):
            port = 0 if self.port_base is None else self.port_base + i
            server = _Server((self.host, port), _Handler)
            server.site, server.replica = self.sites[name], self
            self._servers[name] = server
            self.base_urls[name] = f"http://{self.host}:{server.server_address[1]}"
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=f"replica-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, site: str, path: str = "/") -> str:
        """Absolute URL on a running site: ``replica.url("osce", "/spip.php?page=backend")``."""
        return self.base_urls[site] + "/" + path.lstrip("/")

    # --- settings -------------------------------------------------------------------------

    def set_robots(self, site: str, text: str) -> None:
        with self.lock:
            self.sites[site].robots = text

    def set_conditional(self, site: str, enabled: bool) -> None:
        """Off: no ETag, no Last-Modified, never 304 (exercises the worker's hash fallback)."""
        with self.lock:
            self.sites[site].conditional = enabled

    def reset_faults(self) -> None:
        """Re-arm ``/_fault/retry-after`` (503 again on the next first request)."""
        for s in self.sites.values():
            s.reset_faults()

    # --- mutations ------------------------------------------------------------------------

    def _tick(self) -> dt.datetime:
        """A modification time later than every earlier one (HTTP dates have 1 s precision)."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._clock = max(now, self._clock.replace(microsecond=0) + dt.timedelta(seconds=1))
        return self._clock

    def publish_issue(
        self, number: int, date: dt.date, *, fr_text: str | None = None, en_text: str | None = None
    ) -> dict[str, Any]:
        """Add issue ``number`` on onu-vienne: FR + EN articles, two new PDFs (new ``?id/hash``),
        first in listings and feeds when ``date`` is the newest. Texts: blank-line separated
        paragraphs (default: a short synthetic text). Returns ``issue(number)``."""
        if isinstance(date, dt.datetime):
            date = date.date()
        site = self._spip("onu-vienne").content
        fr_pdf = en_pdf = None
        if fr_text is not None:
            fr_pdf = pdfs.render_pdf(
                f"Lettre d'information n°{number} – {content.date_fr(date)}",
                tuple(texts.paragraphs(fr_text)),
                "fr",
                2,
            )
        if en_text is not None:
            en_pdf = pdfs.render_pdf(
                f"Newsletter n°{number} – {content.date_en(date)}",
                tuple(texts.paragraphs(en_text)),
                "en",
                2,
            )
        with self.lock:
            content.add_issue(site, number, date, mtime=self._tick(), fr_pdf=fr_pdf, en_pdf=en_pdf)
            return self.issue(number)

    def withhold_pdf(self, number: int, lang: str) -> None:
        """Take one language's PDF of issue ``number`` offline: unlinked from its articles and
        no longer served, until :meth:`release_pdf` (a translation published late)."""
        with self.lock:
            site = self._spip("onu-vienne").content
            issue = site.issues[number]
            doc = site.documents.pop(issue.pdfs[lang].path)
            for art in (issue.fr, issue.en):
                if art is not None:
                    art.documents.remove(doc)
                    art.mtime = self._tick()

    def release_pdf(self, number: int, lang: str) -> dict[str, Any]:
        """Put a withheld PDF online, linked from the issue's articles again."""
        with self.lock:
            site = self._spip("onu-vienne").content
            issue = site.issues[number]
            doc = site.add_doc(issue.pdfs[lang])
            for art in (issue.fr, issue.en):
                if art is not None:
                    art.documents.append(doc)
                    art.mtime = self._tick()
            return self.issue(number)

    def retitle_article(self, site: str, article_id: int, title: str) -> dict[str, Any]:
        """Change an article's title (its listings and feed entries change; its URL stays)."""
        with self.lock:
            art = next(a for a in self._spip(site).content.articles if a.id == article_id)
            art.title = title
            art.mtime = self._tick()
            return self._article_info(site, art)

    def replace_pdf(self, site: str, path: str, new_bytes: bytes) -> dict[str, Any]:
        """Change a served file in place: new ETag, Last-Modified and, on SPIP sites, a new
        ``?id/hash`` in every link to it. ``path`` may carry a query string (ignored)."""
        path = "/" + urlsplit(path).path.lstrip("/")
        with self.lock:
            target = self.sites[site]
            doc = target.files()[path]  # KeyError: no such file
            mtime = self._tick()
            doc.replace(new_bytes, mtime)
            if isinstance(target, SpipSite):
                for art in target.content.articles:
                    if doc in art.documents:
                        art.mtime = mtime
            return self._doc_info(site, doc)

    # --- catalogue (what tests assert on) -------------------------------------------------

    def _spip(self, name: str) -> SpipSite:
        site = self.sites[name]
        assert isinstance(site, SpipSite)
        return site

    def _abs(self, site: str, path: str) -> str:
        return self.base_urls.get(site, "") + path

    def _doc_info(self, site: str, doc: content.Document) -> dict[str, Any]:
        return {
            "path": doc.path,
            "query": doc.query,
            "url": self._abs(site, doc.path + doc.query),
            "title": doc.title,
            "size": len(doc.data),
            "etag": doc.etag,
            "sha256": hashlib.sha256(doc.data).hexdigest(),
            "file": doc.file,
        }

    def _article_info(self, site: str, art: content.Article) -> dict[str, Any]:
        return {
            "id": art.id,
            "title": art.title,
            "lang": art.lang,
            "path": art.path,
            "url": self._abs(site, art.path),
            "date": content.iso_z(art.date),
            "documents": [d.path for d in art.documents],
        }

    def issue(self, number: int) -> dict[str, Any]:
        """``{"number", "date", "fr": {article…, "pdf": {path, query, url, title, size, etag,
        sha256, file}}, "en": {…}}``; URLs are absolute once the replica is started."""
        with self.lock:
            issue = self._spip("onu-vienne").content.issues[number]
            out: dict[str, Any] = {"number": number, "date": issue.date.isoformat()}
            for lang, art in (("fr", issue.fr), ("en", issue.en)):
                if art is not None:
                    out[lang] = {
                        **self._article_info("onu-vienne", art),
                        "pdf": self._doc_info("onu-vienne", issue.pdfs[lang]),
                    }
            return out

    def documents(self, site: str) -> dict[str, dict[str, Any]]:
        """Every file a site serves, by path."""
        with self.lock:
            return {p: self._doc_info(site, d) for p, d in self.sites[site].files().items()}

    def articles(self, site: str) -> list[dict[str, Any]]:
        """SPIP articles of ``onu-vienne``/``osce``, newest first."""
        with self.lock:
            spip = self._spip(site)
            return [self._article_info(site, a) for a in spip.content.by_date()]

    # --- observation ----------------------------------------------------------------------

    def _record(self, hit: Hit) -> None:
        with self._hits_lock:
            self._hits.append(hit)

    @property
    def hits(self) -> list[Hit]:
        """A snapshot of the requests served so far (site, method, path, status, bytes_sent,
        headers with lower-cased names)."""
        with self._hits_lock:
            return list(self._hits)

    def reset_hits(self) -> None:
        with self._hits_lock:
            self._hits.clear()

    def hit_count(self, site: str | None = None, path_prefix: str | None = None) -> int:
        return sum(
            1
            for h in self.hits
            if (site is None or h.site == site)
            and (path_prefix is None or h.path.startswith(path_prefix))
        )

    def bytes_sent(self, site: str | None = None) -> int:
        return sum(h.bytes_sent for h in self.hits if site is None or h.site == site)
