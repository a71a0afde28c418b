"""Stage 4: text out of archived bytes — per page for PDFs, main text for HTML — and language.

PDFium is not thread-safe, so PDF extraction must run in processes (Celery prefork, or the
process pool used by the in-process poll), never in threads.
"""

from __future__ import annotations

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


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode with the declared charset, falling back to the page's own meta, then cp1252."""
    from bs4.dammit import UnicodeDammit

    encodings = [charset] if charset else []
    dammit = UnicodeDammit(body, known_definite_encodings=encodings, is_html=True)
    if dammit.unicode_markup is not None:
        return dammit.unicode_markup
    return body.decode("cp1252", errors="replace")


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
