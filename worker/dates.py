"""Dates and issue numbers as the sources write them, in French and English.

Pure functions over text: regexes isolate a date-shaped snippet first, so free text never
produces an invented date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MONTHS = {
    # French
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "décembre": 12, "decembre": 12,
    # English
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}  # fmt: skip
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))

_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_DAY_MONTH_YEAR = re.compile(
    rf"\b(\d{{1,2}})(?:er|st|nd|rd|th)?\s+({_MONTH_RE})\s+(\d{{4}})\b", re.IGNORECASE
)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH_RE})\s+(\d{{1,2}}),\s*(\d{{4}})\b", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b({_MONTH_RE})\s+(\d{{4}})\b", re.IGNORECASE)
_NUMERIC = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")  # day first, as both sites write

_ISSUE = re.compile(
    r"(?<![a-z])(?:n\s*°|no\.?|nr\.?|n(?=\d)|number|numéro|numero|issue)[\s_-]*(\d{1,3})(?!\d)"
    r"|\b(\d{1,3})\s*(?:e|ème|eme|th|st|nd|rd)\s+(?:numéro|lettre|issue|newsletter)",
    re.IGNORECASE,
)


_WRITTEN = (  # pattern, (day group, month group, year group)
    (_DAY_MONTH_YEAR, (1, 2, 3)),
    (_MONTH_DAY_YEAR, (2, 1, 3)),
    (_NUMERIC, (1, 2, 3)),
)


def iso(value: datetime | None) -> str | None:
    """A datetime as ISO 8601 text for JSON and tables (None stays None)."""
    return value.isoformat() if value else None


def as_utc(value: datetime) -> datetime:
    """A stored datetime as an aware UTC one (SQLite hands back naive values, kept in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _month(value: str) -> int:
    return int(value) if value.isdigit() else _MONTHS[value.lower()]


def _make(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime | None:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def parse_date(text: str | None) -> datetime | None:
    """The first date written in ``text``: ISO, '1er mars 2025', '12 January 2021',
    'March 12, 2024', '24/03/2017', or a bare 'juin 2025' (first of the month)."""
    if not text:
        return None
    candidates: list[tuple[int, datetime]] = []
    if m := _ISO.search(text):
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        if dt := _make(y, mo, d, h, mi, s):
            candidates.append((m.start(), dt))
    for pattern, (day, month, year) in _WRITTEN:
        if (m := pattern.search(text)) and (
            dt := _make(int(m[year]), _month(m[month]), int(m[day]))
        ):
            candidates.append((m.start(), dt))
    if candidates:
        return min(candidates, key=lambda c: c[0])[1]
    if m := _MONTH_YEAR.search(text):
        return _make(int(m[2]), _MONTHS[m[1].lower()], 1)
    return None


def issue_number(text: str | None) -> int | None:
    """The newsletter issue number in a title or file name: 'n°24', 'No 24', '5ème numéro'."""
    if not text:
        return None
    m = _ISSUE.search(text)
    if not m:
        return None
    return int(m[1] or m[2])
