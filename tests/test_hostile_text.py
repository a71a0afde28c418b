"""Issue 12: a hostile or broken site cannot corrupt TIP Watch.

- Site text (titles, URLs) and user text (names, queries) holding rich markup is printed as it
  is by every command, and crashes none.
- Pages in windows-1252 / latin-1, declared in the header, in a <meta>, or not at all, and
  UTF-8 pages with a few bad bytes, are stored with the right letters.
- Out-of-range numbers and NUL bytes at the web API are refused with a 4xx, never a 500, on
  SQLite and on PostgreSQL.

Everything runs for real: loopback sites, the ``tipwatch`` command, ``tipwatch web``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.archive_site import running_web
from tests.conftest import OPERATOR_AUTH, Tipwatch, make_env
from tests.hostile_site import Behaviour, HostileSite, static
from tests.test_storage import database_url  # noqa: F401  (fixture: SQLite, then PostgreSQL)

# -- a loopback site serving fixed bytes (tests/hostile_site.py) ----------------------------


def delayed(seconds: float, behaviour: Behaviour) -> Behaviour:
    """``behaviour``, after ``seconds`` without a byte."""

    def serve(request: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        behaviour(request)

    return serve


def tipwatch_for(tmp_path: Path, sources: str, **extra: str) -> Tipwatch:
    path = tmp_path / "sources.yaml"
    path.write_text(sources, encoding="utf-8")
    env = make_env(tmp_path / "data", None, TIPWATCH_SOURCES=str(path), COLUMNS="400", **extra)
    return Tipwatch(tmp_path / "data", env)


# -- 1. rich markup in site and user text ---------------------------------------------------

TITLE = "[/b] Trafficking [red]report [link=javascript:x]go"  # ≤ 50: alerts cut there
ARTICLE_PATH = "/articles/[red]report[/b].html"
MISSING_PATH = "/articles/[/b]missing[red].html"
GONE_PATH = "/[/b]gone[link=javascript:x].html"
NAME = "[/x]watch"
QUERY = "trafficking OR [/x]"


def _markup_routes() -> dict[str, Behaviour]:
    listing = f"""<html><body><main><ul>
<li><a href="{ARTICLE_PATH}">{TITLE}</a></li>
<li><a href="{MISSING_PATH}">[bold red]missing</a></li>
</ul></main></body></html>"""
    text = " ".join(
        ["Trafficking networks [/x] moved [red]victims[/b] across borders for forced labour."] * 6
    )
    article = f"<html><body><main><h1>{TITLE}</h1><p>{text}</p></main></body></html>"
    return {
        "/index.html": static(listing.encode()),
        # slow, so a forced-terminal progress bar surely draws this URL
        ARTICLE_PATH: delayed(0.6, static(article.encode())),
    }


@pytest.fixture
def markup_site() -> Iterator[HostileSite]:
    with HostileSite(_markup_routes()) as site:
        yield site


def _markup_tipwatch(site: HostileSite, tmp_path: Path) -> Tipwatch:
    return tipwatch_for(
        tmp_path,
        f"""sources:
  - name: marked
    kind: html
    base_url: {site.base}
    listings: [index.html]
    options: {{item_pattern: "/articles/"}}
  - name: gone
    kind: html
    base_url: {site.base}
    listings: ["{GONE_PATH}"]
