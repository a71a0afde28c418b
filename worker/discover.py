"""Stage 2: find items (articles, stories) and the documents they link.

Each source kind is a small class registered by its ``kind`` name, so ``kind: spip`` in
sources.yaml selects :class:`SpipSource` with no if/else ladder. Parsing is pure: a page's
bytes in, links out. Selection relies on structure (feeds, URL shapes, link types), not on
CSS class names the sites may change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, Literal

import feedparser
from bs4 import BeautifulSoup, Tag

from config.settings import SOURCE_KIND_OPTIONS, validate_source_options
from worker.dates import parse_date
from worker.extract.formats import decode_html
from worker.urls import absolute_url, looks_like_pdf

LinkRole = Literal["item", "document", "page"]


@dataclass(frozen=True)
class Link:
    """A URL worth following: an item page, a document (file), or another listing page."""

    url: str
    role: LinkRole
    title: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    found_on: str | None = None  # the item page a document belongs to, when not the page parsed


@dataclass
class Page:
    url: str
    body: bytes
    media_type: str = ""
    charset: str | None = None

    @property
    def is_feed(self) -> bool:
        # Feeds are sniffed, not trusted by Content-Type: some SPIP backends mislabel theirs.
        head = self.body[:512].lstrip().lower()
        return (
            head.startswith(b"<?xml")
            and (b"<rss" in self.body[:2048].lower() or b"<feed" in self.body[:2048].lower())
        ) or head.startswith((b"<rss", b"<feed"))

    @cached_property
    def html(self) -> str:
        """The page decoded exactly as extraction decodes it: one charset rule for both."""
        return decode_html(self.body, self.charset)

    def soup(self) -> BeautifulSoup:
        return BeautifulSoup(self.html, "lxml")


_KINDS: dict[str, type[SourceKind]] = {}


def source_kinds() -> dict[str, type[SourceKind]]:
    return dict(_KINDS)


def kind_for(name: str, options: dict[str, Any] | None = None) -> SourceKind:
    return _KINDS[name](options or {})


class SourceKind:
    """Base class: subclasses set ``kind`` and override the parsing hooks they need."""

    kind: ClassVar[str] = ""
    # The option keys a kind accepts are part of the sources file's schema, declared in
    # config.settings.SOURCE_KIND_OPTIONS (which validates them when the file is loaded).
    option_keys: ClassVar[frozenset[str]] = frozenset({"title_filter"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            if cls.kind not in SOURCE_KIND_OPTIONS:
                raise TypeError(
                    f"source kind {cls.kind!r} is not declared in"
                    " config.settings.SOURCE_KIND_OPTIONS, so no sources file could use it"
                )
            cls.option_keys = SOURCE_KIND_OPTIONS[cls.kind]
            _KINDS[cls.kind] = cls

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        pattern = options.get("title_filter")
        self.title_filter = re.compile(pattern, re.IGNORECASE) if pattern else None

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        validate_source_options(cls.kind, options)

    # -- hooks ------------------------------------------------------------------------------

    def parse_entry(self, page: Page) -> list[Link]:
        """Links found on a feed or listing page."""
        links = parse_feed(page) if page.is_feed else self.parse_listing(page)
        return [link for link in links if self.keep(link)]

    def parse_listing(self, page: Page) -> list[Link]:
        return document_links(page)

    def parse_item(self, page: Page) -> list[Link]:
        """Links found on an item page: the documents it attaches, its translations."""
        return document_links(page) + translation_links(page)

    def keep(self, link: Link) -> bool:
        if self.title_filter is None or link.role != "item":
            return True
        return bool(self.title_filter.search(f"{link.title or ''} {link.url}"))


# -- shared parsing helpers -----------------------------------------------------------------


def _text(tag: Tag | None) -> str:
    return " ".join(tag.get_text(" ", strip=True).split()) if tag else ""


def _struct_date(value: Any) -> datetime | None:
    if not value:
        return None
    year, month, day, hour, minute, second = value[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def parse_feed(page: Page) -> list[Link]:
    """RSS/Atom items and their enclosures. SPIP writes ``dc:date`` and no ``pubDate``."""
    feed = feedparser.parse(page.body)
    links: list[Link] = []
    for entry in feed.entries:
        url = absolute_url(page.url, entry.get("link", ""))
        published = _struct_date(entry.get("published_parsed") or entry.get("updated_parsed"))
        language = (
            entry.get("language") or entry.get("dc_language") or feed.feed.get("language") or None
        )
        language = language[:2].lower() if language else None
        if url:
            links.append(Link(url, "item", entry.get("title"), published, language))
        for enclosure in entry.get("enclosures", []):
            href = absolute_url(page.url, enclosure.get("href", ""))
            if href:
                links.append(
                    Link(href, "document", entry.get("title"), published, language, found_on=url)
                )
    return links


def _is_document_anchor(anchor: Tag, url: str) -> bool:
    declared = str(anchor.get("type", "")).lower()
    return looks_like_pdf(url) or declared == "application/pdf"


def _content_root(soup: BeautifulSoup) -> Tag:
    """The page's main content, without site navigation, header and footer."""
    for candidate in (
        soup.find("main"),
        soup.find(id="contenu"),
        soup.find(id="content"),
        soup.find("article"),
        soup.body,
    ):
        if isinstance(candidate, Tag):
            return candidate
    return soup


