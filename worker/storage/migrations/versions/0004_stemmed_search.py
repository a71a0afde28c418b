"""Stemmed, accent-insensitive full-text search in English and French.

SQLite: a ``stems`` column (PyStemmer stems by the document's language) indexed by a new FTS5
table beside title and text; existing rows are stemmed here. PostgreSQL: the GIN index now
covers a stored, generated ``fts_vector`` column built with the ``english``/``french``
configuration of each row's language over unaccented text (outside the ORM models: the
database computes it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tsvector of a row, stored in the generated column fts_vector (ranking needs the vector
# itself; recomputing it from an expression index made PostgreSQL searches 50x slower).
PG_VECTOR = (
    "to_tsvector(CASE language WHEN 'fr' THEN 'french'::regconfig WHEN 'en' THEN"
    " 'english'::regconfig ELSE 'simple'::regconfig END,"
    " tipwatch_unaccent(coalesce(title, '') || ' ' || text))"
)
_FTS_COLUMNS = ("title", "text", "stems")


def _sqlite_triggers(columns: Sequence[str]) -> list[str]:
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete = (
        f"INSERT INTO document_fts(document_fts, rowid, {cols}) VALUES ('delete', old.id, {old});"
    )
    insert = f"INSERT INTO document_fts(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE TRIGGER document_fts_ai AFTER INSERT ON document BEGIN {insert} END",
        f"CREATE TRIGGER document_fts_ad AFTER DELETE ON document BEGIN {delete} END",
        f"CREATE TRIGGER document_fts_au AFTER UPDATE ON document BEGIN {delete} {insert} END",
    ]


def _drop_sqlite_index() -> None:
    for trigger in ("document_fts_ai", "document_fts_ad", "document_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS document_fts")


def _create_sqlite_index(columns: Sequence[str], tokenize: str) -> None:
    op.execute(
        f"CREATE VIRTUAL TABLE document_fts USING fts5({', '.join(columns)},"
        f" content='document', content_rowid='id', tokenize='{tokenize}')"
    )
    op.execute("INSERT INTO document_fts(document_fts) VALUES ('rebuild')")
    for statement in _sqlite_triggers(columns):
        op.execute(statement)


def _stem_existing_rows() -> None:
    from worker.storage.migrations.legacy import document_stems

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, title, text, language FROM document")).all()
    for row in rows:
        bind.execute(
            sa.text("UPDATE document SET stems = :stems WHERE id = :id"),
            {"stems": document_stems(row.title, row.text or "", row.language), "id": row.id},
        )


def upgrade() -> None:
    op.add_column("document", sa.Column("stems", sa.Text(), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "sqlite":
        _drop_sqlite_index()  # before stemming: the old triggers would reindex every row
        _stem_existing_rows()
        _create_sqlite_index(_FTS_COLUMNS, "unicode61 remove_diacritics 2")
    else:
        op.execute("DROP INDEX IF EXISTS document_fts_idx")
        op.execute(
            f"ALTER TABLE document ADD COLUMN fts_vector tsvector"
            f" GENERATED ALWAYS AS ({PG_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX document_fts_idx ON document USING gin (fts_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _drop_sqlite_index()
        _create_sqlite_index(("title", "text"), "porter unicode61 remove_diacritics 2")
    else:
        op.execute("DROP INDEX IF EXISTS document_fts_idx")
        op.execute("ALTER TABLE document DROP COLUMN IF EXISTS fts_vector")
        op.execute(
            "CREATE INDEX document_fts_idx ON document USING gin"
            " (to_tsvector('simple', tipwatch_unaccent(coalesce(title, '') || ' ' || text)))"
        )
    op.drop_column("document", "stems")
