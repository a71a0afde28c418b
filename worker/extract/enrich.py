"""What a document's text says about it: title, language, issue number, date, series,
keyphrases and concept tags, filled on the row once its text is known."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from worker.dates import issue_number, parse_date
from worker.extract.formats import Extracted
from worker.keywords import extract_keywords, furniture_lines
from worker.newsletter import series_of
from worker.storage.models import Document, DocumentPage, DocumentTag
from worker.taxonomy import tag_document

FURNITURE_SAMPLE = (
    40  # the source's latest documents of the same kind that furniture is learned from
)
FURNITURE_CHARS = 20_000  # of each: menus, headers and mastheads sit near the start


def choose_title(kind: str, link_title: str | None, extracted: Extracted) -> str | None:
    """An HTML page's own title wins; a PDF's metadata title only when it is not a file name
    (``Microsoft Word - lettre.docx``) — the linking page's title is better then."""
    if kind == "html":
        return extracted.title or link_title
    meta = extracted.title
    if meta and len(meta) > 8 and not meta.lower().endswith((".doc", ".docx", ".pdf", ".indd")):
        return meta
    return link_title or meta


def link_issue_number(title: str | None, url: str) -> int | None:
    """The issue number the link says: its title's, else its file name's."""
    return issue_number(title) or issue_number(url.rsplit("/", 1)[-1])


def same_text(previous_text_sha256: str | None, extracted: Extracted) -> bool:
    """True when new bytes say nothing new: the previous version's text, read without error.

    Identity of a version is its text, not its bytes: an article page whose furniture changes,
    or a PDF re-rendered on every request (a timestamp inside), must not become a new version
    and a new alert at every poll. A text-less new version alerts nobody either."""
    return (
        previous_text_sha256 is not None
        and extracted.error is None
        and previous_text_sha256 == extracted.text_sha256
    )


def source_furniture(session: Session, document: Document) -> frozenset[str]:
    """The lines the document's source repeats across its latest documents of the same kind
    (this one included): page furniture, kept out of keyphrases."""
    texts = session.scalars(
        select(func.substr(Document.text, 1, FURNITURE_CHARS))
        .where(
            Document.source == document.source,
            Document.kind == document.kind,
            Document.extract_status == "done",
            Document.id != document.id,
            Document.text != "",
        )
        .order_by(Document.id.desc())
        .limit(FURNITURE_SAMPLE)
    ).all()
    if not texts:
        return frozenset()
    return furniture_lines([document.text[:FURNITURE_CHARS], *texts])


def describe(document: Document, pages: Sequence[str], furniture: Collection[str] = ()) -> None:
    """Keyphrases and concept tags from the document's pages: at extraction and reindex."""
    document.keywords = extract_keywords(pages, document.language, furniture=furniture)
    tags = {t.id: t.count for t in tag_document(pages, document.language, document.title or "")}
    kept = []
    for row in document.tags:
        if row.tag in tags:
            row.count = tags.pop(row.tag)
            kept.append(row)
    document.tags = kept + [DocumentTag(tag=tag, count=count) for tag, count in tags.items()]


def apply_extraction(
    document: Document,
    extracted: Extracted,
    settings: Settings,
    furniture: Collection[str] | None = None,
) -> None:
    """Fill the fields that come from the text. The values the poll took from the linking
    page (title, date, language) are on the row already and serve as fallbacks."""
    first_page = extracted.pages[0][:600] if extracted.pages else ""
    document.title = choose_title(document.kind, document.title, extracted)
    document.language = extracted.language or document.language
    document.issue_number = link_issue_number(document.title, document.url) or (
        issue_number(first_page) if document.kind == "pdf" else None
    )
    document.published_at = document.published_at or parse_date(first_page)
    document.series = series_of(
        settings, document.issue_number, f"{document.title or ''} {document.url}"
    )
    document.text = extracted.text
    document.text_sha256 = extracted.text_sha256
    document.page_count = len(extracted.pages) if document.kind == "pdf" else 0
    document.extract_error = extracted.error
    document.pages = [
        DocumentPage(page_number=i, text=t) for i, t in enumerate(extracted.pages, start=1)
    ]
    session = Session.object_session(document)
    if furniture is None:
        furniture = source_furniture(session, document) if session is not None else frozenset()
    describe(document, extracted.pages, furniture)
    document.extract_status = "done"
