"""Newsletter awareness: which series an issue belongs to, late issues (an issue's
translations are a query: worker.storage.documents.same_issue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import SeriesConfig, Settings
from worker.dates import as_utc
from worker.storage.models import Document


def all_series(settings: Settings) -> list[SeriesConfig]:
    return [series for source in settings.source_list for series in source.series]


def series_of(settings: Settings, number: int | None, text: str) -> str | None:
    """The configured series a numbered document belongs to (by its title or URL)."""
    if number is None:
        return None
    return next((s.name for s in all_series(settings) if s.matches(text)), None)


@dataclass
class SeriesStatus:
    name: str
    title: str
    latest_issue: int | None = None
    latest_date: datetime | None = None
    languages: list[str] = field(default_factory=list)
    issues: int = 0
    expected_by: datetime | None = None
    overdue: bool = False
    days_late: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "latest_issue": self.latest_issue,
            "latest_date": self.latest_date.isoformat() if self.latest_date else None,
            "languages": self.languages,
            "issues": self.issues,
            "expected_by": self.expected_by.isoformat() if self.expected_by else None,
            "overdue": self.overdue,
            "days_late": self.days_late,
        }


def series_status(
    session: Session, settings: Settings, now: datetime | None = None
) -> list[SeriesStatus]:
    """Each series' latest issue and whether the next one is overdue.

    The next issue is expected ``every_days`` after the latest one; it is overdue once
    ``grace_days`` more have passed without it.
    """
    now = now or datetime.now(UTC)
    statuses = []
    for config in all_series(settings):
        status = SeriesStatus(config.name, config.title)
        rows = session.execute(
            select(Document.issue_number, Document.published_at, Document.language).where(
                Document.series == config.name, Document.issue_number.is_not(None)
            )
        ).all()
        statuses.append(status)
        if not rows:
            continue
        status.issues = len({r.issue_number for r in rows})
        status.latest_issue = max(r.issue_number for r in rows)
        latest = [r for r in rows if r.issue_number == status.latest_issue]
        dates = [as_utc(r.published_at) for r in latest if r.published_at]
        status.latest_date = min(dates) if dates else None
        status.languages = sorted({r.language for r in latest if r.language})
        if status.latest_date:
            status.expected_by = status.latest_date + timedelta(days=config.every_days)
            late = now - status.expected_by
            status.overdue = late > timedelta(days=config.grace_days)
            status.days_late = max(0, late.days)
    return statuses
