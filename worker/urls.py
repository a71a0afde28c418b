"""URL identity: what makes two links the same document, and which hosts a source may reach."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# SPIP appends "?<id_document>/<40-hex access key>" (or "?<unix mtime>") to document links;
# the file served is the same whatever the query says.
_SPIP_DOC_QUERY = re.compile(r"^\d+(/[0-9a-f]{40})?$", re.IGNORECASE)
_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|ref|fbclid|gclid|mc_[a-z]+|xtor)$", re.IGNORECASE)
# SPIP pagination and language switches change the page, so they are kept, except a first page
# asked for by name (?debut_articles=0 is the bare listing).
_DEFAULT_PAGE = re.compile(r"^debut_\w+$", re.IGNORECASE)


def canonical_url(url: str) -> str:
    """The identity of a URL: lower-case scheme and host, no fragment, no tracking or SPIP keys.

    The full URL is still what gets downloaded; this is only what dedup compares.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    if (scheme, netloc.rsplit(":", 1)[-1]) in (("http", "80"), ("https", "443")):
        netloc = netloc.rsplit(":", 1)[0]
    path = parts.path or "/"
    query = parts.query
    if _SPIP_DOC_QUERY.match(query):
        query = ""
    elif query:
        kept = [
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k) and not (_DEFAULT_PAGE.match(k) and v in ("", "0"))
        ]
        query = urlencode(sorted(kept))
    return urlunsplit((scheme, netloc, path, query, ""))


def absolute_url(base: str, href: str) -> str | None:
    """Resolve a link against its page; None for links that are not web pages or files."""
    href = href.strip()
    if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
        return None
    url = urljoin(base, href)
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    return url.split("#", 1)[0]


def netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


def is_allowed(url: str, allowed_netlocs: frozenset[str]) -> bool:
    """True only for http(s) URLs on one of the source's own hosts (no SSRF through links)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.netloc.lower() in allowed_netlocs


def looks_like_pdf(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".pdf")