def document_links(page: Page) -> list[Link]:
    """Links to files (PDFs) anywhere in the page's main content."""
    soup = page.soup()
    root = _content_root(soup)
    links = []
    for anchor in root.find_all("a", href=True):
        url = absolute_url(page.url, str(anchor["href"]))
        if url and _is_document_anchor(anchor, url):
            links.append(Link(url, "document", _text(anchor) or None))
    return links


def translation_links(page: Page) -> list[Link]:
    """The same article in another language (SPIP ``hreflang`` links in the content)."""
    soup = page.soup()
    root = _content_root(soup)
    links = []
    for anchor in root.find_all("a", href=True, hreflang=True):
        url = absolute_url(page.url, str(anchor["href"]))
        if url and not _is_document_anchor(anchor, url) and "lang=" not in url:
            links.append(
                Link(
                    url, "item", _text(anchor) or None, language=str(anchor["hreflang"])[:2].lower()
                )
            )
    return links


def _nearby_date(anchor: Tag) -> datetime | None:
    """A listing's date sits next to the title link: in the same block, or just before it."""
    block = anchor.find_parent(["li", "div", "article", "tr"]) or anchor.parent
    if block is not None and (found := parse_date(_text(block))):
        return found
    previous = anchor.find_previous(string=True)
    for _ in range(6):
        if previous is None:
            break
        if found := parse_date(str(previous)):
            return found
        previous = previous.find_previous(string=True)
    return None


def _page_language(page: Page, soup: BeautifulSoup) -> str | None:
    html = soup.find("html")
    lang = html.get("lang") if isinstance(html, Tag) else None
    return str(lang)[:2].lower() if lang else None


# -- kinds ----------------------------------------------------------------------------------


class SpipSource(SourceKind):
    """SPIP sites of the French diplomatic network: RSS backend, rubriques, articles."""

    kind = "spip"
    _NOT_ARTICLE = re.compile(r"(^|/)(spip\.php|IMG/|local/|squelettes|plugins|prive/)|[?&]lang=")

    def parse_listing(self, page: Page) -> list[Link]:
        soup = page.soup()
        root = _content_root(soup)
        language = _page_language(page, soup)
        links: list[Link] = []
        for anchor in root.find_all("a", href=True):
            url = absolute_url(page.url, str(anchor["href"]))
            if url is None:
                continue
            path = url.split("://", 1)[-1].split("/", 1)[-1]
            if "debut_" in url:  # SPIP pagination: ?debut_articles=10
                links.append(Link(url, "page"))
            elif _is_document_anchor(anchor, url):
                links.append(Link(url, "document", _text(anchor) or None, language=language))
            elif self._is_article_path(path):
                links.append(
                    Link(url, "item", _text(anchor) or None, _nearby_date(anchor), language)
                )
        return links

    def _is_article_path(self, path: str) -> bool:
        # SPIP "URLs propres": articles are bare slugs; rubriques are wrapped in dashes.
        slug = path.split("?", 1)[0].split("#", 1)[0]
        if not slug or self._NOT_ARTICLE.search(path):
            return False
        return not (slug.startswith("-") and slug.endswith("-")) and "." not in slug


