"""Deferred PDF extraction: a document can wait on the ``extract`` queue.

Plain ADD COLUMN (no batch table copy), so SQLite's full-text triggers stay in place. Every
existing document was extracted when archived, hence the ``done`` default.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "document",
        sa.Column("extract_status", sa.String(length=20), nullable=False, server_default="done"),
    )
    op.add_column(
        "document",
        sa.Column("extract_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "document", sa.Column("extract_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_document_extract_status", "document", ["extract_status"])


def downgrade() -> None:
    op.drop_index("ix_document_extract_status", table_name="document")
    for column in ("extract_started_at", "extract_attempts", "extract_status"):
        op.drop_column("document", column)
