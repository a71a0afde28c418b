"""PostgreSQL: the search index in a narrow table of its own, with the title's lexemes apart.

A search visits the heap row of every document its tsquery matches. In ``document`` a row is
wide (URLs, headers, keywords, the title's tokens inline, the rest in TOAST), so 3,000 matches
spread over 1,700 pages: 5 ms at 10,000 documents before anything is ranked. A row of
``document_search`` holds what a query reads: the id, the date, the fields of the query
language (source, language, kind), the lexemes (in TOAST, read only by the GIN index) and the
title's lexemes (small, in the row: ranking by the title reads no TOAST).

The table is kept by a trigger from ``document.fts_lexemes`` (computed by the ORM hook, as
before) and the dates; a document's row goes with it (ON DELETE CASCADE). SQLite keeps its
FTS5 table: nothing changes there.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEXEMES = "array_to_tsvector(string_to_array({row}fts_lexemes, ' '))"
# the title's lexemes (prefixes "tw:" and "ts:", see worker.storage.textsearch) among them
_TITLE = (
    "array_to_tsvector(ARRAY(SELECT x FROM unnest(string_to_array({row}fts_lexemes, ' ')) AS x"
    " WHERE left(x, 3) IN ('tw:', 'ts:')))"
)
_WHEN = "coalesce({row}published_at, {row}fetched_at)"

_FUNCTION = f"""
CREATE FUNCTION tipwatch_document_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO document_search
        (document_id, lexemes, title, published, source, language, kind)
    VALUES (NEW.id, {_LEXEMES.format(row="NEW.")}, {_TITLE.format(row="NEW.")},
            {_WHEN.format(row="NEW.")}, NEW.source, NEW.language, NEW.kind)
    ON CONFLICT (document_id) DO UPDATE SET
        lexemes = EXCLUDED.lexemes, title = EXCLUDED.title, published = EXCLUDED.published,
        source = EXCLUDED.source, language = EXCLUDED.language, kind = EXCLUDED.kind;
    RETURN NULL;
END
$$
"""

_OLD_VECTOR = "array_to_tsvector(string_to_array(fts_lexemes, ' '))"  # as 0010 made it


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE document_search ("
        " document_id integer PRIMARY KEY REFERENCES document (id) ON DELETE CASCADE,"
        " published timestamp with time zone NOT NULL,"
        " source varchar(100) NOT NULL, language varchar(10), kind varchar(20) NOT NULL,"
        " lexemes tsvector NOT NULL, title tsvector NOT NULL)"
    )
    op.execute(
        "INSERT INTO document_search"
        " (document_id, lexemes, title, published, source, language, kind)"
        f" SELECT id, {_LEXEMES.format(row='')}, {_TITLE.format(row='')}, {_WHEN.format(row='')},"
        " source, language, kind FROM document"
    )
    op.execute("CREATE INDEX document_search_idx ON document_search USING gin (lexemes)")
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER document_search_sync AFTER INSERT OR UPDATE OF fts_lexemes,"
        " published_at, fetched_at, source, language, kind ON document FOR EACH ROW"
        " EXECUTE FUNCTION tipwatch_document_search()"
    )
    op.execute("DROP INDEX IF EXISTS document_fts_idx")
    op.execute("ALTER TABLE document DROP COLUMN IF EXISTS fts_vector")
    op.execute("ANALYZE document_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS document_search_sync ON document")
    op.execute("DROP FUNCTION IF EXISTS tipwatch_document_search()")
    op.execute("DROP TABLE IF EXISTS document_search")
    op.execute(
        f"ALTER TABLE document ADD COLUMN fts_vector tsvector GENERATED ALWAYS AS ({_OLD_VECTOR})"
        " STORED"
    )
    op.execute("CREATE INDEX document_fts_idx ON document USING gin (fts_vector)")
