"""Subscriptions meet documents: who gets an alert for what, between stored rows and the matcher.

Used by the pipeline (a new document against every subscription: :func:`create_alerts`) and by
the CLI (one subscription against the whole archive: ``--backfill`` and ``subscriptions
preview``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from worker.match import DocumentMeta, IndexedText, Matcher, SubscriptionSpec, matcher_for
from worker.storage.models import Alert, Document, Subscription
from worker.thesaurus import load_thesaurus

Explanation = dict[str, Any]


def spec_of(subscription: Subscription) -> SubscriptionSpec:
    return SubscriptionSpec(
        subscription.id,
        subscription.query,
        dict(subscription.filters or {}),
        bool(subscription.thesaurus),
    )


def matcher(subscriptions: Sequence[Subscription]) -> Matcher:
    thesaurus = load_thesaurus()
    return matcher_for([spec_of(s) for s in subscriptions], thesaurus, thesaurus.version)


def _indexes(document: Document, pages: list[str]) -> tuple[IndexedText, IndexedText]:
    return (
        IndexedText.build(pages, document.language),
        IndexedText.build([document.title or ""], document.language),
    )


def _meta(document: Document) -> DocumentMeta:
    return DocumentMeta(document.source, document.language, document.kind)


def match_document(
    subscriptions: Sequence[Subscription], document: Document, pages: list[str]
) -> list[tuple[int, Explanation]]:
    """(subscription id, explanation) for every subscription the document matches."""
    index, title = _indexes(document, pages)
    found = matcher(subscriptions).match(index, _meta(document), title)
    return [(int(key), explanation) for key, explanation in found]


def create_alerts(session: Session, document: Document, pages: list[str]) -> int:
    """Queue one alert per matching subscription created before the document was archived.

    Every active subscription goes through one cached :class:`Matcher`, whose Aho-Corasick
    prefilter fully evaluates only those whose required terms occur in the document."""
    subscriptions = session.scalars(
        select(Subscription).where(
            Subscription.active.is_(True), Subscription.created_at <= document.archived_at
        )
    ).all()
    if not subscriptions:
        return 0
    matches = match_document(subscriptions, document, pages)
    created = 0
    for subscription_id, explanation in matches:
        exists = session.scalar(
            select(Alert.id).where(
                Alert.subscription_id == subscription_id, Alert.document_id == document.id
            )
        )
        if exists is None:
            session.add(
                Alert(
                    subscription_id=subscription_id,
                    document_id=document.id,
                    explanation=explanation,
                )
            )
            created += 1
    return created


def archive_matches(
    session: Session, subscription: Subscription
) -> Iterator[tuple[Document, Explanation]]:
    """Every archived document the subscription matches (newest first), whatever its date."""
    one = Matcher.build([spec_of(subscription)], load_thesaurus())
    documents = session.scalars(
        select(Document)
        .options(selectinload(Document.pages))
        .order_by(Document.archived_at.desc(), Document.id.desc())
        .execution_options(yield_per=50)
    )
    for document in documents:
        pages = [p.text for p in document.pages] or [document.text]
        index, title = _indexes(document, pages)
        for _key, explanation in one.match(index, _meta(document), title):
            yield document, explanation


def backfill(session: Session, subscription: Subscription) -> int:
    """Queue alerts for what already matches in the archive; never twice for a document."""
    alerted = set(
        session.scalars(select(Alert.document_id).where(Alert.subscription_id == subscription.id))
    )
    created = 0
    for document, explanation in list(archive_matches(session, subscription)):
        if document.id in alerted:
            continue
        session.add(
            Alert(subscription_id=subscription.id, document_id=document.id, explanation=explanation)
        )
        created += 1
    return created
