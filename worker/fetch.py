"""Stage 1: polite, bounded HTTP fetching.

Every request goes through :class:`Fetcher`: it refuses hosts outside the source's list (also
on redirects), obeys robots.txt, spaces requests per host, sends conditional GETs, streams
bodies to disk under a size cap while hashing them, and retries transient failures.

``httpx.Timeout`` bounds each socket read, not a whole download: a server trickling one byte
every few seconds would never time out. Each :meth:`Fetcher.get` therefore runs under a
:class:`Deadline` that shuts the client's sockets down when the exchange (redirects and
retries included) outlives it, whatever phase it is in: connect, headers or body.

Request spacing is delegated to a pacer: :class:`HostPacer` spaces one process's requests;
:class:`worker.ratelimit.RedisHostPacer` spaces every worker process's requests to a host.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from protego import Protego
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from worker.urls import is_allowed, netloc

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK = 64 * 1024
MAX_BACKOFF = 30.0  # seconds, exponential backoff between retries
MAX_RETRY_AFTER = 60.0  # seconds, the longest Retry-After honoured
MAX_CRAWL_DELAY = 60.0  # seconds, the longest robots.txt Crawl-delay honoured
MAX_ROBOTS_BYTES = 512 * 1024  # a larger robots.txt is ignored (Google reads 500 KiB)
ROBOTS_TTL = 15 * 60.0  # seconds a host's robots.txt serves without Cache-Control max-age
MAX_ROBOTS_TTL = 24 * 3600.0  # RFC 9309: a cached robots.txt serves 24 hours at most
SPOOL_PREFIX = "fetch-"


class FetchError(Exception):
    """A request that produced no usable body; ``reason`` is shown to users as is."""

    def __init__(
        self,
        url: str,
        reason: str,
        status_code: int | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        timed_out: bool = False,
        result: FetchResult | None = None,
    ) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status_code = status_code
        self.retryable = retryable  # a transient failure: timeouts, resets, 429 and 5xx
        self.retry_after = retry_after
        self.timed_out = timed_out  # the host was too slow: a read timeout or the deadline
        self.result = result  # the answer, when its body was fetched and then refused


@dataclass
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status_code: int
    headers: dict[str, str]
    not_modified: bool = False
    path: Path | None = None  # body on disk (None when not modified)
    sha256: str | None = None
    size: int = 0
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def media_type(self) -> str:
        return media_type_of(self.headers.get("content-type", ""))

    @property
    def charset(self) -> str | None:
        return charset_of(self.headers.get("content-type", ""))

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    def read_bytes(self) -> bytes:
        return self.path.read_bytes() if self.path else b""

    def discard(self) -> None:
        if self.path:
            self.path.unlink(missing_ok=True)
            self.path = None

    def __enter__(self) -> FetchResult:
        return self

    def __exit__(self, *exc: object) -> None:
        """Whatever happens to the body (archived, refused, a crash), its spool file goes:
        whoever keeps the bytes moves the file away and clears ``path`` first."""
        self.discard()


def media_type_of(content_type: str) -> str:
    """The media type of a Content-Type header, lower-case, without parameters."""
    return content_type.split(";")[0].strip().lower()


def charset_of(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if any."""
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"'")
    return None


def clean_spool(spool_dir: Path, older_than: float) -> int:
    """Remove spool files untouched for ``older_than`` seconds: bodies of a killed process.

    A download in progress writes its file at every chunk and a finished one is consumed
    within the extraction timeout, so an old file is an orphan. Returns how many went.
    """
    removed = 0
    limit = time.time() - older_than
    for path in spool_dir.glob(f"{SPOOL_PREFIX}*"):
        with suppress(OSError):
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
    return removed


@dataclass
class FetchRecord:
    """One request's outcome, for the fetch history."""

    url: str
    status_code: int | None
    bytes_received: int
    duration_ms: int
    sha256: str | None = None
    error: str | None = None


