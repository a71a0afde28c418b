"""Re-stem stored documents (SQLite): the stems column now folds, then stems, as subscriptions do.

Until now SQLite's ``stems`` column stemmed a word with its accents and folded the stem, while
the search query folded, then stemmed: "mendicité" was stored as "mendiqu" and searched as
"mendicit", so ``archive search mendicité`` missed the French document a subscription to
``mendicité`` matched. Every row is stemmed again by :mod:`worker.text` (through
``document_stems``); the FTS5 triggers replace each row's entry as it is updated.

PostgreSQL needs nothing: its tsvector is built over ``tipwatch_unaccent`` text, already fold
then stem, and its ``stems`` column is unused. Downgrading keeps the new stems (the earlier code
searched with fold-then-stem query stems, which they match better than the old ones).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 200  # rows read at a time: a document's text can be a 500-page report


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    from worker.storage.migrations.legacy import document_stems

    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, title, text, language, stems FROM document"
                " WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        for row in rows:
            stems = document_stems(row.title, row.text or "", row.language)
            if stems != row.stems:
                bind.execute(
                    sa.text("UPDATE document SET stems = :stems WHERE id = :id"),
                    {"stems": stems, "id": row.id},
                )
        last = rows[-1].id


def downgrade() -> None:
    pass
