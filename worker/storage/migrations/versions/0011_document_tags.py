"""Concept tags: which taxonomy concepts (``config/taxonomy.yaml``) each document mentions.

One row per document and concept, with how many times it is mentioned; the ``tag:`` query
filter and the tag facets read it through an index on the tag. Rows are written at extraction;
the existing archive is tagged by ``tipwatch archive reindex`` (which also recomputes keywords).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_tag",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(60), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("document_id", "tag"),
    )
    op.create_index("ix_document_tag_tag", "document_tag", ["tag", "document_id"])


def downgrade() -> None:
    op.drop_index("ix_document_tag_tag", table_name="document_tag")
    op.drop_table("document_tag")
