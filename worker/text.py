"""Folding, word splitting and stemming of English and French text: the one definition shared by
subscriptions, the thesaurus, keywords and the archive's search index, so they all agree.

The one order, everywhere: **fold, then stem**.

1. A text is normalised to NFC and cut into words: runs of ``\\w`` (letters, digits and ``_``).
   Everything else separates words: spaces and line breaks, punctuation, hyphens ("main-d'œuvre"
   is "main", "d", "oeuvre"), apostrophes straight or curly (elisions: "l'exploitation" is "l",
   "exploitation"; "d’êtres" is "d", "etres"). A word broken by a hyphen at the end of a line
   stays two words ("exploi-" / "tation"): nothing is joined back.
2. Each word is folded (:func:`fold`): compatibility decomposition (the ligature "ﬁ" is "fi",
   "²" is "2"), combining accents removed, case folded, then "œ", "æ", "ß" spelled "oe", "ae",
   "ss"; and cut again, since folding can separate ("½" is "1⁄2": "1", "2").
3. A folded word is stemmed (Snowball, PyStemmer) in English, French, or both when the
   document's language is unknown; a query word, whose language is unknown, in both. The
   words of a quoted phrase are compared folded, not stemmed (``worker.match``).

So "La mendicité forcée" is indexed as "mendicit", "force" in French, and a query for
"mendicité", "Mendicite" or "MENDICITÉ" is "mendicit" too. Stemming before folding would give
"mendiqu" (the French stemmer knows the suffix "-ité", not "-ite"), which no folded query reaches.

Layer: this module is at the bottom of ``worker``; it imports nothing from ``worker`` (only the
standard library and PyStemmer), so any module, ``worker.storage`` included, may import it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

WORD = re.compile(r"\w+", re.UNICODE)
LANGUAGES = {"en": "english", "fr": "french"}  # language code → Snowball stemmer
STEM_JOIN = "|"  # between the English and French stems of a word of unknown language (index)
_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss"})
_STEM_CACHE = 20_000  # words per language remembered by PyStemmer

Span = tuple[str, int, int]  # (folded word, start, end): offsets into the NFC text


# -- folding ----------------------------------------------------------------------------------


def _fold_once(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return _MARKS.sub("", decomposed).casefold().translate(_LIGATURES)


def fold(text: str) -> str:
    """Lower-case, accent-free form used on both sides of every comparison (idempotent:
    casefolding can produce characters that decompose again, so fold until stable)."""
    once = _fold_once(text)
    if once.isascii():
        return once
    twice = _fold_once(once)
    while twice != once:
        once, twice = twice, _fold_once(twice)
    return once


def nfc(text: str) -> str:
    """The composed form of ``text``: the one :func:`word_spans` offsets refer to (decomposed
    accents would otherwise cut words: "e" + U+0301 is not a ``\\w``)."""
    return unicodedata.normalize("NFC", text)


# -- words ------------------------------------------------------------------------------------


# Raw word → its folded words, shared by every document a process reads: a vocabulary is
# small beside the texts it makes (folding a word costs a few microseconds, a lookup a tenth).
_FOLDED: dict[str, tuple[str, ...]] = {}
_FOLDED_MAX = 500_000  # entries; then the table starts again (a hostile text of unique words)


def folded_parts(raw: str) -> tuple[str, ...]:
    r"""The folded words of one raw ``\w+`` run (ASCII: lower-cased, itself one word)."""
    parts = _FOLDED.get(raw)
    if parts is None:
        parts = (raw.lower(),) if raw.isascii() else tuple(WORD.findall(fold(raw)))
        if len(_FOLDED) >= _FOLDED_MAX:
            _FOLDED.clear()
        _FOLDED[raw] = parts
    return parts


# Non-ASCII character → whether a word containing it may fold into other than one word.
_SPLITS: dict[str, bool] = {}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def folds_one_to_one(text: str) -> bool:
    r"""Whether each ``\w+`` run of ``text`` folds into exactly one word, so that its runs are
    its words one for one: unless a word character in it folds into none or several ("½" is
    "1⁄2"). Each distinct non-ASCII character is looked at once (folding is per character)."""
    if text.isascii():
        return True
    for char in set(_NON_ASCII.findall(text)):
        splits = _SPLITS.get(char)
        if splits is None:
            splits = WORD.fullmatch(char) is not None and WORD.fullmatch(fold(char)) is None
            if len(_SPLITS) >= 100_000:  # a hostile text of every character there is
                _SPLITS.clear()
            _SPLITS[char] = splits
        if splits:
            return False
    return True


def word_spans(text: str) -> list[Span]:
    """The folded words of a document's ``text`` in order, each with the offsets of the word
    it comes from in ``nfc(text)`` (a word that folds into several, "½", gives each the same
    offsets)."""
    spans: list[Span] = []
    append = spans.append
    for m in WORD.finditer(nfc(text)):
        parts = folded_parts(m.group())
        if len(parts) == 1:
            append((parts[0], *m.span()))
        else:
            start, end = m.span()
            spans.extend((part, start, end) for part in parts)
    return spans


def words(text: str) -> list[str]:
    """The folded words of a document's ``text``, in order (see :func:`word_spans`)."""
    out: list[str] = []
    for raw in WORD.findall(nfc(text)):
        out.extend(folded_parts(raw))
    return out


def term_words(term: str) -> list[str]:
    """The folded words of a short text typed by a person: a query word or phrase, a thesaurus
    phrase, a line. Folded whole, then cut; the same words as :func:`words` except around a
    combining accent NFC cannot compose, which then joins the letters around it."""
    return WORD.findall(fold(term))


# -- stems ------------------------------------------------------------------------------------


def languages_for(language: str | None) -> tuple[str, ...]:
    """The languages a document is stemmed in: its own, or every one when it is unknown."""
    return (language,) if language in LANGUAGES else tuple(LANGUAGES)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Any:
    import Stemmer

    return Stemmer.Stemmer(LANGUAGES[language], _STEM_CACHE)


def stem(word: str, language: str) -> str:
    """Snowball stem of a *folded* word: 'trafficked' and 'trafficking' meet."""
    return _stemmer(language).stemWord(word)  # type: ignore[no-any-return]


def stems(words: list[str], language: str) -> list[str]:
    """:func:`stem` of each folded word, in one call."""
    return _stemmer(language).stemWords(words)  # type: ignore[no-any-return]


def all_stems(word: str) -> tuple[str, ...]:
    """The distinct stems of a folded word in every language, in :data:`LANGUAGES` order."""
    return tuple(dict.fromkeys(stem(word, language) for language in LANGUAGES))


def query_stems(word: str) -> frozenset[str]:
    """A query word is stemmed in every language: it matches a document word whose stem in
    the document's language is one of these."""
    return frozenset(all_stems(word))


def stem_table(vocabulary: Iterable[str], language: str) -> dict[str, str]:
    """Folded word → stem, for every word of ``vocabulary``."""
    distinct = list(dict.fromkeys(vocabulary))
    return dict(zip(distinct, stems(distinct, language), strict=True))
