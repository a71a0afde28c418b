"""Real, multi-page, text-extractable PDFs built with reportlab.

Output is deterministic (reportlab's ``invariant`` mode), so a document's bytes and hash are the
same on every run. Builders are memoised per process: a test session builds each PDF once.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from html import escape
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

from . import texts

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@functools.cache
def _fonts() -> tuple[str, str, frozenset[int] | None]:
    """(regular, bold, supported code points or None = cp1252 only)."""
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        pdfmetrics.registerFont(TTFont("ReplicaSans", str(regular)))
        pdfmetrics.registerFont(TTFont("ReplicaSans-Bold", str(bold)))
        face = pdfmetrics.getFont("ReplicaSans").face  # type: ignore[attr-defined]
        return "ReplicaSans", "ReplicaSans-Bold", frozenset(face.charToGlyph)
    return "Helvetica", "Helvetica-Bold", None  # WinAnsi: é è à ç œ ’ – … are all fine


def _supported(text: str) -> str:
    """Replace characters the font cannot draw (ASCII fallback, else dropped)."""
    codepoints = _fonts()[2]

    def ok(ch: str) -> bool:
        if codepoints is not None:
            return ord(ch) in codepoints or ch in "\n\t"
        try:
            ch.encode("cp1252")
            return True
        except UnicodeEncodeError:
            return False

    out = []
    for ch in text:
        if ok(ch):
            out.append(ch)
        else:
            ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(ascii_)
    return "".join(out)


@functools.cache
def _styles() -> dict[str, ParagraphStyle]:
    regular, bold, _ = _fonts()
    base = getSampleStyleSheet()
    body = ParagraphStyle(
        "ReplicaBody",
        parent=base["BodyText"],
        fontName=regular,
        fontSize=10.5,
        leading=14,
        spaceAfter=6,
    )
    return {
        "title": ParagraphStyle("ReplicaTitle", parent=base["Title"], fontName=bold),
        "h1": ParagraphStyle("ReplicaH1", parent=base["Heading1"], fontName=bold),
        "h2": ParagraphStyle("ReplicaH2", parent=base["Heading2"], fontName=bold),
        "h3": ParagraphStyle("ReplicaH3", parent=base["Heading3"], fontName=bold),
        "body": body,
        "bullet": ParagraphStyle("ReplicaBullet", parent=body, leftIndent=14, bulletIndent=2),
    }


def _flowables(title: str, paras: list[str], extra_pages: int) -> list:
    styles = _styles()
    story: list = [Paragraph(escape(_supported(title)), styles["title"]), Spacer(1, 12)]
    for para in paras:
        heading = re.match(r"(#{1,6})\s+(.*)", para)
        if heading:
            level = min(len(heading.group(1)), 3)
            story.append(Paragraph(escape(_supported(heading.group(2))), styles[f"h{level}"]))
        elif para.startswith("- "):
            story.append(Paragraph(escape(_supported(para[2:])), styles["bullet"], bulletText="•"))
        else:
            story.append(Paragraph(escape(_supported(para)), styles["body"]))
    for i in range(extra_pages):
        story += [
            PageBreak(),
            Paragraph(f"Notes ({i + 1})", styles["h2"]),
            Paragraph(escape(_supported(title)), styles["body"]),
        ]
    return story


def build_pdf(
    path: Path, title: str, paragraphs: list[str] | str, *, lang: str = "en", pages_min: int = 0
) -> Path:
    """Write a text PDF: ``title`` as heading, then the paragraphs (a string is split on blank
    lines). A paragraph starting with ``#``/``##``/``###`` is a heading, ``- `` a bullet.
    Pads with "Notes" pages up to ``pages_min`` pages. Returns ``path``."""
    paras = texts.paragraphs(paragraphs) if isinstance(paragraphs, str) else paragraphs
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_pdf(title, tuple(paras), lang, pages_min))
    return path


@functools.cache
def render_pdf(title: str, paras: tuple[str, ...], lang: str = "en", pages_min: int = 0) -> bytes:
    """The bytes ``build_pdf`` writes (memoised: identical input, identical bytes)."""
    extra = 0
    while True:
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            title=title,
            lang=lang,
            invariant=1,
            author="TIP Watch replica",
            creator="TIP Watch replica",
        )
        doc.build(_flowables(title, list(paras), extra))
        if doc.page >= pages_min:
            return buffer.getvalue()
        extra += pages_min - doc.page


def pdf_text(source: Path | bytes) -> str:
    """All text of a PDF (pypdfium2), whitespace collapsed to single spaces."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(source if isinstance(source, bytes) else str(source))
    try:
        parts = []
        for page in pdf:
            textpage = page.get_textpage()
            parts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return " ".join(" ".join(parts).split())
    finally:
        pdf.close()


def pdf_page_count(source: Path | bytes) -> int:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(source if isinstance(source, bytes) else str(source))
    try:
        return len(pdf)
    finally:
        pdf.close()


# --- Named documents --------------------------------------------------------------------------

N23_EN_TITLE = (
    "Fighting human trafficking in Southeastern Europe – Quarterly newsletter n°23 – March 2025"
)
N23_FR_TITLE = (
    "Lutte contre la traite des êtres humains en Europe du Sud-Est – Lettre"
    " d'information n°23 – mars 2025"
)
N11_EN_TITLE = (
    "Fight against human trafficking in South-East Europe – Quarterly newsletter"
    " n°11 – December 2018"
)
N11_FR_TITLE = (
    "Lutte contre la traite des êtres humains en Europe du Sud-Est – Lettre"
    " trimestrielle d'information n°11 – décembre 2018"
)
GLOTIP_2024_TITLE = "Global Report on Trafficking in Persons 2024"


def build_n23_en(path: Path) -> Path:
    """n°23 (March 2025), English: the real seed text."""
    return build_pdf(path, N23_EN_TITLE, texts.n23_en_paragraphs(), lang="en")


def build_n23_fr(path: Path) -> Path:
    """n°23 (mars 2025), French: SYNTHETIC text (texts.N23_FR)."""
    return build_pdf(path, N23_FR_TITLE, texts.paragraphs(texts.N23_FR), lang="fr", pages_min=3)


def build_n11_en(path: Path) -> Path:
    """n°11 (late 2018), English: the real seed text."""
    return build_pdf(path, N11_EN_TITLE, texts.n11_en_paragraphs(), lang="en")


def build_n11_fr(path: Path) -> Path:
    """n°11, French: SYNTHETIC text (texts.N11_FR)."""
    return build_pdf(path, N11_FR_TITLE, texts.paragraphs(texts.N11_FR), lang="fr", pages_min=2)


def build_glotip_2024(path: Path) -> Path:
    """A SYNTHETIC stand-in for UNODC's GLOTIP 2024 report (several pages)."""
    return build_pdf(path, GLOTIP_2024_TITLE, texts.GLOTIP_2024, pages_min=6)


def build_stub(path: Path, title: str, paras: list[str], lang: str, pages_min: int = 2) -> Path:
    """A short SYNTHETIC document (stand-in issues, chapters, OSCE statements…)."""
    return build_pdf(path, title, paras, lang=lang, pages_min=pages_min)
