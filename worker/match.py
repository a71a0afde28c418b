"""Stage 5: does a document match a subscription, and why? Pure functions over text.

A document is indexed once (folded words, their stems in the document's language, page and
offsets); every query is evaluated against that index, and only the terms of the branches
that made the query true are reported, with pages and highlighted snippets. Many
subscriptions go through :class:`Matcher`, whose Aho-Corasick prefilter skips those that
cannot match.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.prefilter import Prefilter
from worker.query import (
    LANGUAGES,
    WORD,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    fold,
    parse_query,
    query_stems,
    stems,
)

__all__ = [
    "DocumentMeta",
    "IndexedText",
    "Matcher",
    "QueryError",
    "SubscriptionSpec",
    "evaluate",
    "explain",
    "fold",
    "parse_query",
    "passes_filters",
]

Witness = dict[Term, set[int]]  # term -> word indices where it starts, in the true branches


@dataclass(frozen=True)
class DocumentMeta:
    """What ``source:``/``lang:``/``kind:`` filters and stemming need to know."""

    source: str | None = None
    language: str | None = None
    kind: str | None = None

    def value(self, name: str) -> str | None:
        return {"sources": self.source, "languages": self.language, "kinds": self.kind}.get(name)


def passes_filters(filters: Mapping[str, Any] | None, meta: DocumentMeta) -> bool:
    """Subscription.filters ({"sources", "languages", "kinds"}): every non-empty list must
    contain the document's value."""
    for name, allowed in (filters or {}).items():
        if allowed and (meta.value(name) or "").casefold() not in {
            str(a).casefold() for a in allowed
        }:
            return False
    return True


# -- the document index ---------------------------------------------------------------------


@dataclass
class IndexedText:
    """A document's words, folded and stemmed, with page and character offsets."""

    pages: list[str]
    languages: tuple[str, ...] = tuple(LANGUAGES)
    words: list[str] = field(default_factory=list)
    stems: list[tuple[str, ...]] = field(default_factory=list)  # one stem per language
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # (page, start, end)
    by_stem: dict[str, list[int]] = field(default_factory=dict)
    by_word: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, pages: list[str], language: str | None = None) -> IndexedText:
        """Index ``pages``; words are stemmed in ``language`` (both EN and FR if unknown)."""
        languages = (language,) if language in LANGUAGES else tuple(LANGUAGES)
        pages = [unicodedata.normalize("NFC", p) for p in pages]
        index = cls(pages, languages)  # type: ignore[arg-type]
        folded: dict[str, tuple[str, ...]] = {}
        for page_no, text in enumerate(pages, start=1):
            for m in WORD.finditer(text):
                raw = m.group()
                words = folded.get(raw)
                if words is None:
                    words = folded[raw] = tuple(WORD.findall(fold(raw)))
                for word in words:
                    index.words.append(word)
                    index.spans.append((page_no, m.start(), m.end()))
        vocabulary = sorted(set(index.words))
        per_language = [
            dict(zip(vocabulary, stems(vocabulary, lang), strict=True)) for lang in languages
        ]
        by_stem: defaultdict[str, list[int]] = defaultdict(list)
        by_word: defaultdict[str, list[int]] = defaultdict(list)
        for i, word in enumerate(index.words):
            word_stems = tuple(table[word] for table in per_language)
            index.stems.append(word_stems)
            by_word[word].append(i)
            for s in set(word_stems):
                by_stem[s].append(i)
        index.by_stem, index.by_word = dict(by_stem), dict(by_word)
        return index

    def stream(self) -> str:
        """Space-separated stems (one run per language), then folded words; pages are
        separated by '|' so no pattern spans two pages. Input of the prefilter."""
        runs = []
        for k in range(len(self.languages)):
            runs.append(self._run(lambda i, k=k: self.stems[i][k]))
        runs.append(self._run(lambda i: self.words[i]))
        return " || ".join(runs)

    def _run(self, token: Any) -> str:
        parts = [" "]
        page = 1
        for i in range(len(self.words)):
            if self.spans[i][0] != page:
                page = self.spans[i][0]
                parts.append("| ")
            parts.append(token(i))
            parts.append(" ")
        return "".join(parts)

    def _matches(self, i: int, word: str, prefix: bool) -> bool:
        if prefix:
            return self.words[i].startswith(word)
        return not query_stems(word).isdisjoint(self.stems[i])

    def find(self, term: Term) -> list[int]:
        """Sorted word indices where ``term`` starts (a phrase never runs across pages)."""
        first, rest = term.words[0], term.words[1:]
        if term.prefix and not rest:
            starts = sorted(
                i for w, idx in self.by_word.items() if w.startswith(first) for i in idx
            )
        else:
            lists = [self.by_stem.get(s, []) for s in query_stems(first)]
            starts = sorted(set().union(*lists)) if len(lists) > 1 else list(lists[0])
        if not rest:
            return starts
        hits = []
        last = len(rest) - 1
        for start in starts:
            end = start + len(rest)
            if end >= len(self.words) or self.spans[end][0] != self.spans[start][0]:
                continue
            if all(
                self._matches(start + 1 + k, word, term.prefix and k == last)
                for k, word in enumerate(rest)
            ):
                hits.append(start)
        return hits

    def page_of(self, start: int) -> int:
        return self.spans[start][0]

    def snippet(self, start: int, length: int, width: int = 90) -> str:
        page, begin, _ = self.spans[start]
        end = self.spans[start + length - 1][2]
        text = self.pages[page - 1]
        left = max(0, begin - width)
        right = min(len(text), end + width)
        before = " ".join(text[left:begin].split())
        after = " ".join(text[end:right].split())
        gap = "" if after[:1] in ".,;:!?)" else " "
        return (
            f"{'…' if left else ''}{before} «{' '.join(text[begin:end].split())}»{gap}"
            f"{after}{'…' if right < len(text) else ''}"
        ).strip()


