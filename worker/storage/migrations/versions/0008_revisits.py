"""Revisit by evidence: what the crawler remembers of a URL beyond its validators.

The content type (a 304 keeps the charset), the feed or listing entry that linked it, when
its body last changed and when to look again, and its failures with their backoff.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    sa.Column("content_type", sa.String(length=200), nullable=True),
    sa.Column("entry_sha256", sa.String(length=64), nullable=True),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_visit_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("http_resource", column)
    # What was fetched before is as old as its last fetch: its first revisit comes by age.
    op.execute("UPDATE http_resource SET changed_at = last_fetched_at")


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("http_resource", column.name)
