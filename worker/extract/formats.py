"""How bytes become text: per page for PDFs, main text for HTML, and the language.

PDFium is not thread-safe, so PDF extraction must run in processes (Celery prefork, or the
process pool used by the in-process poll), never in threads.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

PDF_MAGIC = b"%PDF-"


class ExtractError(Exception):
    """The bytes could not be read as the document they claim to be."""


@dataclass
class Extracted:
    pages: list[str] = field(default_factory=list)
    title: str | None = None
    language: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(self.pages)

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def sniff_kind(head: bytes, media_type: str, url: str) -> str:
    """'pdf' or 'html' from the bytes themselves; a URL ending in .pdf proves nothing."""
    if head.lstrip()[:5] == PDF_MAGIC or head.startswith(PDF_MAGIC):
        return "pdf"
    probe = head[:1024].lstrip().lower()
    if (
        probe.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--"))
        or b"<html" in probe
        or media_type in ("text/html", "application/xhtml+xml")
    ):
        return "html"
    return "other"


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text.replace("\ufffe", "").replace("\x02", "")
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def _pdf_error(reason: str) -> str:
    """PDFium's terse reasons, said plainly; the original stays archived either way."""
    lowered = reason.lower()
    if "password" in lowered:
        return f"unreadable PDF: encrypted, a password is required to read it ({reason})"
    if "format" in lowered:
        return f"unreadable PDF: corrupt or truncated ({reason})"
    return f"unreadable PDF: {reason}"


