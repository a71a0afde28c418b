"""Keyphrases a reader would write down, for English and French documents (YAKE, via the
MIT-licensed yake-rust, over the main text only).

Plain YAKE over a whole PDF or page returns fragments: it joins words across line and sentence
breaks ("humains en Europe", "agricoles L'association ASTRA"), rewards furniture repeated on
every page of a site ("Download the English version") and mastheads repeated on every page of a
newsletter, and leaves phrases hanging on a function word ("fight against human"). So:

1. furniture goes first: short lines repeated within the document or set in capitals
   (:func:`boilerplate_lines`), and lines that recur across the source's documents
   (:func:`furniture_lines`, learned at extraction from the source's archive);
2. YAKE reads each remaining line, cut at sentence punctuation, as a sentence of its own, and a
   candidate is kept only where it occurs inside one such unit (never across a break);
3. a candidate is trimmed of leading and trailing function words and elided articles (l', d',
   qu'…), a lone word must be a name or an acronym ("Serbia", "GRETA", not "victims"), and
   near-duplicates merge on their lemmas (simplemma: "drogue" and "drogues", "human
   trafficking" and "combat human trafficking");
4. the phrase is shown as the document writes it: its most frequent spelling where it does not
   open a sentence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from worker.text import WORD, fold, nfc

# A word with its hyphenated parts ("Sud-Est", "non-punishment"): trimmed and spelled whole.
COMPOUND = re.compile(r"\w+(?:[-‐]\w+)*")

MAX_CHARS = 400_000  # YAKE is linear; a cap keeps a 500-page report from stalling a worker
MAX_PLACES = 5_000  # occurrences of a phrase's first word examined (a word on every line)
MAX_LINE_WORDS = 8  # longer lines are prose, never boilerplate within one document
MAX_PHRASE_WORDS = 6  # a phrase cut by a line wrap is completed up to this length
MAX_FURNITURE_WORDS = 14  # a site's recurring lines: menus, "Download the English version…"
_PAGE_BREAK = re.compile(r"\f|\n{2,}")
# Where a sentence ends inside a line: final punctuation followed by a space, or a separator
# set between spaces ("Newsletter n°23 – March 2025", "Home | News").
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;:,])\s+|\s+[–—|•·]\s+|\s*[«»“”\"()\[\]]\s*")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS = _word_set(
    """
    a an the and or but nor of to in on at by for from with without into onto upon about above
    below over under between among through during before after against within across along
    toward towards as than then so such this that these those there here it its it's is are was
    were be been being has have had do does did will would shall should can could may might
    must not no yes very also more most less least much many some any each every all both
    either neither other another same own which who whom whose what when where why how
    their them they we our us you your he she his her him i me my mine ours yours if while
    whether because since until unless though although via per including include includes
    new well just only even still already yet ever again further moreover however thus
    le la les un une des du de d l au aux et ou mais ni car donc or en dans sur sous par pour
    avec sans chez entre vers contre depuis pendant avant apres selon lors ce cet cette ces
    qui que qu quoi dont ou son sa ses leur leurs notre nos votre vos mon ma mes ton ta tes
    il elle ils elles on nous vous je tu se s c j m n t y ne pas plus moins tres aussi ainsi
    est sont etait etaient etre ete a ont avait avaient avoir fait faire peut peuvent doit
    tout tous toute toutes autre autres meme memes tel telle tels telles quel quelle quels
    quelles lorsqu lorsque puisqu puisque jusqu jusque quoiqu afin comme si dont notamment aupres
    fins cadre sein titre faveur lieu egard regard matiere face demeure reste entretien
    purpose purposes terms behalf order respect regarding concerning remains interview
    autour ici voici
    """
)
# The function words a phrase may hold inside ("traite des êtres humains", "exploitation par le
# travail", "Office on Drugs and Crime"); any other (a verb: "la France a réaffirmé") breaks it.
CONNECTORS = _word_set(
    """
    of for in on and the to against with by from
    de des du d l la le les en et a au aux par pour contre sur avec
    """
)
# Elided forms, written with an apostrophe: "l'exploitation", "d'êtres", "qu'elle"
ELISIONS = _word_set("l d j m n s t c qu jusqu lorsqu puisqu quoiqu presqu quelqu")
# Words that are never a keyphrase on their own, however capitalised (page furniture, dates,
# document types).
GENERIC = _word_set(
    """
    january february march april may june july august september october november december
    janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre
    monday tuesday wednesday thursday friday saturday sunday lundi mardi mercredi jeudi
    vendredi samedi dimanche page pages version download telecharger english french anglais
    francais francaise newsletter lettre information issue numero edition editorial home
    accueil news actualites contact menu search recherche read more lire suite mr mrs ms
    m mme dr international national regional european europeen europeenne europe ministry
    ministere office congress congres consortium quarterly trimestrielle trimestriel
    representation representative permanent permanente
    """
)


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


def furniture_lines(texts: Sequence[str], min_documents: int = 2) -> frozenset[str]:
    """Folded short lines that recur across several documents of one source (``texts``, one
    per document): a site's menus, footers and "Download the English version" lines, a
    newsletter's masthead. A line counts when it is in at least ``min_documents`` documents
    and, past five documents, in at least a fifth of them."""
    seen: Counter[str] = Counter()
    for text in texts:
        keys = {_line_key(line) for line in text.splitlines()}
        seen.update(k for k in keys if k and len(k.split()) <= MAX_FURNITURE_WORDS)
    threshold = max(min_documents, len(texts) // 5 if len(texts) > 5 else 0)
    return frozenset(k for k, n in seen.items() if n >= threshold)


def main_lines(pages: Sequence[str], furniture: Collection[str] = ()) -> list[str]:
    """The document's lines without furniture and mastheads: what keyphrases come from."""
    drop = boilerplate_lines(pages) | set(furniture)
    return [
        line.strip()
        for page in pages
        for line in page.splitlines()
        if line.strip() and _line_key(line) not in drop
    ]


