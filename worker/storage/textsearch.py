"""What the search index stores of a document: its words and stems as :mod:`worker.text` makes
them, so that the database narrows a search with exactly the words a subscription would see.

A document is indexed as four space-separated token strings, computed here when it is archived
(``Document.fts_*``, kept current by an ORM hook in :mod:`worker.storage.models`):

- ``fts_words``: the folded words of its text, page after page, with :data:`PAGE_BREAK`
  between pages (a token no text can contain: a phrase never runs across a page break);
- ``fts_stems``: each of those words' stem in the document's language, in the same order; when
  the language is unknown, its English and French stems joined by ``|`` (both are tokens);
- ``fts_title_words``, ``fts_title_stems``: the same for the title, which a subscription
  matches on its own when the text does not match.

SQLite's FTS5 indexes these strings with a tokenizer that takes them as they are (no diacritic
folding, ``_`` a word character), so its tokens are this module's words; PostgreSQL indexes
``fts_lexemes``, the distinct tokens with a prefix per column (``w:``, ``s:``, ``tw:``,
``ts:``), as a tsvector. The same strings give the matcher its index of a document without
reading the text again (:func:`page_tokens`).

``worker.text`` is below ``worker.storage``; this module imports nothing else from ``worker``.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.text import STEM_JOIN, languages_for, stem_table, words

PAGE_BREAK = "\ue000"  # a private-use character: never part of a word (not a ``\w``)
_BREAK = f" {PAGE_BREAK} "
# The index's form: a document indexed under an older version is indexed again (migration, or
# ``tipwatch archive reindex``) when the rules of worker.text change.
INDEX_VERSION = 1

# PostgreSQL limits: a lexeme of at most 2,047 bytes, a tsvector of at most 1 MB. A word longer
# than MAX_LEXEME_BYTES (no language has one) or lexemes past MAX_LEXEMES_BYTES (a text of
# hundreds of thousands of distinct words) are left out of the tsvector and the document is
# marked ``fts_partial``: it is then a candidate of every search, and the matcher decides.
MAX_LEXEME_BYTES = 1000
MAX_LEXEMES_BYTES = 900_000
COLUMN_PREFIXES = {"words": "w:", "stems": "s:", "title_words": "tw:", "title_stems": "ts:"}


@dataclass(frozen=True)
class IndexFields:
    """The ``Document.fts_*`` values of one document."""

    words: str
    stems: str
    title_words: str
    title_stems: str
    lexemes: str
    partial: bool

    def as_columns(self) -> dict[str, object]:
        return {
            "fts_words": self.words,
            "fts_stems": self.stems,
            "fts_title_words": self.title_words,
            "fts_title_stems": self.title_stems,
            "fts_lexemes": self.lexemes,
            "fts_partial": self.partial,
            "fts_version": INDEX_VERSION,
        }


def _stem_tokens(folded: list[str], language: str | None) -> list[str]:
    """One stem token per word: its stem in ``language``, or ``en|fr`` when unknown."""
    tables = [stem_table(folded, lang) for lang in languages_for(language)]
    if len(tables) == 1:
        table = tables[0]
        return [table[w] for w in folded]
    return [STEM_JOIN.join(table[w] for table in tables) for w in folded]


def _strings(pages: list[list[str]], language: str | None) -> tuple[str, str]:
    stems = [_stem_tokens(page, language) for page in pages]
    return _BREAK.join(" ".join(p) for p in pages), _BREAK.join(" ".join(p) for p in stems)


def index_fields(title: str | None, pages: list[str], language: str | None) -> IndexFields:
    """The index of a document whose text is ``pages`` (an HTML page is one page)."""
    page_words = [words(page) for page in pages]
    text_words, text_stems = _strings(page_words, language)
    title_words, title_stems = _strings([words(title or "")], language)
    lexemes, partial = _lexemes(
        {
            "words": text_words,
            "stems": text_stems,
            "title_words": title_words,
            "title_stems": title_stems,
        }
    )
    return IndexFields(text_words, text_stems, title_words, title_stems, lexemes, partial)


def _lexemes(columns: dict[str, str]) -> tuple[str, bool]:
    """PostgreSQL's lexemes: each distinct token of each column, prefixed by the column."""
    out: list[str] = []
    size, partial = 0, False
    for column, value in columns.items():
        prefix = COLUMN_PREFIXES[column]
        distinct = dict.fromkeys(
            part for token in value.split() if token != PAGE_BREAK for part in token.split("|")
        )
        for token in distinct:
            lexeme = prefix + token
            length = len(lexeme.encode("utf-8"))
            if length > MAX_LEXEME_BYTES or size + length + 4 > MAX_LEXEMES_BYTES:
                partial = True
                continue
            size += length + 4  # and the tsvector's entry for it
            out.append(lexeme)
    return " ".join(out), partial


def page_tokens(words_text: str, stems_text: str) -> tuple[list[list[str]], list[list[str]]]:
    """The words and stem tokens of each page, read back from ``fts_words`` and ``fts_stems``
    (an empty text is one empty page, as :func:`index_fields` wrote it)."""
    return (
        [page.split() for page in words_text.split(PAGE_BREAK)],
        [page.split() for page in stems_text.split(PAGE_BREAK)],
    )
