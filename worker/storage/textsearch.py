"""Pure text side of full-text search: the stems column, query terms and snippets.

SQLite's FTS5 only ships an English (porter) stemmer, so French and English stems are computed
here and indexed as an extra column; the query is stemmed the same way. Words are folded and
stemmed by :mod:`worker.text` (fold, then stem), exactly as subscriptions are, so a document a
subscription matches is found by the same words in the archive. Snippets are built here too, so
highlighting works the same on SQLite and PostgreSQL and also marks a word found through its
stem ("exploitation" for the query "exploitations").

``worker.text`` is below ``worker.storage`` (it imports nothing from ``worker``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

from worker.text import (
    Span,
    all_stems,
    languages_for,
    nfc,
    stem,
    stem_table,
    term_words,
    word_spans,
    words,
)

_QUERY_PART = re.compile(r'"([^"]*)"|(\S+)')
_SPACES = re.compile(r"\s+")
MARK_OPEN, MARK_CLOSE = "«", "»"


def document_stems(title: str | None, text: str, language: str | None) -> str:
    """The stems column of a document: the stems of each word of title and text, in order
    (one stem per word, or its distinct English and French stems when the language is
    unknown)."""
    folded = words(f"{title or ''}\n{text}")
    tables = [stem_table(folded, lang) for lang in languages_for(language)]
    joined = {word: " ".join(dict.fromkeys(table[word] for table in tables)) for word in tables[0]}
    return " ".join(joined[word] for word in folded)


@dataclass(frozen=True)
class Term:
    """One required part of a query: a word (stemmed), an exact phrase or a prefix."""

    kind: Literal["word", "phrase", "prefix"]
    words: tuple[str, ...]  # folded

    @property
    def stems(self) -> tuple[str, ...]:
        """A word's stems in every indexed language (the query's language is unknown)."""
        return all_stems(self.words[0])


def parse_terms(query: str) -> list[Term]:
    """Words, "exact phrases" and prefix* parts, all required; anything else is ignored."""
    terms: list[Term] = []
    for phrase, bare in _QUERY_PART.findall(query):
        raw = phrase or bare
        folded = tuple(term_words(raw))
        if not folded:
            continue
        if phrase and len(folded) > 1:
            terms.append(Term("phrase", folded))
        elif len(folded) == 1 and raw.endswith("*"):
            terms.append(Term("prefix", folded))
        else:
            terms.extend(Term("word", (w,)) for w in folded)
    return list(dict.fromkeys(terms))


# -- snippets ---------------------------------------------------------------------------------


@dataclass
class Snippet:
    """A passage of a document as (text, highlighted) segments, rendered for text or HTML."""

    segments: list[tuple[str, bool]]

    @property
    def text(self) -> str:
        return "".join(f"{MARK_OPEN}{s}{MARK_CLOSE}" if hit else s for s, hit in self.segments)

    @property
    def html(self) -> Markup:
        return Markup("").join(
            Markup("<mark>{}</mark>").format(s) if hit else escape(s) for s, hit in self.segments
        )


def _matches(
    tokens: list[Span], terms: list[Term], language: str | None
) -> Iterator[tuple[int, int, int]]:
    """(first token, last token, term index) of every place a term occurs."""
    languages = languages_for(language)
    folded = [word for word, _, _ in tokens]
    stem_cache: dict[str, set[str]] = {}

    def stems_of(i: int) -> set[str]:
        word = folded[i]
        if word not in stem_cache:
            stem_cache[word] = {stem(word, lang) for lang in languages}
        return stem_cache[word]

    for index, term in enumerate(terms):
        first = term.words[0]
        wanted = set(term.stems) if term.kind == "word" else set()
        for i, word in enumerate(folded):
            if term.kind == "prefix":
                if word.startswith(first):
                    yield i, i, index
            elif term.kind == "word":
                if word == first or stems_of(i) & wanted:
                    yield i, i, index
            elif word == first and tuple(folded[i : i + len(term.words)]) == term.words:
                yield i, i + len(term.words) - 1, index


def make_snippet(
    text: str, terms: Iterable[Term], language: str | None, width: int = 30
) -> Snippet:
    """The window of ``width`` words that shows the most distinct terms, highlighted."""
    text = nfc(text)  # the text the spans point into
    tokens = word_spans(text)
    term_list = list(terms)
    if not tokens:
        return Snippet([])
    found = sorted(_matches(tokens, term_list, language)) if term_list else []
    firsts = [f for f, _, _ in found]
    start, best = 0, 0
    for first in firsts:  # windows starting a little before each match; the earliest best wins
        lo = max(0, first - width // 3)
        window = found[bisect_left(firsts, lo) : bisect_left(firsts, lo + width)]
        score = len({t for _, last, t in window if last < lo + width})
        if score > best:
            best, start = score, lo
            if best == len(term_list):
                break
    end = min(len(tokens), start + width)
    marked = [(f, last) for f, last, _ in found if start <= f < end]
    begin_char = tokens[start][1]
    stop_char = tokens[end - 1][2]
    segments: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    cursor = begin_char
    for first, last in sorted(set(marked)):
        a, b = tokens[first][1], tokens[min(last, end - 1)][2]
        if a < cursor:
            continue
        segments.append((text[cursor:a], False))
        segments.append((text[a:b], True))
        cursor = b
    segments.append((text[cursor:stop_char], False))
    if end < len(tokens):
        segments.append(("…", False))
    return Snippet([(_SPACES.sub(" ", s), hit) for s, hit in segments if s])
