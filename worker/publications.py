"""Publications: what a person thinks of as one thing, and gets one alert for.

A newsletter issue is one publication in every language and form (its article pages and their
PDFs): its documents share a series and an issue number. Any other page is a publication of
its own, with the files that arrived with it (linked from it when it was new or changed). A
file found on a page that did not change (a new report added to an old hub page) starts its
own publication: it is news.

A document is placed when it is archived, from what its link said, and placed again once its
text is read (a PDF may state its issue number only inside): the pending files of an issue
are thus already in its publication, and its alert waits for them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from config.settings import Settings
from worker.dates import as_utc
from worker.newsletter import all_series
from worker.storage.models import Alert, Document, Publication, SourceState
from worker.storage.repo import insert_missing


def issue_key(series: str, number: int) -> str:
    return f"issue:{series}:{number}"


def _issue_title(settings: Settings, series: str, number: int) -> str:
    config = next((s for s in all_series(settings) if s.name == series), None)
    return f"{(config.title if config and config.title else series)} n°{number}"


def in_baseline(session: Session, source: str, seen_at: Any, settings: Settings) -> bool:
    """True when something first seen at ``seen_at`` belongs to the source's baseline: found
    before (or by) the end of its first successful poll."""
    if not settings.quiet_first_poll:
        return False
    baseline_at = session.scalar(select(SourceState.baseline_at).where(SourceState.name == source))
    return baseline_at is None or as_utc(seen_at) <= as_utc(baseline_at)


def assign_publication(session: Session, document: Document, settings: Settings) -> Publication:
    """Place a (flushed) document in its publication (by its series and issue number, else by
    the page it came with), creating it when it is the first, and leave the provisional one it
    may have had if that is now empty."""
    previous_id = document.publication_id
    publication = _target(session, document, settings)
    document.publication_id = publication.id
    if publication.published_at is None or (
        document.published_at is not None
        and as_utc(document.published_at) < as_utc(publication.published_at)
    ):
        publication.published_at = document.published_at or publication.published_at
    if publication.key == f"document:{document.id}":  # its starter: the title it now has
        publication.title = document.title
    session.flush()
    if previous_id is not None and previous_id != publication.id:
        drop_if_empty(session, previous_id)
    return publication


def _target(session: Session, document: Document, settings: Settings) -> Publication:
    if document.series is not None and document.issue_number is not None:
        key = issue_key(document.series, document.issue_number)
        values = {
            "series": document.series,
            "issue_number": document.issue_number,
            "title": _issue_title(settings, document.series, document.issue_number),
        }
    else:
        parent = session.get(Document, document.parent_id) if document.parent_id else None
        if parent is not None and parent.publication is not None:
            return parent.publication
        key, values = f"document:{document.id}", {"title": document.title}
    publication = session.scalar(select(Publication).where(Publication.key == key))
    if publication is not None:
        return publication
    seen = document.archived_at
    insert_missing(  # a concurrent job may create the same issue: no conflict error
        session,
        Publication,
        {
            "key": key,
            "source": document.source,
            "published_at": document.published_at,
            "first_seen_at": seen,
            "baseline": in_baseline(session, document.source, seen, settings),
            **values,
        },
        conflict=("key",),
    )
    return session.scalars(select(Publication).where(Publication.key == key)).one()


def drop_if_empty(session: Session, publication_id: int) -> None:
    """Remove a publication left with no document and no alert (a provisional placement)."""
    used = session.scalar(
        select(
            exists().where(Document.publication_id == publication_id)
            | exists().where(Alert.publication_id == publication_id)
        )
    )
    if not used:
        session.execute(delete(Publication).where(Publication.id == publication_id))
