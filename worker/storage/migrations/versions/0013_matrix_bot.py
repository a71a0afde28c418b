"""The Matrix bot's memory: where its sync stopped, the rooms it was invited to, the commands
it answered.

``matrix_sync`` holds the sync token (and device) so a restart resumes where it stopped;
``matrix_room`` the rooms it joined on an invitation, the only ones it answers in;
``matrix_command`` one row per command event, unique by event id, written with its reply in
the transaction that carries it out: each command is answered exactly once across restarts.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matrix_sync",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.String(length=255), nullable=False, unique=True),
        sa.Column("next_batch", sa.Text(), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "matrix_room",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("room_id", sa.String(length=255), nullable=False, unique=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inviter", sa.String(length=255), nullable=True),
    )
    op.create_table(
        "matrix_command",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(length=255), nullable=False, unique=True),
        sa.Column("room_id", sa.String(length=255), nullable=False, index=True),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=False),
        sa.Column("reply_html", sa.Text(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("matrix_command")
    op.drop_table("matrix_room")
    op.drop_table("matrix_sync")
