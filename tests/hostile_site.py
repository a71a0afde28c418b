"""A deliberately hostile (or merely broken) web site on loopback, for the hostile-site tests
and bench/memory.py.

Each path is served by a small behaviour: a static body, a body trickled a byte at a time, a
huge page generated on the fly (never held in memory), a PDF whose bytes change on every
request, a listing with thousands of links. Requests are counted per path.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

Behaviour = Callable[[BaseHTTPRequestHandler], None]


def static(body: bytes, content_type: str = "text/html; charset=utf-8") -> Behaviour:
    def serve(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return serve


def trickle(
    body: bytes = b"<html><body>" + b"x" * 4096,
    every: float = 0.5,
    *,
    in_headers: bool = False,
) -> Behaviour:
    """One byte every ``every`` seconds, each well inside any read timeout (slowloris), in
    the body or, with ``in_headers``, in an endless response header."""

    def serve(request: BaseHTTPRequestHandler) -> None:
        stop = request.server.stopping  # type: ignore[attr-defined]
        try:
            if in_headers:
                request.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(100_000):
                    if stop.wait(every):
                        return
                    request.wfile.write(b"a")
                    request.wfile.flush()
                return
            request.send_response(200)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            for byte in body:
                if stop.wait(every):
                    return
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
        except OSError:
            return  # the client hung up, as it should

    return serve


def huge_html(size: int, *, declare_length: bool = False, links: int = 0) -> Behaviour:
    """An HTML page of ``size`` bytes, generated while sent. Without ``declare_length`` it is
    chunk-free and length-free (connection close), so only counting bytes can stop it."""
    head = b"<html><body><main><h1>Huge page</h1>"
    link_html = b"".join(b'<a href="/docs/f%d.pdf">f%d</a> ' % (i, i) for i in range(links))
    filler = b"<p>" + b"trafficking in persons " * 40 + b"</p>\n"

    def serve(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        if declare_length:
            request.send_header("Content-Length", str(size))
        request.send_header("Connection", "close")
        request.end_headers()
        request.close_connection = True
        sent = 0
        try:
            for part in itertools.chain([head, link_html], itertools.repeat(filler)):
                if sent >= size:
                    break
                part = part[: size - sent]
                request.wfile.write(part)
                sent += len(part)
        except OSError:
            return

    return serve


def links_page(count: int, prefix: str = "/docs/f", suffix: str = ".pdf") -> bytes:
    anchors = "\n".join(
        f'<li><a href="{prefix}{i}{suffix}" type="application/pdf">File {i}</a></li>'
        for i in range(count)
    )
    return (
        "<html><body><main><h1>Reports</h1><ul>" + anchors + "</ul></main></body></html>"
    ).encode()


def regenerated_pdf(make: Callable[[str], bytes]) -> Behaviour:
    """A PDF re-rendered on every request: the same text, new bytes (a timestamp inside)."""
    counter = itertools.count()

    def serve(request: BaseHTTPRequestHandler) -> None:
        static(make(f"generated {time.time_ns()} #{next(counter)}"), "application/pdf")(request)

    return serve


class HostileSite:
    """Serves ``routes`` (path, percent-decoded → behaviour) on a free loopback port; tests add
    routes freely."""

    def __init__(self, routes: dict[str, Behaviour] | None = None) -> None:
        self.routes: dict[str, Behaviour] = dict(routes or {})
        self.hits: Counter[str] = Counter()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = unquote(self.path.split("?", 1)[0])
                site.hits[path] += 1
                behaviour = site.routes.get(path)
                if behaviour is None:
                    body = b"not found"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                behaviour(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up on a hostile response is the expected case

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.stopping = threading.Event()  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def sources_yaml(self, path: Path, *sources: tuple[str, str], **options: object) -> Path:
        """A sources file of ``html`` sources (name, listing path) on this site. ``options``
        go to each source: ``max_*`` limits as they are, the rest as the kind's options
        (``item_pattern``…)."""
        limits = {k: v for k, v in options.items() if k.startswith("max_")}
        kind_options = {k: v for k, v in options.items() if k not in limits}
        lines = ["sources:"]
        for name, listing in sources:
            lines += [
                f"  - name: {name}",
                "    kind: html",
                f"    base_url: {self.base}",
                f"    listings: ['{listing.lstrip('/')}']",
                *(f"    {key}: {value}" for key, value in limits.items()),
                f"    options: {json.dumps(kind_options)}",
            ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def __enter__(self) -> HostileSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stopping.set()  # type: ignore[attr-defined]
        self.server.shutdown()
        self.server.server_close()
