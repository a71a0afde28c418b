"""Subscriptions meet documents: who gets an alert for what, between stored rows and the matcher.

Used by the pipeline (a new document against every subscription: :func:`create_alerts`) and by
the CLI (one subscription against the whole archive: ``--backfill`` and ``subscriptions
preview``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.match import DocumentMeta, IndexedText, Matcher, SubscriptionSpec, matcher_for
from worker.search import iter_matches
from worker.storage.models import Alert, AlertDocument, Document, Subscription
from worker.storage.repo import insert_missing
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
    tags = frozenset(t.tag for t in document.tags)
    return DocumentMeta(document.source, document.language, document.kind, tags)


def match_document(
    subscriptions: Sequence[Subscription], document: Document, pages: list[str]
) -> list[tuple[int, Explanation]]:
    """(subscription id, explanation) for every subscription the document matches."""
    index, title = _indexes(document, pages)
    found = matcher(subscriptions).match(index, _meta(document), title)
    return [(int(key), explanation) for key, explanation in found]


def create_alerts(session: Session, document: Document, pages: list[str]) -> int:
    """Alert every matching subscription about the document's publication: one alert per
    (subscription, publication), created by its first matching document; later ones are
    recorded on it. Returns the number of new alerts.

    Nobody is alerted about a publication of a source's baseline (its first poll), nor about
    one first seen before the subscription was confirmed (made, unless an email address had
    to confirm it). Every active subscription goes through one cached :class:`Matcher`, whose
    Aho-Corasick prefilter fully evaluates only those whose required terms occur in the
    document."""
    publication = document.publication
    if publication is None or publication.baseline:
        return 0
    subscriptions = session.scalars(
        select(Subscription).where(
            Subscription.active.is_(True),
            Subscription.confirmed_at <= publication.first_seen_at,  # unconfirmed: NULL
        )
    ).all()
    if not subscriptions:
        return 0
    matches = match_document(subscriptions, document, pages)
    return sum(
        record_match(session, subscription_id, document, explanation)
        for subscription_id, explanation in matches
    )


def record_match(
    session: Session, subscription_id: int, document: Document, explanation: Explanation
) -> bool:
    """Record that the document matched the subscription: on the (subscription, publication)
    alert, which is created if this is the publication's first match (True). Race-free: two
    files of one issue read at once by two workers make one alert."""
    assert document.publication_id is not None
    created = insert_missing(
        session,
        Alert,
        {
            "subscription_id": subscription_id,
            "publication_id": document.publication_id,
            "document_id": document.id,
            "explanation": explanation,
            "status": "pending",
            "attempts": 0,
            "deliveries": {},
            "created_at": datetime.now(UTC),
        },
        conflict=("subscription_id", "publication_id"),
    )
    alert_id = session.scalars(
        select(Alert.id).where(
            Alert.subscription_id == subscription_id,
            Alert.publication_id == document.publication_id,
        )
    ).one()
    insert_missing(
        session,
        AlertDocument,
        {
            "alert_id": alert_id,
            "document_id": document.id,
            "explanation": explanation,
            "added_at": datetime.now(UTC),
        },
        conflict=("alert_id", "document_id"),
    )
    return created


def archive_matches(
    session: Session, subscription: Subscription | SubscriptionSpec
) -> Iterator[tuple[Document, Explanation]]:
    """Every archived document the subscription (stored, or only a spec to preview) matches,
    newest first, whatever its date: archive search's answer to its query, filters and
    thesaurus option (the index narrows, the matcher decides, as for a new document)."""
    spec = spec_of(subscription) if isinstance(subscription, Subscription) else subscription
    yield from iter_matches(
        session, spec.query, thesaurus=spec.thesaurus, query_filters=dict(spec.filters)
    )


def backfill(session: Session, subscription: Subscription) -> int:
    """Alert on what already matches in the archive, baseline included: one alert per
    publication, never twice. Returns the number of new alerts."""
    matches = [
        (document, explanation)
        for document, explanation in archive_matches(session, subscription)
        if document.publication_id is not None
    ]
    return sum(
        record_match(session, subscription.id, document, explanation)
        for document, explanation in reversed(matches)  # oldest first: it names the alert
    )
