"""One document in full (metadata, where it was found, versions, its publication, alerts,
text): the same shape for ``tipwatch archive show --json`` and ``GET /api/documents/{id}``;
one publication for ``GET /api/publications/{id}``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.storage.models import Document, Publication
from worker.storage.repo import alerts_for_document, document_summary


def versions(session: Session, document: Document) -> list[Document]:
    """Every version of the document's URL, oldest first, by following ``previous_id``."""
    chain = [document]
    seen = {document.id}
    current = document
    while current.previous_id is not None and current.previous_id not in seen:
        older = session.get(Document, current.previous_id)
        if older is None:
            break
        chain.insert(0, older)
        seen.add(older.id)
        current = older
    current = document
    while True:
        newer = session.scalar(
            select(Document).where(Document.previous_id == current.id).order_by(Document.id)
        )
        if newer is None or newer.id in seen:
            break
        chain.append(newer)
        seen.add(newer.id)
        current = newer
    return chain


def same_issue(session: Session, document: Document) -> list[Document]:
    """The other documents of the same issue: translations (FR/EN), the PDF and its page."""
    if document.series is None or document.issue_number is None:
        return []
    return list(
        session.scalars(
            select(Document)
            .where(
                Document.series == document.series,
                Document.issue_number == document.issue_number,
                Document.id != document.id,
            )
            .order_by(Document.kind, Document.language, Document.id)
        )
    )


def _brief(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind,
        "language": d.language,
        "title": d.title,
        "version": d.version,
        "archived_at": d.archived_at.isoformat() if d.archived_at else None,
        "content_sha256": d.content_sha256,
    }


def publication_detail(publication: Publication, but: int | None = None) -> dict[str, Any]:
    """A publication and its documents (all, or all but the one shown), JSON-ready."""
    return {
        "id": publication.id,
        "title": publication.title,
        "source": publication.source,
        "series": publication.series,
        "issue_number": publication.issue_number,
        "published_at": publication.published_at.isoformat() if publication.published_at else None,
        "first_seen_at": publication.first_seen_at.isoformat(),
        "baseline": publication.baseline,
        "documents": [_brief(d) for d in publication.documents if d.id != but],
    }


def document_detail(
    session: Session, document: Document, text: bool = True, explanations: bool = False
) -> dict[str, Any]:
    """Everything known about one document, JSON-ready; alerts' full explanations (terms,
    pages, snippets) on request, since they can be long."""
    row = document_summary(document)
    row["keywords"] = list(document.keywords or [])
    row["tags"] = [
        {"tag": t.tag, "count": t.count}
        for t in sorted(document.tags, key=lambda t: (-t.count, t.tag))
    ]
    row["fetched_at"] = document.fetched_at.isoformat() if document.fetched_at else None
    row["http_headers"] = dict(document.http_headers or {})
    row["found_on"] = sorted({link.found_on or "" for link in document.links} - {""})
    row["urls"] = sorted({link.url for link in document.links})
    row["versions"] = [_brief(d) for d in versions(session, document)]
    row["same_issue"] = [_brief(d) for d in same_issue(session, document)]
    publication = document.publication
    row["publication"] = publication_detail(publication, but=document.id) if publication else None
    row["alerts"] = []
    for match in alerts_for_document(session, document.id):
        entry: dict[str, Any] = {
            "subscription": match.alert.subscription.name,
            "status": match.alert.status,
            "terms": [t["term"] for t in match.explanation.get("terms", [])],
        }
        if explanations:
            entry["explanation"] = match.explanation
        row["alerts"].append(entry)
    if text:
        row["text_pages"] = [p.text for p in document.pages]
    return row
