"""Pure text side of full-text search: folding, stemming, query terms and snippets.

SQLite's FTS5 only ships an English (porter) stemmer, so French and English stems are computed
here with PyStemmer and indexed as an extra column; the query is stemmed the same way. Snippets
are built here too, so highlighting works the same on SQLite and PostgreSQL and also marks a
word found through its stem ("exploitation" for the query "exploitations").
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from markupsafe import Markup, escape

_TOKEN = re.compile(r"\w+", re.UNICODE)
_QUERY_PART = re.compile(r'"([^"]*)"|(\S+)')
_SPACES = re.compile(r"\s+")
STEM_LANGUAGES = {"en": "english", "fr": "french"}
MARK_OPEN, MARK_CLOSE = "«", "»"


def fold(word: str) -> str:
    """Lower case without diacritics: the form every comparison uses (ê → e, Œ → oe)."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return folded.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")


@cache
def _stemmer(language: str) -> Any:
    import Stemmer

    return Stemmer.Stemmer(STEM_LANGUAGES[language])


def stem(word: str, language: str) -> str:
    """Snowball stem of a lower-case word (accents kept for the stemmer), then folded."""
    return fold(_stemmer(language).stemWord(word.lower()))


def _languages(language: str | None) -> tuple[str, ...]:
    """Stem a document in its language; one of unknown language in both."""
    return (language,) if language in STEM_LANGUAGES else tuple(STEM_LANGUAGES)


def document_stems(title: str | None, text: str, language: str | None) -> str:
    """The stems column of a document: one stem per word of title and text, in order."""
    languages = _languages(language)
    cache: dict[str, str] = {}
    out: list[str] = []
    for word in _TOKEN.findall(f"{title or ''}\n{text}"):
        key = word.lower()
        stems = cache.get(key)
        if stems is None:
            stems = " ".join(dict.fromkeys(stem(key, lang) for lang in languages))
            cache[key] = stems
        out.append(stems)
    return " ".join(out)


@dataclass(frozen=True)
class Term:
    """One required part of a query: a word (stemmed), an exact phrase or a prefix."""

    kind: Literal["word", "phrase", "prefix"]
    words: tuple[str, ...]  # folded

    @property
    def stems(self) -> tuple[str, ...]:
        """A word's stems in every indexed language (the query's language is unknown)."""
        return tuple(dict.fromkeys(stem(self.words[0], lang) for lang in STEM_LANGUAGES))


def parse_terms(query: str) -> list[Term]:
    """Words, "exact phrases" and prefix* parts, all required; anything else is ignored."""
    terms: list[Term] = []
    for phrase, bare in _QUERY_PART.findall(query):
        raw = phrase or bare
        words = tuple(fold(w) for w in _TOKEN.findall(raw))
        if not words:
            continue
        if phrase and len(words) > 1:
            terms.append(Term("phrase", words))
        elif len(words) == 1 and raw.endswith("*"):
            terms.append(Term("prefix", words))
        else:
            terms.extend(Term("word", (w,)) for w in words)
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
    tokens: list[re.Match[str]], terms: list[Term], language: str | None
) -> Iterator[tuple[int, int, int]]:
    """(first token, last token, term index) of every place a term occurs."""
    languages = _languages(language)
    fold_cache: dict[str, str] = {}
    folded = []
    for token in tokens:
        word = token.group()
        if word not in fold_cache:
            fold_cache[word] = fold(word)
        folded.append(fold_cache[word])
    stem_cache: dict[str, set[str]] = {}

    def stems_of(i: int) -> set[str]:
        word = tokens[i].group().lower()
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
    tokens = list(_TOKEN.finditer(text))
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
    begin_char = tokens[start].start()
    stop_char = tokens[end - 1].end()
    segments: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    cursor = begin_char
    for first, last in sorted(set(marked)):
        a, b = tokens[first].start(), tokens[min(last, end - 1)].end()
        if a < cursor:
            continue
        segments.append((text[cursor:a], False))
        segments.append((text[a:b], True))
        cursor = b
    segments.append((text[cursor:stop_char], False))
    if end < len(tokens):
        segments.append(("…", False))
    return Snippet([(_SPACES.sub(" ", s), hit) for s, hit in segments if s])