# -- evaluation -------------------------------------------------------------------------------


class _Finder(Protocol):
    def __call__(self, term: Term) -> list[int]: ...


def _near(node: Near, find: _Finder, index: IndexedText) -> Witness | None:
    """Pairs of non-overlapping occurrences, on one page, with at most ``distance`` words
    between them, in either order."""
    left, right = find(node.left), find(node.right)
    if not left or not right:
        return None
    len_l, len_r, n = len(node.left.words), len(node.right.words), node.distance
    used_l: set[int] = set()
    used_r: set[int] = set()
    for a in left:
        lo = bisect_left(right, a - len_r - n)
        for b in right[lo:]:
            if b > a + len_l + n:
                break
            before = a + len_l <= b and b - (a + len_l) <= n
            after = b + len_r <= a and a - (b + len_r) <= n
            if (before or after) and index.page_of(a) == index.page_of(b):
                used_l.add(a)
                used_r.add(b)
    if not used_l:
        return None
    witness: Witness = {node.left: used_l}
    witness.setdefault(node.right, set()).update(used_r)
    return witness


def _merge(into: Witness, other: Witness) -> None:
    for term, hits in other.items():
        into.setdefault(term, set()).update(hits)


def evaluate(node: Node, index: IndexedText, meta: DocumentMeta | None = None) -> Witness | None:
    """None when the document does not match; otherwise the occurrences of the terms of the
    branches that made the query true (a failed AND under an OR contributes nothing)."""
    found: dict[Term, list[int]] = {}
    meta = meta or DocumentMeta()

    def find(term: Term) -> list[int]:
        if term not in found:
            found[term] = index.find(term)
        return found[term]

    def walk(node: Node) -> Witness | None:
        if isinstance(node, Term):
            hits = find(node)
            return {node: set(hits)} if hits else None
        if isinstance(node, Near):
            return _near(node, find, index)
        if isinstance(node, Field):
            value = meta.value(node.name)
            return {} if value is not None and value.casefold() == node.value else None
        if isinstance(node, Not):
            return {} if walk(node.child) is None else None
        witness: Witness = {}
        if isinstance(node, And):
            for child in node.children:
                part = walk(child)
                if part is None:
                    return None
                _merge(witness, part)
            return witness
        matched = False
        for child in node.children:
            part = walk(child)
            if part is not None:
                matched = True
                _merge(witness, part)
        return witness if matched else None

    return walk(node)


