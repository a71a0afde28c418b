"""Subscription filters, thesaurus opt-in and delivery mode.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscription", sa.Column("filters", sa.JSON(), nullable=False, server_default="{}")
    )
    op.add_column(
        "subscription",
        sa.Column("thesaurus", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "subscription",
        sa.Column("delivery", sa.String(length=20), nullable=False, server_default="immediate"),
    )


def downgrade() -> None:
    for column in ("delivery", "thesaurus", "filters"):
        op.drop_column("subscription", column)