""",
    )


def test_markup_in_site_and_user_text_is_printed_literally(
    markup_site: HostileSite, tmp_path: Path
) -> None:
    tipwatch = _markup_tipwatch(markup_site, tmp_path)

    out = tipwatch.run("subscribe", NAME, "--query", QUERY, "--notify", "json://127.0.0.1:9/")
    assert f"subscribed {NAME}: {QUERY}" in out.stdout
    again = tipwatch.run("subscribe", NAME, "-q", QUERY, "-n", "json://127.0.0.1:9/", check=False)
    assert again.returncode == 1, again.stderr  # refused, with a message, not a traceback
    assert f"a subscription named '{NAME}' already exists" in again.stderr
    listed = tipwatch.run("subscriptions").stdout
    assert NAME in listed and QUERY in listed

    # A terminal (forced) shows the progress bar with the URLs being fetched, as they are.
    terminal = Tipwatch(tipwatch.data_dir, {**tipwatch.env, "TTY_COMPATIBLE": "1"})
    poll = terminal.run("poll")
    assert "MarkupError" not in poll.stderr and "Traceback" not in poll.stderr, poll.stderr
    assert ARTICLE_PATH in poll.stderr  # drawn by the bar, as it is
    assert f"{markup_site.base}{MISSING_PATH}: HTTP 404" in poll.stdout
    assert f"gone failed: {markup_site.base}{GONE_PATH}: HTTP 404" in poll.stdout

    for command in (["sources"], ["status"]):
        shown = tipwatch.run(*command).stdout
        assert f"{markup_site.base}{GONE_PATH}: HTTP 404" in shown, command

    listed = tipwatch.run("archive", "list").stdout
    assert TITLE in listed
    found = tipwatch.run("archive", "search", "[/b] trafficking").stdout
    assert "Search: [/b] trafficking (1 found)" in found and TITLE in found
    assert "[/«b»] Trafficking [red]report" in found  # the snippet, its match marked
    document = tipwatch.json("archive", "list")[0]
    assert document["title"] == TITLE
    shown = tipwatch.run("archive", "show", str(document["id"])).stdout
    assert TITLE in shown and f"{markup_site.base}{ARTICLE_PATH}" in shown

    alerts = tipwatch.run("alerts").stdout
    assert NAME in alerts and TITLE in alerts
    preview = tipwatch.run("subscriptions", "preview", NAME).stdout
    assert f"#{document['id']} {TITLE} (html)" in preview
    assert f"unsubscribed {NAME}" in tipwatch.run("unsubscribe", NAME).stdout


# -- 2. charsets: declared in the header, in a <meta>, as latin-1, not at all; bad UTF-8 -----

ARTICLE_TITLE = "La traite des êtres humains en Asie du Sud-Est"
# ’ and – are where windows-1252 and latin-1 differ; ê is where windows-1250 has ę.
LINK_TITLE = "Rapport – l’Office et les êtres humains, Sud-Est"
PARAGRAPH = (
    "Les enquêteurs ont démantelé un réseau qui exploitait des êtres humains – « travail"
    " forcé » – selon l’Office."
)
META_EQUIV = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
META_CHARSET = '<meta charset="windows-1252">'


def _page(head: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="fr"><head>{head}</head><body><main>{body}</main></body></html>'
    )


def _charset_routes(
    case: str, content_type: str, encode: Any, heads: tuple[str, str]
) -> dict[str, Behaviour]:
    listing = _page(
        heads[0],
        f'<ul><li><a href="/{case}/article.html">Article</a></li>'
        f'<li><a href="/{case}/untitled.html">{LINK_TITLE}</a></li></ul>',
    )
    text = f"<p>{PARAGRAPH}</p>" * 4 + f"<p>Page {case}.</p>"  # each page its own bytes
    article = _page(heads[1], f"<h1>{ARTICLE_TITLE}</h1>{text}")
    untitled = _page(heads[1], text)  # no title: the link's is kept
    return {
        f"/{case}/index.html": static(encode(listing), content_type),
        f"/{case}/article.html": static(encode(article, bad=True), content_type),
        f"/{case}/untitled.html": static(encode(untitled), content_type),
    }


def _cp1252(text: str, bad: bool = False) -> bytes:
    return text.encode("cp1252")


def _utf8_with_bad_bytes(text: str, bad: bool = False) -> bytes:
    data = text.encode()
    if bad:  # three invalid bytes in one paragraph: a stray 0xFF, a lone lead byte, a 0x92
        data = data.replace(b"un r", b"un \xffr", 1).replace(b"qui ", b"qui \xc3 ", 1)
        data = data.replace(b"selon", b"selon\x92", 1)
    return data


CHARSET_CASES = {
    "header": ("text/html; charset=windows-1252", _cp1252, ("", "")),
    "meta": ("text/html", _cp1252, (META_EQUIV, META_CHARSET)),
    "latin1": ("text/html; charset=ISO-8859-1", _cp1252, ("", "")),
    "undeclared": ("text/html", _cp1252, ("", "")),
    "utf8-bad": ("text/html", _utf8_with_bad_bytes, ("", "")),
    "utf8-bad-declared": ("text/html; charset=utf-8", _utf8_with_bad_bytes, ("", "")),
}


@pytest.fixture
def charset_site() -> Iterator[HostileSite]:
    routes: dict[str, Behaviour] = {}
    for case, (content_type, encode, heads) in CHARSET_CASES.items():
        routes.update(_charset_routes(case, content_type, encode, heads))
    with HostileSite(routes) as site:
        yield site


def test_pages_in_any_charset_are_stored_with_the_right_letters(
    charset_site: HostileSite, tmp_path: Path
) -> None:
    sources = "sources:\n" + "".join(
        f"""  - name: {case}
    kind: html
    base_url: {charset_site.base}
    listings: [{case}/index.html]
    options: {{item_pattern: "/(article|untitled)\\\\.html$"}}