def sentence_units(lines: Sequence[str]) -> list[str]:
    """Each line cut at its sentence and clause breaks: the units no keyphrase may cross."""
    return [u for u, _ in _units(lines)]


def _units(lines: Sequence[str]) -> list[tuple[str, bool]]:
    """The sentence units, each with whether it ends where a line wraps (no final
    punctuation): a phrase ending there may be cut short."""
    units: list[tuple[str, bool]] = []
    for line in lines:
        parts = [u.strip() for u in _SENTENCE_BREAK.split(nfc(line)) if u and u.strip()]
        wrapped = line.rstrip()[-1:].isalnum()
        units.extend((u, wrapped and k == len(parts) - 1) for k, u in enumerate(parts))
    return units


def _capped(units: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """The units within the first :data:`MAX_CHARS` characters: what YAKE reads."""
    total = 0
    for k, (unit, _) in enumerate(units):
        total += len(unit) + 2
        if total > MAX_CHARS:
            return units[:k]
    return units


@lru_cache(maxsize=4)
def _extractor(language: str) -> Any:
    import yake_rust

    return yake_rust.Yake(language=language, ngrams=3)


def yake_phrases(text: str, language: str, n: int) -> list[str]:
    """Plain YAKE's ``n`` best phrases of ``text``, best first (also the bench's baseline)."""
    language = language if language in ("en", "fr") else "en"
    return [p for p, _score in _extractor(language).get_n_best(text[:MAX_CHARS], n=n)]


def _lemmas(words: Sequence[str], language: str) -> tuple[str, ...]:
    import simplemma

    return tuple(fold(simplemma.lemmatize(w, lang=language)) for w in words)


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


@dataclass
class _Unit:
    """A sentence unit's words: folded, and their offsets in the unit's text."""

    text: str
    folded: list[str]
    spans: list[tuple[int, int]]
    wrapped: bool = False

    @classmethod
    def of(cls, text: str, wrapped: bool = False) -> _Unit:
        folded, spans = [], []
        for m in COMPOUND.finditer(text):
            folded.append(_fold_compound(m.group()))
            spans.append(m.span())
        return cls(text, folded, spans, wrapped)


class _Occurrences:
    """Where a folded word sequence occurs inside one unit, and how it is spelled there."""

    def __init__(self, units: Sequence[tuple[str, bool]]) -> None:
        self.units = [_Unit.of(u, wrapped) for u, wrapped in units]
        self.by_word: dict[str, list[tuple[int, int]]] = {}
        for u, unit in enumerate(self.units):
            for i, word in enumerate(unit.folded):
                self.by_word.setdefault(word, []).append((u, i))

    def find(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """(unit, first word index) of every occurrence of ``words`` within one unit."""
        if not words:
            return []
        out = []
        for u, i in self.by_word.get(words[0], [])[:MAX_PLACES]:
            folded = self.units[u].folded
            if folded[i : i + len(words)] == list(words):
                out.append((u, i))
        return out

    def complete(self, words: list[str]) -> list[str] | None:
        """``words`` continued while one next word follows most of its occurrences that do
        not end a unit ("fight against human" → "… trafficking": a line wrap cut it); None
        when no clean end is reached within :data:`MAX_PHRASE_WORDS`."""
        original = words
        while True:
            places = self.find(words)
            nexts = Counter(
                self.units[u].folded[i + len(words)]
                for u, i in places
                if i + len(words) < len(self.units[u].folded)
            )
            ends = [
                self.units[u].wrapped
                for u, i in places
                if i + len(words) == len(self.units[u].folded)
            ]
            if len(ends) == len(places) and all(ends):
                break  # always at a line wrap: what follows is unknown
            if ends and not all(ends):
                return words  # it ends a sentence or clause somewhere: complete as it is
            word, n = nexts.most_common(1)[0] if nexts else ("", 0)
            if not (n >= 0.75 * sum(nexts.values()) and (n >= 2 or (n and ends))):
                if not _weak(words[-1]):
                    return words
                break
            if len(words) == MAX_PHRASE_WORDS:
                break
            words = [*words, word]
        if words is original:
            return None
        return original if not _weak(original[-1]) else None

    def clean_edges(self, u: int, i: int, n: int) -> bool:
        """Whether the occurrence at ``i`` is bounded by a weak word, a break or a line wrap
        on both sides: "human trafficking" in "against human trafficking in", never "Fight
        against human" cut from "… human trafficking"."""
        folded = self.units[u].folded
        before = folded[i - 1] if i > 0 else None
        after = folded[i + n] if i + n < len(folded) else None
        return (before is None or _weak(before)) and (after is None or _weak(after))

    def spelling(self, u: int, i: int, n: int) -> str:
        unit = self.units[u]
        return unit.text[unit.spans[i][0] : unit.spans[i + n - 1][1]]

    def lower_inside(self, word: str) -> bool:
        """Whether ``word`` (folded) is written in lower case somewhere past a unit's start."""
        for u, i in self.by_word.get(word, []):
            if i > 0:
                start, end = self.units[u].spans[i]
                if self.units[u].text[start:end][:1].islower():
                    return True
        return False


def _fold_compound(token: str) -> str:
    return "-".join(WORD.findall(fold(token)))


def _weak(word: str) -> bool:
    """A word no keyphrase starts or ends on: a function word, an elision, a number."""
    return word in FUNCTION_WORDS or word in ELISIONS or word.isdigit() or len(word) < 2


def _trim(words: list[str]) -> tuple[int, int]:
    """The span of ``words`` left once weak words are cut from both ends."""
    start, end = 0, len(words)
    while start < end and _weak(words[start]):
        start += 1
    while end > start and _weak(words[end - 1]):
        end -= 1
    return start, end


def _is_acronym(spelling: str) -> bool:
    return 2 <= len(spelling) <= 10 and spelling.isupper() and spelling.isalpha()


def _spelled(occurrences: _Occurrences, places: list[tuple[int, int]], n: int) -> str | None:
    """The document's own spelling: the most frequent one not opening a unit (a capital
    there is only the sentence's), else the most frequent. None when it is only ever
    written in capitals (a heading) and is not an acronym."""
    inside = Counter(occurrences.spelling(u, i, n) for u, i in places if i > 0)
    anywhere = Counter(occurrences.spelling(u, i, n) for u, i in places)
    ranked = [s for s, _ in (inside or anywhere).most_common()]
    for spelling in ranked:
        if not mostly_upper(spelling) or all(_is_acronym(w) for w in spelling.split()):
            return " ".join(spelling.split())
    return None


def extract_keywords(
    text: str | Sequence[str],
    language: str | None,
    top: int = 15,
    furniture: Collection[str] = (),
) -> list[str]:
    """The ``top`` keyphrases of a document, best first. ``text`` is its pages (a string is
    split on blank lines and form feeds); ``furniture`` the folded lines its source repeats
    (:func:`furniture_lines`)."""
    pages = list(text) if not isinstance(text, str) else _PAGE_BREAK.split(text)
    language = language if language in ("en", "fr") else "en"
    units = _capped(_units(main_lines(pages, furniture)))
    if not units:
        return []
    text = "\n".join(u.rstrip(".,;:") + "." for u, _ in units)
    candidates = yake_phrases(text, language, top * 8)
    occurrences = _Occurrences(units)
    keywords: list[str] = []
    seen: list[tuple[str, ...]] = []
    for candidate in candidates:
        words = [_fold_compound(t) for t in COMPOUND.findall(candidate)]
        start, end = _trim(words)
        words = words[start:end]
        if not words or any(w in ("http", "https", "www") for w in words):
            continue
        if not occurrences.find(words):
            continue  # YAKE joined it across a break
        completed = occurrences.complete(words)
        if completed is None:
            continue
        words = completed
        if all(w in GENERIC or _weak(w) for w in words):
            continue
        places = occurrences.find(words)
        if len(words) > 1 and not any(occurrences.clean_edges(u, i, len(words)) for u, i in places):
            continue  # a fragment of a longer phrase in every occurrence
        if any(_weak(w) and w not in CONNECTORS for w in words[1:-1]):
            continue  # a verb or an adverb inside: a clause, not a phrase
        spelling = _spelled(occurrences, places, len(words))
        if spelling is None or (language == "fr" and " a " in f" {spelling[1:-1]} "):
            continue  # "a" unaccented inside a French phrase is the verb (à is the preposition)
        if len(words) == 1 and (
            len(words[0]) < 3
            or not (_is_acronym(spelling) or spelling[:1].isupper())
            or not any(i > 0 for _, i in places)
            or occurrences.lower_inside(words[0])
        ):
            continue  # a lone word must be a name or an acronym
        key = _lemmas([p for w in words for p in w.split("-")], language)
        if len(set(key)) < len(key) or any(
            _contains(other, key) or _contains(key, other) or set(other) == set(key)
            for other in seen
        ):
            continue
        seen.append(key)
        keywords.append(spelling)
        if len(keywords) == top:
            break
    return keywords