class HostPacer:
    """Keeps at least ``delay`` seconds between two requests to the same host (this process).

    ``wait(host)`` returns when the caller may send its request. ``wait(host, delay)`` asks
    for a longer gap before this request (a robots.txt ``Crawl-delay``); never a shorter one.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._last: dict[str, float] = {}  # host -> monotonic start of its latest request
        self._lock = threading.Lock()

    def gap(self, delay: float | None) -> float:
        return self.delay if delay is None else max(self.delay, delay)

    def wait(self, host: str, delay: float | None = None) -> None:
        gap = self.gap(delay)
        with self._lock:
            now = time.monotonic()
            last = self._last.get(host)
            start = now if last is None else max(now, last + gap)
            self._last[host] = start
        if start > now:
            time.sleep(start - now)


class RobotsCache:
    """Each host's robots.txt rules, shared by every source polled in one process: sources on
    one host (UNODC's three) read it once per poll cycle, or once per ``max-age`` when the
    host says how long it stays valid (24 hours at most)."""

    def __init__(self, ttl: float = ROBOTS_TTL) -> None:
        self.ttl = ttl
        self._rules: dict[str, tuple[float, Protego | None]] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> tuple[bool, Protego | None]:
        """(known, rules): rules None when the host has none (or an unreadable file)."""
        with self._lock:
            entry = self._rules.get(host)
        if entry is None or entry[0] <= time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, host: str, rules: Protego | None, max_age: float | None = None) -> None:
        ttl = self.ttl if max_age is None else min(max_age, MAX_ROBOTS_TTL)
        with self._lock:
            self._rules[host] = (time.monotonic() + ttl, rules)


def max_age(cache_control: str | None) -> float | None:
    """The ``max-age`` of a Cache-Control header, in seconds; None without one. The cache
    never holds robots.txt for less than one poll cycle, whatever the header says."""
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "max-age" and value.strip().strip('"').isdigit():
            return max(float(value.strip().strip('"')), ROBOTS_TTL)
    return None


class Deadline:
    """A wall-clock limit on one whole HTTP exchange, enforced from a timer thread.

    When it expires, every socket the client opened is shut down, which wakes a read blocked
    in any phase (connect, headers, body) with an error; the fetcher then reports the
    deadline. Sockets are learnt from httpcore's ``trace`` extension as connections open, so
    a kept-alive connection reused by a later request is covered too.
    """

    def __init__(self, seconds: float, sockets: weakref.WeakSet[socket.socket]) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets = sockets
        self._ends = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def _expire(self) -> None:
        self.expired = True
        for sock in list(self._sockets):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


class Fetcher:
    """HTTP client bound to one source's allowed hosts."""

    def __init__(
        self,
        *,
        allowed_netlocs: frozenset[str],
        user_agent: str,
        timeout: float = 30.0,
        max_bytes: int = 512 * 1024 * 1024,
        deadline: float = 300.0,
        pacer: HostPacer | None = None,
        retries: int = 2,
        spool_dir: Path | None = None,
        on_request: Callable[[FetchRecord], None] | None = None,
        robots: RobotsCache | None = None,
    ) -> None:
        self.allowed_netlocs = allowed_netlocs
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.deadline = deadline
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._deadline: Deadline | None = None
        self.pacer = pacer or HostPacer(0)
        self.retries = retries
        self.spool_dir = spool_dir
        self.on_request = on_request
        self.robots = robots or RobotsCache()
        self._crawl_delay: dict[str, float] = {}  # host -> robots.txt Crawl-delay
        self.client = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public -------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
        max_text_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` (conditionally when validators are given); raise FetchError on failure.

        The body is refused past ``max_bytes`` (default: the fetcher's cap), or past
        ``max_text_bytes`` when the server says it is text, HTML or XML (a page to be parsed in
        memory, not a file to be archived). The whole exchange, robots.txt, redirects and
        retries included, ends at the fetcher's deadline.
        """
        self._check_allowed(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.retries + 1),
            wait=_retry_wait,
            before_sleep=_log_retry,
            reraise=True,
        )
        limit = self.max_bytes if max_bytes is None else max_bytes
        with Deadline(self.deadline, self._sockets) as deadline:
            self._deadline = deadline
            try:
                self._check_robots(url)
                return retrying(self._get_following_redirects, url, headers, limit, max_text_bytes)
            finally:
                self._deadline = None

    # -- internals ------------------------------------------------------------------------

    def _check_allowed(self, url: str) -> None:
        if not is_allowed(url, self.allowed_netlocs):
            raise FetchError(url, f"host {netloc(url)!r} is not in this source's allowed hosts")

    def _check_robots(self, url: str) -> None:
        host = netloc(url)
        known, rules = self.robots.get(host)
        if not known:
            rules, ttl = self._load_robots(url)
            self.robots.put(host, rules, ttl)
        if rules is not None and host not in self._crawl_delay:
            crawl_delay = rules.crawl_delay(self.user_agent)
            self._crawl_delay[host] = min(float(crawl_delay or 0), MAX_CRAWL_DELAY)
        if rules is not None and not rules.can_fetch(url, self.user_agent):
            raise FetchError(url, "disallowed by robots.txt")

    def _load_robots(self, url: str) -> tuple[Protego | None, float | None]:
        """The host's rules, and for how long they hold (its Cache-Control max-age); none when
        robots.txt is missing, unreadable or oversized (read as a stream under a cap, within
        the request's deadline)."""
        robots_url = httpx.URL(url).copy_with(path="/robots.txt", query=None, fragment=None)
        body = bytearray()
        started = time.monotonic()
        status: int | None = None
        try:
            self._pace(url)
            with self.client.stream("GET", robots_url, extensions=self._extensions()) as response:
                status = response.status_code
                ttl = max_age(response.headers.get("cache-control"))
                if status >= 400:
                    self._record(str(robots_url), status, 0, started)
                    return None, ttl
                for chunk in response.iter_bytes(CHUNK):
                    body += chunk
                    if len(body) > MAX_ROBOTS_BYTES:
                        self._record(str(robots_url), status, len(body), started)
                        return None, ttl
        except httpx.HTTPError as exc:
            self._record(str(robots_url), status, len(body), started, error=str(exc))
            if self._deadline is not None and self._deadline.expired:
                raise self._deadline_error(url) from None
            # unreachable robots.txt: the page fetch itself will report the error
            return None, None
        self._record(str(robots_url), status, len(body), started)
        return Protego.parse(body.decode("utf-8", errors="replace")), ttl

    # -- the deadline ---------------------------------------------------------------------

    def _extensions(self) -> dict[str, object]:
        return {"trace": self._trace}

    def _trace(self, event: str, info: dict[str, object]) -> None:
        """httpcore's trace hook: remember each new connection's socket for the deadline."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = getattr(stream, "get_extra_info", lambda _: None)("socket")
            if isinstance(sock, socket.socket):
                self._sockets.add(sock)

    def _check_deadline(self, url: str) -> None:
        if self._deadline is not None and self._deadline.remaining() <= 0:
            raise self._deadline_error(url)

    def _deadline_error(self, url: str) -> FetchError:
        return FetchError(
            url,
            f"timed out: the download took longer than {self.deadline:g} s"
            " (TIPWATCH_DOWNLOAD_DEADLINE)",
            timed_out=True,
        )

    def _pace(self, url: str) -> None:
        """Wait for this host's turn (host delay, or its robots.txt Crawl-delay if longer)."""
        host = netloc(url)
        self.pacer.wait(host, self._crawl_delay.get(host))

    def _get_following_redirects(
        self, url: str, headers: dict[str, str], max_bytes: int, max_text_bytes: int | None
    ) -> FetchResult:
        current = url
        seen = {url}
        for _ in range(MAX_REDIRECTS + 1):
            result = self._get_once(url, current, headers, max_bytes, max_text_bytes)
            if isinstance(result, FetchResult):
                return result
            location = result
            if location in seen:
                raise FetchError(url, f"redirect loop at {location}")
            self._check_allowed(location)
            self._check_robots(location)
            seen.add(location)
            current = location
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    def _get_once(
        self,
        url: str,
        current: str,
        headers: dict[str, str],
        max_bytes: int,
        max_text_bytes: int | None,
    ) -> FetchResult | str:
        """One request: a FetchResult, or the next URL when redirected."""
        self._pace(current)
        self._check_deadline(url)
        started = time.monotonic()
        status: int | None = None
        received = 0
        try:
            with self.client.stream(
                "GET", current, headers=headers, extensions=self._extensions()
            ) as response:
                status = response.status_code
                if status == 304:
                    self._record(current, status, 0, started)
                    return FetchResult(
                        url, current, status, dict(response.headers), not_modified=True
                    )
                if response.is_redirect:
                    location = str(response.next_request.url) if response.next_request else None
                    self._record(current, status, 0, started)
                    if not location:
                        raise FetchError(url, f"HTTP {status} without Location", status)
                    return location
                if status >= 400:
                    self._record(current, status, 0, started, error=f"HTTP {status}")
                    raise FetchError(
                        url,
                        f"HTTP {status} {response.reason_phrase}".strip(),
                        status,
                        retryable=status in RETRY_STATUSES,
                        retry_after=_retry_after(response.headers.get("retry-after")),
                    )
                what = "bytes"
                if max_text_bytes is not None and _is_text(response.headers):
                    max_bytes, what = min(max_bytes, max_text_bytes), "bytes for a page"
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(
                        url, f"too large: {int(declared)} bytes > limit {max_bytes} {what}", status
                    )
                digest = hashlib.sha256()
                with tempfile.NamedTemporaryFile(
                    dir=self.spool_dir, prefix=SPOOL_PREFIX, delete=False
                ) as spool:
                    path = Path(spool.name)
                    try:
                        for chunk in response.iter_bytes(CHUNK):
                            received += len(chunk)
                            if received > max_bytes:
                                raise FetchError(
                                    url, f"too large: more than {max_bytes} {what}", status
                                )
                            self._check_deadline(url)
                            digest.update(chunk)
                            spool.write(chunk)
                    except BaseException:
                        path.unlink(missing_ok=True)
                        raise
                sha = digest.hexdigest()
                self._record(current, status, received, started, sha=sha)
                return FetchResult(
                    url,
                    current,
                    status,
                    dict(response.headers),
                    path=path,
                    sha256=sha,
                    size=received,
                )
        except FetchError as exc:
            if exc.timed_out or (exc.status_code is not None and exc.status_code < 400):
                self._record(current, status, received, started, error=exc.reason)
            raise
        except httpx.HTTPError as exc:
            if self._deadline is not None and self._deadline.expired:
                error = self._deadline_error(url)  # our timer shut the socket down
                self._record(current, status, received, started, error=error.reason)
                raise error from exc
            if isinstance(exc, httpx.TimeoutException):
                self._record(current, status, received, started, error=f"timeout: {exc}")
                raise FetchError(
                    url, f"timed out ({type(exc).__name__})", retryable=True, timed_out=True
                ) from exc
            self._record(current, status, received, started, error=str(exc))
            raise FetchError(url, f"{type(exc).__name__}: {exc}", retryable=True) from exc

    def _record(
        self,
        url: str,
        status: int | None,
        size: int,
        started: float,
        sha: str | None = None,
        error: str | None = None,
    ) -> None:
        if self.on_request:
            elapsed = int((time.monotonic() - started) * 1000)
            self.on_request(FetchRecord(url, status, size, elapsed, sha, error))


def _is_text(headers: httpx.Headers) -> bool:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type.startswith("text/") or media_type.endswith(("html", "xml", "json"))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, FetchError) and exc.retryable


_backoff = wait_exponential_jitter(initial=1.0, max=MAX_BACKOFF, exp_base=2, jitter=1.0)


def _retry_wait(state: RetryCallState) -> float:
    """The server's Retry-After when it sent one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, FetchError) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_AFTER)
    return _backoff(state)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("retrying in %.1f s (attempt %d): %s", wait, state.attempt_number + 1, exc)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped at 60."""
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min((when - datetime.now(UTC)).total_seconds(), MAX_RETRY_AFTER))
