"""Newsletter series of a numbered document.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch table copy), so SQLite's full-text triggers stay in place.
    op.add_column("document", sa.Column("series", sa.String(length=100), nullable=True))
    op.create_index("ix_document_series", "document", ["series"])


def downgrade() -> None:
    op.drop_index("ix_document_series", "document")
    op.drop_column("document", "series")
