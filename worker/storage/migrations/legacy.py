"""Frozen helpers of old migrations: what they computed then, so they still run on a fresh
database (each later migration that changes the schema brings its own)."""

from __future__ import annotations

from worker.text import languages_for, stem_table, words


def document_stems(title: str | None, text: str, language: str | None) -> str:
    """The stems column of migrations 0004 and 0006 (dropped by 0010): the stems of each word
    of title and text, in order, both languages' when the language is unknown."""
    folded = words(f"{title or ''}\n{text}")
    tables = [stem_table(folded, lang) for lang in languages_for(language)]
    joined = {word: " ".join(dict.fromkeys(table[word] for table in tables)) for word in tables[0]}
    return " ".join(joined[word] for word in folded)