"""
        for case in CHARSET_CASES
    )
    tipwatch = tipwatch_for(tmp_path, sources)
    report = tipwatch.json("poll", "--no-notify")["sources"]
    assert [(r["source"], r["new"], r["failed"]) for r in report] == [
        (case, 2, 0) for case in CHARSET_CASES
    ], report

    seen: dict[str, Any] = {}
    exported = tipwatch.run("archive", "export").stdout  # what `archive show --text` shows
    for row in map(json.loads, exported.splitlines()):
        page = row["url"].rsplit("/", 1)[-1].removesuffix(".html")
        text = row["text"]
        seen[f"{row['source']} {page}"] = {
            "title": row["title"],
            "text has the paragraph": "êtres humains – « travail forcé » – selon l’Office." in text,
            "replacement characters": text.count("\ufffd"),
            "mojibake": [c for c in ("Ã", "ę", "ś", "\x92", "\x9c", "\x96") if c in text],
        }
    expected: dict[str, Any] = {}
    for case in CHARSET_CASES:
        bad = 3 if case.startswith("utf8") else 0
        for page, title in (("article", ARTICLE_TITLE), ("untitled", LINK_TITLE)):
            expected[f"{case} {page}"] = {
                "title": title,
                "text has the paragraph": True,
                "replacement characters": bad if page == "article" else 0,
                "mojibake": [],
            }
    assert seen == expected


HEAD_FR = "<html><head>{}</head><body><h1>Les êtres humains – l’Office</h1></body></html>"


@pytest.mark.parametrize(
    ("body", "header"),
    [
        # a byte order mark beats a header that says otherwise
        (b"\xef\xbb\xbf" + HEAD_FR.format("").encode(), "windows-1252"),
        # UTF-8 bytes under a server-default latin-1 header, the page's <meta> says UTF-8
        (HEAD_FR.format('<meta charset="utf-8">').encode(), "iso-8859-1"),
        # windows-1252 bytes under a server-default UTF-8 header
        (HEAD_FR.format("").encode("cp1252"), "utf-8"),
        # labels that are no web encoding are ignored: utf-7 (script smuggling), rot13, junk
        (HEAD_FR.format('<meta charset="utf-7">').encode("cp1252"), "utf-7"),
        (HEAD_FR.format('<meta charset="rot13">').encode("cp1252"), "x-nonsense"),
        # an XML declaration, when nothing else declares
        (
            ('<?xml version="1.0" encoding="ISO-8859-1"?>' + HEAD_FR.format("")).encode("cp1252"),
            None,
        ),
        # a <meta> cannot say UTF-16 (it was read as ASCII): UTF-8
        (HEAD_FR.format('<meta charset="utf-16">').encode(), None),
    ],
    ids=["bom", "utf8-under-latin1", "cp1252-under-utf8", "utf-7", "rot13", "xml", "meta-utf16"],
)
def test_declarations_the_bytes_contradict_or_browsers_ignore(
    body: bytes, header: str | None
) -> None:
    from worker.extract.formats import decode_html

    assert "<h1>Les êtres humains – l’Office</h1>" in decode_html(body, header)


# -- 3. the web API: numbers out of range, NUL bytes, huge strings ----------------------------

BIG = [2**31, 2**63, 2**64, 10**30]


def test_web_refuses_out_of_range_numbers_and_nul_bytes(
    markup_site: HostileSite,
    tmp_path: Path,
    database_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    tipwatch = _markup_tipwatch(markup_site, tmp_path)
    tipwatch.env["TIPWATCH_DATABASE_URL"] = database_url
    tipwatch.run("poll", "--no-notify")
    [document] = tipwatch.json("archive", "list")
    with running_web(tipwatch) as base:

        def get(path: str, **params: Any) -> httpx.Response:
            return httpx.get(base + path, params=params, timeout=30, auth=OPERATOR_AUTH)

        # what works keeps working
        assert get(f"/api/documents/{document['id']}").json()["title"] == TITLE
        assert get(f"/documents/{document['id']}").status_code == 200
        assert get(f"/documents/{document['id']}/original").status_code == 200
        assert get("/api/documents", issue="2147483647", offset="2147483647").json() == []
        assert get("/api/search", q="trafficking", source="marked", language="en").json()
        assert get("/", q="trafficking", kind="html").status_code == 200

        def refused(path: str, name: str, **params: Any) -> None:
            """A 4xx whose message names the parameter. Asserted at once: a 500's traceback
            or two more and the server would block on its unread log pipe."""
            response = get(path, **params)
            answer = (path, params, response.status_code, response.text[:300])
            assert response.status_code == 422 and name in response.text, answer

        for n in [*BIG, 0, -1]:
            for path in ("/api/documents/{}", "/documents/{}", "/documents/{}/original"):
                refused(path.format(n), "document_id")
        listings = {"/api/documents": {}, "/api/search": {"q": "trafficking"}, "/": {}}
        for path, extra in listings.items():
            for n in [*BIG, 0]:
                refused(path, "issue", issue=str(n), **extra)
            for n in BIG:  # search pages with a cursor (`after`), the listings by offset
                paging = "limit" if path == "/api/search" else "offset"
                refused(path, paging, **{paging: str(n)}, **extra)
            for key in ("source", "language", "kind", "since", "until", "issue"):
                refused(path, key, **{key: "e\x00n", **extra})
                refused(path, key, **{key: "e" * 1001, **extra})
        for path in ("/api/search", "/"):
            refused(path, "NUL", q="traffic\x00king")
            refused(path, "after", q="trafficking", after="c" * 501)
            refused(path, "q", q="trafficking" * 100)
        refused("/api/search", "cursor", q="trafficking", after="bm90IGEgY3Vyc29y")
        page = get("/", q="trafficking", after="bm90IGEgY3Vyc29y")  # said on the page
        assert page.status_code == 200 and "not a cursor" in page.text, page.text[:300]
        for path in ("/api/alerts", "/alerts"):
            refused(path, "status", status="sent\x00")
        refused("/api/alerts", "limit", limit=str(2**63))
