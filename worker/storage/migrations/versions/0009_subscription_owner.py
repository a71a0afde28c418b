"""Who a subscription belongs to: the operator (CLI), an email address, or a chat room.

Self-service subscriptions (issue 18) are made by people without a shell: by email on the web
page, or in a Matrix room through the bot. ``channel`` says which, ``owner`` is the address or
room, and ``confirmed_at`` stays empty until an email address confirms (double opt-in):
nothing is matched for, nor sent to, an unconfirmed subscription. Existing rows are the
operator's, confirmed when they were made.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(20), nullable=False, server_default="operator")
        )
        batch.add_column(sa.Column("owner", sa.String(320), nullable=True))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_subscription_owner", ["channel", "owner"])
    op.execute("UPDATE subscription SET confirmed_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.drop_index("ix_subscription_owner")
        batch.drop_column("confirmed_at")
        batch.drop_column("owner")
        batch.drop_column("channel")
