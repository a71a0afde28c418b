"""www.unodc.org: news listing, stories, press releases, GLOTIP page and PDFs (sources.md §2)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.utils import format_datetime
from html import escape

from .base import Response, Site
from .content import UnodcContent, UnodcPage, date_en, date_fr

NEWS = "/unodc/en/human-trafficking/news-and-stories.html"
PRESS = "/unodc/en/press/releases.html"
GLOTIP = "/unodc/en/data-and-analysis/glotip.html"
LEGACY = "/unodc/en/human-trafficking/human-trafficking-feed.html"


class UnodcSite(Site):
    lang = "en"

    def __init__(self, content: UnodcContent, base_urls: dict[str, str]) -> None:
        super().__init__("unodc", base_urls)
        self.content = content

    def files(self):  # type: ignore[no-untyped-def]
        return self.content.documents

    @property
    def modified(self) -> datetime:
        return self.content.modified

    def route(self, path: str, query: str) -> Response | None:
        c = self.content
        if path in ("/", "/unodc/en/index.html"):
            return self._html(self.layout("UNODC", self.home()), c.modified)
        if path == NEWS:
            return self._html(self.news(), c.modified)
        if path == PRESS:
            return self._html(self.press(), c.modified)
        if path == GLOTIP:
            return self._html(self.glotip(), max(d.mtime for d in c.documents.values()))
        if path == LEGACY:  # "?page=N" accepted and ignored
            return self._html(self.legacy(), c.modified)
        if path == c.feed_path:
            return Response(
                body=self.feed().encode(), content_type="application/rss+xml", mtime=c.modified
            )
        page = c.page(path)
        if page is not None:
            assert page.mtime is not None
            return self._html(self.article(page), page.mtime)
        return None

    @staticmethod
    def _html(text: str, mtime: datetime) -> Response:
        body = text.encode()
        return Response(
            body=body, mtime=mtime, etag='W/"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        )

    def layout(self, title: str, main: str, lang: str = "en", head: str = "") -> str:
        return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
{head}</head>
<body>
<div id="header"><a href="{self.base}/unodc/en/index.html">UNODC</a>
<ul class="nav"><li><a href="/unodc/en/human-trafficking/news-and-stories.html">Human\
 trafficking</a></li><li><a href="{self.base}{PRESS}">Press releases</a></li>
<li><a href="/unodc/en/data-and-analysis/glotip.html">GLOTIP</a></li></ul></div>
<div id="content">
{main}
</div>
</body>
</html>
"""

    def home(self) -> str:
        return (
            f'<h1>United Nations Office on Drugs and Crime</h1><ul><li><a href="{NEWS}">'
            f'News and stories</a></li><li><a href="{PRESS}">Press releases</a></li>'
            f'<li><a href="{GLOTIP}">Global Report on Trafficking in Persons</a></li></ul>'
        )

    def _item(self, p: UnodcPage, css: str) -> str:
        return f"""<div class="{css}">
<p class="date">{date_en(p.date, p.zero_pad)}</p>
<h3><a href="{escape(p.listing_href)}">{escape(p.title)}</a></h3>
<p class="teaser">{escape(p.teaser)} <a href="{self.base}{escape(p.listing_href)}">read more</a>\
</p>
</div>"""

    def news(self) -> str:
        feed = self.content.feed_path
        items = "\n".join(self._item(p, "news-item") for p in self.content.listed("story"))
        main = f"""<h1>News and stories</h1>
<p class="feed-links"><a href="{feed}">Subscribe to our News feed</a> |</p>
<div class="news-list">
{items}
</div>"""
        head = (
            "<!-- REPLICA-ONLY: this feed path is invented; no UNODC feed URL is known -->\n"
            f'<link rel="alternate" type="application/rss+xml" title="News feed"'
            f' href="{feed}">\n'
        )
        return self.layout("UNODC - Human Trafficking - News and stories", main, head=head)

    def press(self) -> str:
        items = "\n".join(self._item(p, "press-item") for p in self.content.listed("press"))
        return self.layout(
            "UNODC - Press releases",
            f'<h1>Press releases</h1>\n<div class="press-list">\n{items}\n</div>',
        )

    def legacy(self) -> str:
        pages = [p for p in self.content.pages if p.legacy_date]
        rows = "\n".join(
            f'<tr><td>{p.legacy_date}</td><td><a href="{p.path}">{escape(p.title)}</a></td></tr>'
            for p in pages
        )
        main = (
            f"<h1>UNODC and Trafficking in Persons: News, Events and Publications"
            f" ({len(pages)} entries)</h1>\n<table>\n{rows}\n</table>"
        )
        return self.layout("UNODC - Human trafficking feed", main)

    def glotip(self) -> str:
        sections = "\n".join(
            f"<h2>{escape(heading)}</h2>\n<ul>"
            + "".join(
                f'<li><a href="{escape(href.replace("{unodc}", self.base))}">{escape(label)}</a>'
                "</li>"
                for href, label in links
            )
            + "</ul>"
            for heading, links in self.content.glotip
        )
        return self.layout(
            "Global Report on Trafficking in Persons",
            f"<h1>Global Report on Trafficking in Persons</h1>\n{sections}",
        )

    def article(self, p: UnodcPage) -> str:
        when = date_fr(p.date) if p.lang == "fr" else date_en(p.date)
        first, rest = p.body[0], p.body[1:]
        if p.kind == "press":
            lead = f"<p><strong>{escape(p.place)}, {when}</strong> – {first}</p>"
        else:
            lead = f"<p>{when} - {first}</p>"
        paras = "\n".join(f"<p>{para}</p>" for para in rest)
        return self.layout(
            f"UNODC - {p.title}", f"<h1>{escape(p.title)}</h1>\n{lead}\n{paras}", lang=p.lang
        )

    def feed(self) -> str:
        items = "".join(
            f"""
<item>
<title>{escape(p.title, quote=False)}</title>
<link>{self.base}{p.path}</link>
<guid>{self.base}{p.path}</guid>
<pubDate>{format_datetime(p.mtime, usegmt=True) if p.mtime else ""}</pubDate>
<description>{escape(p.teaser, quote=False)}</description>
</item>"""
            for p in self.content.listed("story")
        )
        return f"""<?xml version="1.0" encoding="utf-8"?>
<!-- REPLICA-ONLY: invented feed; the real UNODC site has no confirmed RSS feed -->
<rss version="2.0">
<channel>
<title>UNODC - Human trafficking news</title>
<link>{self.base}{NEWS}</link>
<description>News and stories</description>{items}
</channel>
</rss>
"""
