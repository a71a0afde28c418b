"""Email self-service (issue 18): confirmation tokens, stored hashed, and the subscribe form's
attempts per client, which the rate limits count.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("subscription.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_email_token_owner", "email_token", ["owner", "created_at"])
    op.create_index("ix_email_token_subscription_id", "email_token", ["subscription_id"])
    op.create_table(
        "signup_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signup_attempt_client", "signup_attempt", ["client", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_signup_attempt_client", "signup_attempt")
    op.drop_table("signup_attempt")
    op.drop_index("ix_email_token_subscription_id", "email_token")
    op.drop_index("ix_email_token_owner", "email_token")
    op.drop_table("email_token")
