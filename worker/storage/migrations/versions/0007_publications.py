"""Publications: one alert per (subscription, publication), and each source's quiet baseline.

Every existing document joins a publication: the issue of its series it belongs to, else its
own. Every existing alert is attached to its document's publication and its document recorded
as an ``alert_document``; two alerts of one subscription for the same publication (the EN and
FR files of an issue, alerted separately before) become one: the earliest keeps the others'
documents. A source that has already finished a poll has its baseline behind it.

Plain ADD COLUMN on ``document`` (no batch table copy), so SQLite's full-text triggers stay.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "publication",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("source", sa.String(length=100), nullable=False, index=True),
        sa.Column("series", sa.String(length=100), nullable=True),
        sa.Column("issue_number", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    _add_reference("document", "publication_id", "publication")
    _add_reference("document", "parent_id", "document")
    op.create_index("ix_document_publication_id", "document", ["publication_id"])
    _add_reference("alert", "publication_id", "publication")
    op.create_index("ix_alert_publication_id", "alert", ["publication_id"])
    op.add_column("source_state", sa.Column("baseline_at", sa.DateTime(timezone=True)))
    op.create_table(
        "alert_document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "alert_id",
            sa.Integer(),
            sa.ForeignKey("alert.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("document.id"), nullable=False, index=True
        ),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("alert_id", "document_id"),
    )
    _fill(op.get_bind())
    op.create_index(
        "uq_alert_publication", "alert", ["subscription_id", "publication_id"], unique=True
    )


def _add_reference(table: str, column: str, target: str) -> None:
    """ADD COLUMN with a foreign key; SQLite takes it inline only (alembic would copy the
    table, dropping the full-text triggers)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER REFERENCES {target} (id)")
    else:
        op.add_column(
            table, sa.Column(column, sa.Integer(), sa.ForeignKey(f"{target}.id"), nullable=True)
        )


def _fill(bind: sa.Connection) -> None:
    meta = sa.MetaData()
    meta.reflect(bind, only=("document", "publication", "alert", "alert_document", "source_state"))
    document, publication = meta.tables["document"], meta.tables["publication"]
    alert, alert_document = meta.tables["alert"], meta.tables["alert_document"]
    state = meta.tables["source_state"]

    rows = bind.execute(
        sa.select(
            document.c.id,
            document.c.source,
            document.c.series,
            document.c.issue_number,
            document.c.title,
            document.c.published_at,
            document.c.archived_at,
        ).order_by(document.c.id)
    ).all()
    publications: dict[str, dict[str, Any]] = {}
    members: dict[str, list[int]] = {}
    for row in rows:
        issue = row.series is not None and row.issue_number is not None
        key = f"issue:{row.series}:{row.issue_number}" if issue else f"document:{row.id}"
        pub = publications.setdefault(
            key,
            {
                "key": key,
                "source": row.source,
                "series": row.series if issue else None,
                "issue_number": row.issue_number if issue else None,
                "title": row.title,
                "published_at": row.published_at,
                "first_seen_at": row.archived_at,
                "baseline": False,
            },
        )
        if row.published_at and (not pub["published_at"] or row.published_at < pub["published_at"]):
            pub["published_at"] = row.published_at
        members.setdefault(key, []).append(row.id)
    for key, values in publications.items():
        pub_id = bind.execute(
            publication.insert().values(values).returning(publication.c.id)
        ).scalar_one()
        bind.execute(
            document.update().where(document.c.id.in_(members[key])).values(publication_id=pub_id)
        )

    pub_of = dict(bind.execute(sa.select(document.c.id, document.c.publication_id)).all())
    kept: dict[tuple[int, int | None], int] = {}
    for match in bind.execute(
        sa.select(
            alert.c.id,
            alert.c.subscription_id,
            alert.c.document_id,
            alert.c.explanation,
            alert.c.created_at,
        ).order_by(alert.c.id)
    ).all():
        pub_id = pub_of.get(match.document_id)
        owner = kept.setdefault((match.subscription_id, pub_id), match.id)
        bind.execute(
            alert_document.insert().values(
                alert_id=owner,
                document_id=match.document_id,
                explanation=match.explanation or {},
                added_at=match.created_at,
            )
        )
        if owner == match.id:
            bind.execute(alert.update().where(alert.c.id == match.id).values(publication_id=pub_id))
        else:
            bind.execute(alert.delete().where(alert.c.id == match.id))

    bind.execute(
        state.update()
        .where(state.c.last_poll_finished_at.is_not(None), state.c.last_status != "failed")
        .values(baseline_at=state.c.last_poll_finished_at)
    )


def downgrade() -> None:
    op.drop_index("uq_alert_publication", table_name="alert")
    op.drop_table("alert_document")
    op.drop_column("source_state", "baseline_at")
    op.drop_index("ix_alert_publication_id", table_name="alert")
    op.drop_column("alert", "publication_id")
    op.drop_index("ix_document_publication_id", table_name="document")
    op.drop_column("document", "parent_id")
    op.drop_column("document", "publication_id")
    op.drop_table("publication")