class UnodcSource(SourceKind):
    """UNODC listings: stories and releases under dated paths, files under /documents/."""

    kind = "unodc"
    _ITEM = re.compile(r"/(frontpage|press/releases|speeches|stories)/\d{4}/[^/]+/[^/]+\.html$")

    def parse_listing(self, page: Page) -> list[Link]:
        soup = page.soup()
        root = _content_root(soup)
        links: list[Link] = []
        for anchor in root.find_all("a", href=True):
            url = absolute_url(page.url, str(anchor["href"]))
            if url is None:
                continue
            path = url.split("?", 1)[0]
            lang = m[1] if (m := re.search(r"/unodc/([a-z]{2})/", path)) else None
            if _is_document_anchor(anchor, url):
                links.append(Link(url, "document", _text(anchor) or None, language=lang))
            elif self._ITEM.search(path):
                title = _text(anchor)
                if title.lower().strip("[] ") in ("read more", "more", "lire la suite"):
                    continue  # the teaser's "read more" repeats the title link
                links.append(Link(url, "item", title or None, _nearby_date(anchor), lang))
        return links


class RssSource(SourceKind):
    """Any RSS or Atom feed: its items and enclosures."""

    kind = "rss"


class HtmlSource(SourceKind):
    """Any HTML listing, described in sources.yaml by CSS selectors and/or URL regexes.

    ``item_selector`` / ``document_selector`` pick the elements (anchors, or blocks holding
    one) whose links are items / documents; ``item_pattern`` / ``document_pattern`` filter by
    URL. Without a document rule, links to PDFs are documents.
    """

    kind = "html"  # its options (the selectors and patterns above): SOURCE_KIND_OPTIONS

    def parse_listing(self, page: Page) -> list[Link]:
        soup = page.soup()
        root = _content_root(soup)
        item_re = re.compile(
            self.options.get("item_pattern", r"" if "item_selector" in self.options else r"$^")
        )
        doc_re = re.compile(self.options.get("document_pattern", r"\.pdf($|\?)"), re.IGNORECASE)
        links: list[Link] = []
        rules: tuple[tuple[LinkRole, str, re.Pattern[str] | None], ...] = (
            ("page", "pagination_selector", None),
            ("document", "document_selector", doc_re),
            ("item", "item_selector", item_re),
        )
        for role, selector, pattern in rules:
            if selector not in self.options:
                continue
            for anchor in _anchors(soup.select(self.options[selector])):
                url = absolute_url(page.url, str(anchor["href"]))
                if url and (pattern is None or pattern.search(url)):
                    links.append(
                        Link(
                            url,
                            role,
                            _text(anchor) or None,
                            _nearby_date(anchor) if role == "item" else None,
                        )
                    )
        for anchor in root.find_all("a", href=True):
            url = absolute_url(page.url, str(anchor["href"]))
            if url is None:
                continue
            if "document_selector" not in self.options and (
                doc_re.search(url) or _is_document_anchor(anchor, url)
            ):
                links.append(Link(url, "document", _text(anchor) or None))
            elif "item_selector" not in self.options and item_re.search(url):
                links.append(Link(url, "item", _text(anchor) or None, _nearby_date(anchor)))
        return links


def _anchors(elements: list[Tag]) -> list[Tag]:
    """The links of the selected elements: the elements themselves, or anchors inside them."""
    anchors: list[Tag] = []
    for element in elements:
        if element.name == "a" and element.get("href"):
            anchors.append(element)
        else:
            anchors.extend(a for a in element.find_all("a", href=True) if isinstance(a, Tag))
    return anchors


_UNIMPLEMENTED = sorted(set(SOURCE_KIND_OPTIONS) - set(_KINDS))
if _UNIMPLEMENTED:  # the sources file would accept a kind that nothing can poll
    raise ImportError(
        f"source kind(s) {_UNIMPLEMENTED} of config.settings.SOURCE_KIND_OPTIONS have no class"
    )