def extract_pdf(path: Path) -> Extracted:
    """Text of every page; a corrupt or encrypted file gives ``error`` instead of raising."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        return Extracted(error=_pdf_error(str(exc)))
    try:
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            pages.append(_normalise(textpage.get_text_bounded()))
            textpage.close()
            page.close()
        title = (pdf.get_metadata_dict().get("Title") or "").strip() or None
    except pdfium.PdfiumError as exc:
        return Extracted(error=f"unreadable PDF: {exc}")
    finally:
        pdf.close()
    result = Extracted(pages=pages, title=title)
    if pages and not any(pages):
        result.error = "no text layer (scanned PDF? OCR is not done)"
    result.language = detect_language(result.text)
    return result


# -- charsets ---------------------------------------------------------------------------------
#
# One decoding for every HTML page, whether discovery reads its links or extraction its text.
# A declaration is trusted when it names a real web encoding and the bytes do not contradict
# it: the HTTP header's, else the page's <meta>, else its XML declaration (a byte order mark
# beats them all, as in browsers). Without one, UTF-8 when the bytes are UTF-8 (a few bad bytes
# become U+FFFD, the rest stays right), else charset detection, which prefers windows-1252
# among equally likely answers as browsers in western locales do.

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_META_CHARSET = re.compile(rb"<meta\b[^>]*?\bcharset\s*=\s*[\"']?\s*([-\w.:]+)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"\A\s*<\?xml\b[^>]*?\bencoding\s*=\s*[\"']([-\w.:]+)[\"']")
_PRESCAN_BYTES = 4096
# The encodings of the web (WHATWG Encoding Standard), by Python codec name. Anything else a
# page declares (utf-7, rot13, base64, "undefined") is ignored, as browsers ignore it.
_WEB_ENCODINGS = frozenset(
    {
        "utf-8",
        "utf-16-le",
        "utf-16-be",
        "cp866",
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)),
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "mac-cyrillic",
        "cp874",
        *(f"cp{n}" for n in range(1250, 1259)),
        "gb18030",
        "big5hkscs",
        "euc_jp",
        "iso2022_jp",
        "cp932",
        "cp949",
    }
)
# Labels Python does not know, and encodings browsers read as another (mostly a superset): a
# page declared ISO-8859-1 (or ASCII) is decoded as windows-1252, so its ’ – œ € are letters
# and punctuation, not C1 control characters; a bare "UTF-16" is little-endian.
_LABELS = {
    "unicode-1-1-utf-8": "utf-8",
    "x-cp1252": "cp1252",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859-8",
    "mac": "mac-roman",
    "x-mac-roman": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-gbk": "gb18030",
    "windows-31j": "cp932",
    "x-sjis": "cp932",
}
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "utf-16": "utf-16-le",
}


def web_encoding(label: str | bytes | None) -> str | None:
    """The Python codec for a declared charset label, or None when it is no web encoding."""
    if isinstance(label, bytes):
        label = label.decode("ascii", "replace")
    key = (label or "").strip().strip("\"'").strip().lower()[:40]
    if not key:
        return None
    name = _LABELS.get(key)
    if name is None:
        try:
            name = codecs.lookup(key).name
        except LookupError:
            return None
    name = _SUPERSETS.get(name, name)
    return name if name in _WEB_ENCODINGS else None


def _mostly_utf8(body: bytes) -> str | None:
    """The body as UTF-8 when most of its non-ASCII characters decode as UTF-8: invalid
    sequences become U+FFFD one by one. None when it is rather another encoding."""
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - body.count("\ufffd".encode())
    if bad == 0:
        return text
    good = len(text) - len(text.encode("ascii", "ignore")) - text.count("\ufffd")
    return text if good >= bad else None


def _declared(body: bytes, codec: str) -> str | None:
    """The body in its declared encoding, or None when the bytes say the declaration is wrong
    (a page "in UTF-8" that is not, one "in windows-1252" that is valid non-ASCII UTF-8)."""
    if codec == "utf-8":
        return _mostly_utf8(body)
    if codec.startswith("utf-16"):
        if b"\x00" not in body[:_PRESCAN_BYTES]:
            return None  # ASCII markup: not UTF-16 whatever the header says
        return body.decode(codec, errors="replace")
    try:
        as_utf8 = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode(codec, errors="replace")
    return None if not as_utf8.isascii() else body.decode(codec, errors="replace")


def _detected(body: bytes) -> str:
    """The likeliest web encoding of undeclared, non-UTF-8 bytes."""
    from charset_normalizer import from_bytes

    matches = from_bytes(body, cp_isolation=sorted(_WEB_ENCODINGS - {"utf-8"}))
    best = matches.best()
    if best is None:
        return "cp1252"
    # charset_normalizer may rank windows-1250 first for French ("ętres" for "êtres"): as
    # clean a decoding, and a language fit that short pages make noisy. Windows-1252 wins such
    # near-ties; where it decodes to a mess (Polish, Czech) it is no candidate at all.
    for match in matches:
        as_good = match.chaos <= best.chaos + 0.01 and match.coherence >= best.coherence - 0.1
        if as_good and "cp1252" in {web_encoding(c) for c in match.could_be_from_charset}:
            return "cp1252"
    found = (web_encoding(m.encoding) for m in matches)
    return next((c for c in found if c), "cp1252")


def decode_html(body: bytes, charset: str | None = None) -> str:
    """An HTML page's text: ``charset`` is the HTTP header's; see the rules above."""
    for bom, unicode in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(unicode, errors="replace")
    head = body[:_PRESCAN_BYTES]
    meta = _META_CHARSET.search(head)
    xml = _XML_ENCODING.search(head)
    header = web_encoding(charset)
    in_page = [web_encoding(found[1]) for found in (meta, xml) if found]
    # A declaration readable in the page's own ASCII markup cannot mean UTF-16 (WHATWG).
    in_page = ["utf-8" if c and c.startswith("utf-16") else c for c in in_page]
    for codec in (header, *in_page):
        if codec and (text := _declared(body, codec)) is not None:
            return text
    utf8 = _mostly_utf8(body)
    return utf8 if utf8 is not None else body.decode(_detected(body), errors="replace")


def extract_html(body: bytes, url: str, charset: str | None = None) -> Extracted:
    """Main text of an article page (boilerplate removed) and its title."""
    import trafilatura
    from bs4 import BeautifulSoup

    html = decode_html(body, charset)
    soup = BeautifulSoup(html, "lxml")
    h1 = soup.find("h1")
    title = h1.get_text(" ", strip=True) if h1 else None
    if not title and soup.title:
        title = soup.title.get_text(" ", strip=True)
    text = (
        trafilatura.extract(
            html, url=url, include_comments=False, include_tables=True, favor_recall=True
        )
        or ""
    )
    if not text:
        for tag in soup(["script", "style", "nav", "header", "footer"]):
            tag.decompose()
        text = soup.get_text("\n", strip=True)
    result = Extracted(pages=[_normalise(text)], title=" ".join(title.split()) if title else None)
    html_tag = soup.find("html")
    declared = html_tag.get("lang") if html_tag else None
    result.language = detect_language(result.text) or (str(declared)[:2] if declared else None)
    return result


def detect_language(text: str) -> str | None:
    """'en' or 'fr' when the text says so clearly enough; None for too little text."""
    sample = text[:20000]
    if len(sample.split()) < 5:
        return None
    from simplemma import langdetect

    scores = langdetect(sample, lang=("en", "fr"))
    best, score = scores[0]
    return best if best in ("en", "fr") and score >= 0.3 else None
