"""Recompute every archived document's keyphrases and concept tags: after the extractor or the
taxonomy changes (and once after migration 0011, which adds the tags)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from worker.extract.enrich import FURNITURE_CHARS, FURNITURE_SAMPLE, describe
from worker.keywords import furniture_lines
from worker.storage.db import session_scope
from worker.storage.models import Document

BATCH = 50  # documents per transaction: a crash loses at most one batch of work

Progress = Callable[[int, int], None]  # (documents done, documents in all)


@dataclass
class ReindexReport:
    documents: int = 0
    tagged: int = 0  # documents with at least one tag
    changed_keywords: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "documents": self.documents,
            "tagged": self.tagged,
            "changed_keywords": self.changed_keywords,
        }


def reindex_archive(engine: Engine, progress: Progress | None = None) -> ReindexReport:
    """Keyphrases and tags of every extracted document, source by source: the furniture of a
    source (and kind) is learned once from its latest documents."""
    report = ReindexReport()
    with session_scope(engine) as session:
        total = session.scalar(
            select(func.count()).select_from(Document).where(Document.extract_status == "done")
        )
        groups = session.execute(
            select(Document.source, Document.kind)
            .where(Document.extract_status == "done")
            .distinct()
            .order_by(Document.source, Document.kind)
        ).all()
    total = int(total or 0)
    if progress:
        progress(0, total)
    for source, kind in groups:
        with session_scope(engine) as session:
            sample = session.scalars(
                select(func.substr(Document.text, 1, FURNITURE_CHARS))
                .where(Document.source == source, Document.kind == kind, Document.text != "")
                .order_by(Document.id.desc())
                .limit(FURNITURE_SAMPLE + 1)
            ).all()
            ids = session.scalars(
                select(Document.id)
                .where(
                    Document.source == source,
                    Document.kind == kind,
                    Document.extract_status == "done",
                )
                .order_by(Document.id)
            ).all()
        furniture = furniture_lines(sample) if len(sample) > 1 else frozenset()
        for start in range(0, len(ids), BATCH):
            with session_scope(engine) as session:
                documents = session.scalars(
                    select(Document)
                    .options(selectinload(Document.pages), selectinload(Document.tags))
                    .where(Document.id.in_(ids[start : start + BATCH]))
                ).all()
                for document in documents:
                    before = list(document.keywords or [])
                    pages = [p.text for p in document.pages] or [document.text or ""]
                    describe(document, pages, furniture)
                    report.documents += 1
                    report.tagged += bool(document.tags)
                    report.changed_keywords += before != document.keywords
            if progress:
                progress(report.documents, total)
    return report
