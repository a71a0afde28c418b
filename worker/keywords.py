"""Keyword extraction (YAKE, via the MIT-licensed yake-rust) for English and French text."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from worker.match import fold

MAX_CHARS = 400_000  # YAKE is linear; a cap keeps a 500-page report from stalling a worker


@lru_cache(maxsize=4)
def _extractor(language: str) -> Any:
    import yake_rust

    return yake_rust.Yake(language=language, ngrams=3)


def extract_keywords(text: str, language: str | None, top: int = 15) -> list[str]:
    """The ``top`` key phrases, best first, without near-duplicates ('drogue' / 'drogues')."""
    if not text.strip():
        return []
    pairs = _extractor(language if language in ("en", "fr") else "en").get_n_best(
        text[:MAX_CHARS], n=top * 3
    )
    keywords: list[str] = []
    seen: list[str] = []
    for phrase, _score in pairs:
        key = fold(phrase).rstrip("s")
        if any(key == other or key in other.split() for other in seen):
            continue
        seen.append(key)
        keywords.append(phrase)
        if len(keywords) == top:
            break
    return keywords
