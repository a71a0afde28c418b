"""One text engine: the search index holds the words and stems subscriptions match.

Until now SQLite indexed title and text with FTS5's own tokenizer beside a column of stems, and
PostgreSQL a tsvector built by its own English/French stemmers: two ways of cutting and
stemming words that disagreed with the matcher's (``worker.text``). Every document now carries
the matcher's own tokens (``fts_words``, ``fts_stems`` and the title's, see
``worker/storage/textsearch.py``), computed here for the existing archive; SQLite's FTS5 table
indexes them as they are, PostgreSQL a tsvector of ``fts_lexemes``. The old ``stems`` column,
FTS5 table and generated tsvector are dropped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = ("fts_words", "fts_stems", "fts_title_words", "fts_title_stems", "fts_lexemes")
FTS_COLUMNS = TEXT_COLUMNS[:4]
# FTS5 takes the tokens as worker.text made them: no diacritic folding of its own (they are
# folded already), and "_" inside a word as Python's \w has it.
FTS_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '_'"
PG_VECTOR = "array_to_tsvector(string_to_array(fts_lexemes, ' '))"
PARTIAL_INDEX = "ix_document_fts_partial"
_BATCH = 200  # documents read at a time: a document can be a 500-page report


def sqlite_index_statements() -> list[str]:
    """The FTS5 table over the token columns and the triggers that keep it current (only a
    change of the tokens reindexes a row, not a change of its extraction status)."""
    cols = ", ".join(FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    delete = (
        f"INSERT INTO document_fts(document_fts, rowid, {cols}) VALUES ('delete', old.id, {old});"
    )
    insert = f"INSERT INTO document_fts(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE VIRTUAL TABLE document_fts USING fts5({cols}, content='document',"
        f" content_rowid='id', tokenize=\"{FTS_TOKENIZE}\")",
        f"CREATE TRIGGER document_fts_ai AFTER INSERT ON document BEGIN {insert} END",
        f"CREATE TRIGGER document_fts_ad AFTER DELETE ON document BEGIN {delete} END",
        f"CREATE TRIGGER document_fts_au AFTER UPDATE OF {cols} ON document"
        f" BEGIN {delete} {insert} END",
    ]


def _drop_sqlite_index() -> None:
    for trigger in ("document_fts_ai", "document_fts_ad", "document_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS document_fts")


def _index_existing_rows() -> None:
    from worker.storage.textsearch import index_fields

    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, title, text, language FROM document WHERE id > :last"
                " ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        pages: dict[int, list[str]] = {}
        for document_id, text in bind.execute(
            sa.text(
                "SELECT document_id, text FROM document_page WHERE document_id IN :ids"
                " ORDER BY document_id, page_number"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": [row.id for row in rows]},
        ):
            pages.setdefault(document_id, []).append(text)
        for row in rows:
            fields = index_fields(row.title, pages.get(row.id) or [row.text or ""], row.language)
            bind.execute(
                sa.text(
                    "UPDATE document SET fts_words = :fts_words, fts_stems = :fts_stems,"
                    " fts_title_words = :fts_title_words, fts_title_stems = :fts_title_stems,"
                    " fts_lexemes = :fts_lexemes, fts_partial = :fts_partial,"
                    " fts_version = :fts_version WHERE id = :id"
                ),
                {**fields.as_columns(), "id": row.id},
            )
        last = rows[-1].id


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _drop_sqlite_index()  # before filling the columns: no trigger reindexes each row
    else:
        op.execute("DROP INDEX IF EXISTS document_fts_idx")
        op.execute("ALTER TABLE document DROP COLUMN IF EXISTS fts_vector")
    with op.batch_alter_table("document") as batch:
        for name in TEXT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("fts_partial", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("fts_version", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_column("stems")
    _index_existing_rows()
    # The few documents whose index is partial are candidates of every search: found by index.
    op.create_index(
        PARTIAL_INDEX,
        "document",
        ["id"],
        postgresql_where=sa.text("fts_partial"),
        sqlite_where=sa.text("fts_partial"),
    )
    if sqlite:
        for statement in sqlite_index_statements():
            op.execute(statement)
        op.execute("INSERT INTO document_fts(document_fts) VALUES ('rebuild')")
    else:
        op.execute(
            f"ALTER TABLE document ADD COLUMN fts_vector tsvector GENERATED ALWAYS AS"
            f" ({PG_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX document_fts_idx ON document USING gin (fts_vector)")


_OLD_PG_VECTOR = (
    "to_tsvector(CASE language WHEN 'fr' THEN 'french'::regconfig WHEN 'en' THEN"
    " 'english'::regconfig ELSE 'simple'::regconfig END,"
    " tipwatch_unaccent(coalesce(title, '') || ' ' || text))"
)


def downgrade() -> None:
    from worker.storage.migrations.legacy import document_stems

    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _drop_sqlite_index()
    else:
        op.execute("DROP INDEX IF EXISTS document_fts_idx")
        op.execute("ALTER TABLE document DROP COLUMN IF EXISTS fts_vector")
    op.drop_index(PARTIAL_INDEX, "document")
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("stems", sa.Text(), nullable=False, server_default=""))
        for name in (*TEXT_COLUMNS, "fts_partial", "fts_version"):
            batch.drop_column(name)
    bind = op.get_bind()
    if sqlite:
        for row in bind.execute(sa.text("SELECT id, title, text, language FROM document")).all():
            bind.execute(
                sa.text("UPDATE document SET stems = :stems WHERE id = :id"),
                {"stems": document_stems(row.title, row.text or "", row.language), "id": row.id},
            )
        cols = "title, text, stems"
        op.execute(
            f"CREATE VIRTUAL TABLE document_fts USING fts5({cols}, content='document',"
            " content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute("INSERT INTO document_fts(document_fts) VALUES ('rebuild')")
        new, old = "new.title, new.text, new.stems", "old.title, old.text, old.stems"
        delete = (
            f"INSERT INTO document_fts(document_fts, rowid, {cols})"
            f" VALUES ('delete', old.id, {old});"
        )
        insert = f"INSERT INTO document_fts(rowid, {cols}) VALUES (new.id, {new});"
        op.execute(f"CREATE TRIGGER document_fts_ai AFTER INSERT ON document BEGIN {insert} END")
        op.execute(f"CREATE TRIGGER document_fts_ad AFTER DELETE ON document BEGIN {delete} END")
        op.execute(
            f"CREATE TRIGGER document_fts_au AFTER UPDATE ON document BEGIN {delete} {insert} END"
        )
    else:
        op.execute(
            f"ALTER TABLE document ADD COLUMN fts_vector tsvector GENERATED ALWAYS AS"
            f" ({_OLD_PG_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX document_fts_idx ON document USING gin (fts_vector)")