def _terms_in_order(node: Node) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Near):
        yield node.left
        yield node.right
    elif isinstance(node, Not):
        yield from _terms_in_order(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _terms_in_order(child)


def explain(
    node: Node, index: IndexedText, meta: DocumentMeta | None = None, max_snippets: int = 3
) -> dict[str, Any] | None:
    """None when the document does not match; otherwise which terms matched, where, and how:
    ``{"terms": [{"term", "count", "pages", "snippets": [{"page", "text"}], "thesaurus"?}]}``."""
    witness = evaluate(node, index, meta)
    if witness is None:
        return None
    terms = []
    labels = {t: t for t in _terms_in_order(node) if t in witness}  # first spelling wins
    for term in labels:
        hits = sorted(witness[term])
        entry: dict[str, Any] = {
            "term": term.label,
            "count": len(hits),
            "pages": sorted({index.page_of(h) for h in hits}),
            "snippets": [
                {"page": index.page_of(h), "text": index.snippet(h, len(term.words))}
                for h in hits[:max_snippets]
            ],
        }
        if term.via:
            entry["thesaurus"] = term.via
        terms.append(entry)
    return {"terms": terms}


# -- many subscriptions -----------------------------------------------------------------------


class Expander(Protocol):
    def expand(self, node: Node) -> Node: ...


@dataclass(frozen=True)
class SubscriptionSpec:
    """What matching needs from a subscription row (kept apart from the ORM: pure)."""

    key: int | str
    query: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    thesaurus: bool = False


@dataclass
class Matcher:
    """Every subscription compiled once, behind one Aho-Corasick prefilter."""

    specs: list[SubscriptionSpec]
    nodes: dict[int | str, Node]
    prefilter: Prefilter
    invalid: list[int | str]

    @classmethod
    def build(cls, specs: Sequence[SubscriptionSpec], thesaurus: Expander | None) -> Matcher:
        nodes: dict[int | str, Node] = {}
        invalid: list[int | str] = []
        for spec in specs:
            try:
                node = parse_query(spec.query)
            except QueryError:
                invalid.append(spec.key)  # refused at subscribe time; an old row is skipped
                continue
            nodes[spec.key] = thesaurus.expand(node) if spec.thesaurus and thesaurus else node
        return cls(list(specs), nodes, Prefilter(nodes), invalid)

    def match(
        self,
        index: IndexedText,
        meta: DocumentMeta,
        title: IndexedText | None = None,
        use_prefilter: bool = True,
    ) -> list[tuple[int | str, dict[str, Any]]]:
        """(key, explanation) of every subscription the document matches, in spec order;
        the title is searched when the text does not match."""
        if use_prefilter:
            stream = index.stream() + (" || " + title.stream() if title else "")
            candidates = self.prefilter.candidates(stream)
        else:
            candidates = set(self.nodes)
        out = []
        for spec in self.specs:
            if spec.key not in candidates or not passes_filters(spec.filters, meta):
                continue
            node = self.nodes[spec.key]
            explanation = explain(node, index, meta)
            if explanation is None and title is not None:
                explanation = explain(node, title, meta)
                if explanation is not None:
                    explanation["in"] = "title"
            if explanation is not None:
                out.append((spec.key, explanation))
        return out


def fingerprint(specs: Sequence[SubscriptionSpec], extra: str = "") -> str:
    """Changes whenever a subscription (or the thesaurus) changes: the matcher cache key."""
    data = [[s.key, s.query, dict(s.filters), s.thesaurus] for s in specs]
    return hashlib.sha256(
        (json.dumps(data, sort_keys=True, default=str) + extra).encode()
    ).hexdigest()


_CACHE: dict[str, Matcher] = {}


def matcher_for(
    specs: Sequence[SubscriptionSpec], thesaurus: Expander | None, thesaurus_version: str = ""
) -> Matcher:
    """The matcher of this set of subscriptions, rebuilt only when its fingerprint changes."""
    key = fingerprint(specs, thesaurus_version)
    matcher = _CACHE.get(key)
    if matcher is None:
        matcher = Matcher.build(specs, thesaurus)
        _CACHE.clear()  # one set of subscriptions is live at a time
        _CACHE[key] = matcher
    return matcher
