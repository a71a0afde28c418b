"""Keyword extraction (YAKE, via the MIT-licensed yake-rust) for English and French text.

Newsletters repeat their masthead ("Liberté Égalité Fraternité", "MINISTÈRE DE L'EUROPE ET
DES AFFAIRES ÉTRANGÈRES") on several pages; YAKE rewards exactly that kind of repetition, so
boilerplate lines are removed before extraction and upper-case phrases after it. Phrases are
deduplicated on their lemmas (simplemma) so 'drogue' and 'drogues' count once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from worker.text import WORD, fold

MAX_CHARS = 400_000  # YAKE is linear; a cap keeps a 500-page report from stalling a worker
MAX_LINE_WORDS = 8  # longer lines are prose, never boilerplate
_PAGE_BREAK = re.compile(r"\f|\n{2,}")


def _line_key(line: str) -> str:
    return " ".join(WORD.findall(fold(line)))


def mostly_upper(text: str) -> bool:
    """Headers and mastheads are set in capitals; acronyms alone (UNODC, GRETA) are not."""
    letters = [c for c in text if c.isalpha()]
    words = [w for w in WORD.findall(text) if len(w) > 1]
    return len(words) > 1 and sum(c.isupper() for c in letters) > 0.6 * len(letters)


def boilerplate_lines(pages: Sequence[str]) -> set[str]:
    """Folded short lines that repeat on most pages (or three times in one text), or are set
    in capitals: running headers, footers and mastheads."""
    per_page: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for page in pages:
        keys = [_line_key(line) for line in page.splitlines()]
        keys = [k for k in keys if k and len(k.split()) <= MAX_LINE_WORDS]
        total.update(keys)
        per_page.update(set(keys))
    found = {k for k, n in total.items() if n >= 3}
    if len(pages) >= 3:
        found |= {k for k, n in per_page.items() if n > len(pages) / 2}
    for page in pages:
        found |= {_line_key(line) for line in page.splitlines() if mostly_upper(line)}
    found.discard("")
    return found


def strip_boilerplate(pages: Sequence[str]) -> str:
    """The text without boilerplate lines; each removed line becomes a sentence break so
    YAKE never joins the words around it into one phrase."""
    drop = boilerplate_lines(pages)
    kept = []
    for page in pages:
        lines = page.splitlines()
        for index, line in enumerate(lines):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if _line_key(line) in drop:
                kept.append(".\n")
            elif _is_heading(line, following):
                kept.append(line + ".\n")
            else:
                kept.append(line + "\n")
        kept.append("\n")
    return "".join(kept)


def _is_heading(line: str, following: str) -> bool:
    """A short line without final punctuation before a capitalised one: a heading, which must
    not run into the sentence after it ('Éditorial La traite')."""
    stripped = line.strip()
    return (
        0 < len(stripped.split()) <= 5
        and stripped[-1:].isalnum()
        and following.strip()[:1].isupper()
    )


@lru_cache(maxsize=4)
def _extractor(language: str) -> Any:
    import yake_rust

    return yake_rust.Yake(language=language, ngrams=3)


def _lemmas(phrase: str, language: str) -> tuple[str, ...]:
    import simplemma

    return tuple(fold(simplemma.lemmatize(w, lang=language)) for w in WORD.findall(phrase))


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def extract_keywords(text: str | Sequence[str], language: str | None, top: int = 15) -> list[str]:
    """The ``top`` key phrases, best first: no boilerplate, no upper-case headers, and no
    phrase whose lemmas repeat or are contained in a better one ('drogue' / 'drogues').
    ``text`` is the document's pages (a string is split on blank lines and form feeds)."""
    pages = list(text) if not isinstance(text, str) else _PAGE_BREAK.split(text)
    language = language if language in ("en", "fr") else "en"
    cleaned = strip_boilerplate(pages)
    if not cleaned.strip(". \n"):
        return []
    pairs = _extractor(language).get_n_best(cleaned[:MAX_CHARS], n=top * 4)
    keywords: list[str] = []
    seen: list[tuple[str, ...]] = []
    for phrase, _score in pairs:
        if mostly_upper(phrase):
            continue
        key = _lemmas(phrase, language)
        if (
            not key
            or len(set(key)) < len(key)
            or any(_contains(other, key) or _contains(key, other) for other in seen)
        ):
            continue
        seen.append(key)
        keywords.append(phrase)
        if len(keywords) == top:
            break
    return keywords
