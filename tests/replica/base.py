"""What every replica site shares: responses, robots.txt, served files and fault routes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from urllib.parse import parse_qs

from .content import Document

MIB = 1024 * 1024


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    mtime: datetime | None = None  # → Last-Modified (when the site's conditional GET is on)
    etag: str | None = None  # → ETag (idem)
    delay: float = 0.0  # seconds to sleep before answering (outside the content lock)
    stream: Callable[[], Iterator[bytes]] | None = None  # body produced in chunks
    length: int | None = None  # Content-Length of a streamed body

    @property
    def content_length(self) -> int:
        return (
            self.length if self.stream is not None and self.length is not None else len(self.body)
        )


@dataclass
class Hit:
    site: str
    method: str
    path: str  # path with query string, as requested
    status: int
    bytes_sent: int  # body bytes (0 for HEAD and 304)
    headers: dict[str, str]  # request headers, lower-cased names


def html_page(
    title: str, body: str, lang: str = "fr", status: int = 200, charset: str = "utf-8"
) -> Response:
    page = (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="{charset}">\n'
        f"<title>{escape(title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    return Response(status, page.encode(charset, "replace"), f"text/html; charset={charset}")


def not_found(lang: str = "fr") -> Response:
    if lang == "fr":
        return html_page("Page introuvable", "<h1>Page introuvable</h1>", "fr", 404)
    return html_page("Page not found", "<h1>Page not found</h1>", "en", 404)


class Site:
    """A site: subclasses implement ``route``; files and faults are handled here."""

    name: str
    lang = "fr"

    def __init__(self, name: str, base_urls: dict[str, str]) -> None:
        self.name = name
        self.base_urls = base_urls  # shared with the Replica, filled in at start()
        self.robots = "User-agent: *\nDisallow:\n"
        self.conditional = True
        self._retry_seen: set[str] = set()
        self._fault_lock = threading.Lock()

    @property
    def base(self) -> str:
        return self.base_urls.get(self.name, "")

    def files(self) -> dict[str, Document]:
        raise NotImplementedError

    def route(self, path: str, query: str) -> Response | None:
        raise NotImplementedError

    @property
    def modified(self) -> datetime:
        raise NotImplementedError

    def handle(self, path: str, query: str) -> Response:
        if path == "/robots.txt":
            return Response(body=self.robots.encode(), content_type="text/plain; charset=utf-8")
        if path.startswith("/_fault/"):
            return self.fault(path, query)
        doc = self.files().get(path)  # the query string ("?5120/<hash>", "?ref=…") is ignored
        if doc is not None:
            return Response(
                body=doc.data, content_type="application/pdf", mtime=doc.mtime, etag=doc.etag
            )
        return self.route(path, query) or not_found(self.lang)

    def reset_faults(self) -> None:
        with self._fault_lock:
            self._retry_seen.clear()

    def fault(self, path: str, query: str) -> Response:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        name = path.removeprefix("/_fault/")
        if name == "500":
            return html_page("Erreur", "<h1>Internal Server Error</h1>", status=500)
        if name == "slow":
            seconds = min(float(params.get("seconds", "5")), 120.0)
            resp = html_page("Lent", f"<p>Slept {seconds} s.</p>")
            resp.delay = seconds
            return resp
        if name == "redirect-loop":
            return Response(302, b"", headers={"Location": f"{self.base}/_fault/redirect-loop"})
        if name == "html-as-pdf.pdf":
            resp = html_page("Not a PDF", "<h1>Session expired</h1><p>Please log in.</p>")
            resp.content_type = "application/pdf"
            resp.etag = '"session-expired"'  # a static error page, as servers send them
            return resp
        if name == "big.pdf":
            return self._big_pdf(float(params.get("mb", "5")))
        if name == "cp1252":
            body = (
                "<h1>Lutte contre la traite des êtres humains</h1>\n<p>L’œuvre commune contre"
                " la délinquance forcée – « mendicité forcée », exploitation par le travail"
                " – publié le 1er août 2024.</p>"
            )
            return html_page(
                "Traite des êtres humains – page en windows-1252", body, charset="windows-1252"
            )
        if name == "retry-after":
            with self._fault_lock:
                first = query not in self._retry_seen
                self._retry_seen.add(query)
            if first:
                resp = html_page("Service indisponible", "<h1>503</h1>", status=503)
                resp.headers["Retry-After"] = "1"
                return resp
            return html_page("OK", "<p>Available again.</p>")
        if name == "corrupt.pdf":
            garbage = hashlib.sha256(b"corrupt").digest() * 512
            return Response(
                body=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Cat" + garbage,
                content_type="application/pdf",
            )
        return not_found(self.lang)

    @staticmethod
    def _big_pdf(mb: float) -> Response:
        total = max(int(min(mb, 2048) * MIB), 16)
        head = b"%PDF-1.4\n% replica big file\n"

        def chunks() -> Iterator[bytes]:
            block = b"0" * (64 * 1024)
            sent = len(head)
            yield head
            while sent < total:
                piece = block[: total - sent]
                sent += len(piece)
                yield piece

        return Response(content_type="application/pdf", stream=chunks, length=total)
