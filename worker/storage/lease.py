"""Claim-with-lease: how every leased job (an alert's delivery, a digest, a PDF's extraction)
is taken by exactly one worker, and taken over when its holder died.

A claim is one conditional UPDATE, never a read followed by a write, so two workers racing for
the same row cannot both win; a claim older than its lease belonged to a worker that is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import InstrumentedAttribute, Session


def claim(
    session: Session,
    model: Any,
    *where: ColumnElement[bool],
    free: ColumnElement[bool],
    since: InstrumentedAttribute[Any],
    lease: float,
    now: datetime,
    values: dict[str, Any] | None = None,
) -> list[int]:
    """Take the rows of ``model`` matching ``where`` that are ``free``, or whose claim time
    (``since``) is older than ``lease`` seconds; stamp ``since`` with ``now`` and set
    ``values``. Returns the ids taken (commit the session to make the claim hold)."""
    stale = now - timedelta(seconds=lease)
    result = session.execute(
        update(model)
        .where(*where)
        .where(or_(free, since < stale))
        .values({since.key: now, **(values or {})})
        .returning(model.id)
    )
    return list(result.scalars())
