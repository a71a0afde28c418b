"""Stage 5: does a document match a subscription, and why? Pure functions over text.

A document is indexed once (folded words, their stems in the document's language, page and
offsets); every query is evaluated against that index, and only the terms of the branches
that made the query true are reported, with pages and snippets that mark the document's own
words. A bare word is looked up by stem, a quoted phrase by its folded words (``Term.exact``).
Many subscriptions go through :class:`Matcher`, whose Aho-Corasick prefilter skips those that
cannot match.

The work of one query on one document is bounded, whatever the document (see
:func:`evaluate`): each term is looked for at no more than :data:`MAX_POSITIONS` places, a
``NEAR`` looks at each position of its two sides once (two binary searches each), and the
parser (``worker.query``) bounds the number of words and NEARs of a query.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, Protocol, overload

from markupsafe import Markup, escape

from worker.prefilter import Prefilter
from worker.query import And, Field, Near, Node, Not, Or, QueryError, Term, parse_query
from worker.text import (
    LANGUAGES,
    STEM_JOIN,
    WORD,
    fold,
    folds_one_to_one,
    languages_for,
    nfc,
    query_stems,
    stem_table,
    word_spans,
)
from worker.text import (
    words as page_words,
)

__all__ = [
    "MAX_POSITIONS",
    "DocumentMeta",
    "IndexedText",
    "Matcher",
    "QueryError",
    "SubscriptionSpec",
    "Work",
    "compile_query",
    "evaluate",
    "explain",
    "explain_document",
    "fold",
    "marked_html",
    "parse_query",
    "passes_filters",
]

Witness = dict[Term, set[int]]  # term -> word indices where it starts, in the true branches

# A term is looked for at no more than this many places of one document, the first ones in
# reading order: more than a content word occurs in a 500-page report (a function word such as
# "the" may pass it; a phrase is anchored on its rarest word, so "the united nations" is not
# affected). Past it, the term's other occurrences are neither counted nor paired by NEAR.
MAX_POSITIONS = 10_000


@dataclass
class Work:
    """Positions examined while evaluating queries: the unit of the cost bound."""

    steps: int = 0


@dataclass(frozen=True)
class DocumentMeta:
    """What ``source:``/``lang:``/``kind:``/``tag:`` filters and stemming need to know."""

    source: str | None = None
    language: str | None = None
    kind: str | None = None
    tags: frozenset[str] = frozenset()  # the taxonomy concepts the document mentions

    def value(self, name: str) -> str | None:
        return {"sources": self.source, "languages": self.language, "kinds": self.kind}.get(name)

    def has(self, name: str, value: str) -> bool:
        """Whether the filter ``name:value`` holds (``tags``: one of the document's tags)."""
        if name == "tags":
            return value in self.tags
        own = self.value(name)
        return own is not None and own.casefold() == value


def passes_filters(filters: Mapping[str, Any] | None, meta: DocumentMeta) -> bool:
    """Subscription.filters ({"sources", "languages", "kinds"}): every non-empty list must
    contain the document's value."""
    for name, allowed in (filters or {}).items():
        if allowed and not any(meta.has(name, str(a).casefold()) for a in allowed):
            return False
    return True


# -- the document index ---------------------------------------------------------------------


@dataclass
class IndexedText:
    """A document's words, folded and stemmed, with page and character offsets: ``words``
    and ``by_word`` serve quoted phrases and prefixes, ``stems`` and ``by_stem`` bare words."""

    pages: list[str]
    languages: tuple[str, ...] = tuple(LANGUAGES)
    words: list[str] = field(default_factory=list)
    stems: Sequence[tuple[str, ...]] = field(default_factory=list)  # one stem per language
    page_no: list[int] = field(default_factory=list)  # the page (from 1) of each word
    page_start: list[int] = field(default_factory=list)  # the index of each page's first word
    by_stem: Mapping[str, list[int]] = field(default_factory=dict)
    by_word: Mapping[str, list[int]] = field(default_factory=dict)
    # the distinct folded words, sorted (None: sorted the first time a prefix asks for them)
    _vocabulary: list[str] | None = field(default=None, repr=False)
    # Character offsets of each page's words, found when a snippet needs them: most pages of
    # most documents are never quoted, and offsets cost more than the words themselves.
    _offsets: dict[int, _PageSpans] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, pages: list[str], language: str | None = None) -> IndexedText:
        """Index ``pages``; words are stemmed in ``language`` (both EN and FR if unknown)."""
        languages = languages_for(language)
        pages = [nfc(p) for p in pages]  # the text the spans point into
        index = cls(pages, languages)
        words = index.words
        for page_no, text in enumerate(pages, start=1):
            index.page_start.append(len(words))
            words.extend(page_words(text))
            index.page_no.extend([page_no] * (len(words) - index.page_start[-1]))
        by_word: dict[str, list[int]] = {}
        for i, word in enumerate(words):
            at = by_word.get(word)
            if at is None:
                by_word[word] = [i]
            else:
                at.append(i)
        vocabulary = sorted(by_word)
        per_language = [stem_table(vocabulary, lang) for lang in languages]
        index.stems = list(zip(*([table[w] for w in words] for table in per_language), strict=True))
        by_stem: dict[str, list[int]] = {}
        merged = set()  # stems of several words: their positions are sorted once, at the end
        for word, positions in by_word.items():
            for s in {table[word] for table in per_language}:
                if s in by_stem:
                    by_stem[s] = by_stem[s] + positions
                    merged.add(s)
                else:
                    by_stem[s] = positions  # shared with by_word: never modified in place
        for s in merged:
            by_stem[s].sort()
        index.by_stem, index.by_word = by_stem, by_word
        index._vocabulary = vocabulary
        return index

    @classmethod
    def from_tokens(
        cls,
        pages: list[str],
        page_words: list[list[str]],
        page_stems: list[list[str]],
        language: str | None = None,
    ) -> IndexedText:
        """The index of ``pages`` from the tokens the search index stored for them
        (``worker.storage.textsearch``: per page its folded words and their stem tokens):
        what :meth:`build` would make, without folding and stemming the text again. Word
        positions are found when a query asks for a word (a search asks for a few)."""
        languages = languages_for(language)
        index = cls([nfc(p) for p in pages], languages)
        words = index.words
        for page_no, these in enumerate(page_words, start=1):
            index.page_start.append(len(words))
            words.extend(these)
            index.page_no.extend([page_no] * len(these))
        tokens = [t for page in page_stems for t in page]
        index.stems = _StemTokens(tokens)
        index.by_word = _Positions(lambda w: _occurrences(words, w))
        if len(languages) == 1:
            index.by_stem = _Positions(lambda s: _occurrences(tokens, s))
        else:  # "en|fr": a word's stems in both languages (one when they are the same)
            index.by_stem = _Positions(
                lambda s: [i for i, x in enumerate(tokens) if s in x.split(STEM_JOIN)]
            )
        return index

    @property
    def vocabulary(self) -> list[str]:
        """The distinct folded words, sorted: a prefix's words are contiguous in it."""
        if self._vocabulary is None:
            self._vocabulary = sorted(set(self.words))
        return self._vocabulary

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
            if self.page_no[i] != page:
                page = self.page_no[i]
                parts.append("| ")
            parts.append(token(i))
            parts.append(" ")
        return "".join(parts)

    def _word_positions(
        self, word: str, prefix: bool, limit: int, work: Work, exact: bool = False
    ) -> list[int]:
        """The first ``limit`` word indices where ``word`` (stemmed, as written when
        ``exact``, or as a prefix of the folded word) occurs. The index's lists are sorted, so
        the first ``limit`` of their union come from the first ``limit`` of each; a prefix's
        words are contiguous in the sorted vocabulary. Work: the lists looked at plus the
        positions returned."""
        if prefix:
            lo = hi = bisect_left(self.vocabulary, word)
            while hi < len(self.vocabulary) and self.vocabulary[hi].startswith(word):
                hi += 1
            lists = [self.by_word[w] for w in self.vocabulary[lo:hi]]  # disjoint
        elif exact:
            lists = [self.by_word[word]] if word in self.by_word else []
        else:
            lists = [self.by_stem[s] for s in query_stems(word) if s in self.by_stem]
        if not lists:
            positions: list[int] = []
        elif len(lists) == 1:
            positions = lists[0][:limit]
        elif prefix:
            positions = list(islice(heapq.merge(*lists), limit))
        else:  # one list per language: they overlap
            positions = sorted(set().union(*(each[:limit] for each in lists)))[:limit]
        work.steps += len(lists) + len(positions)
        return positions

    def _occurrences(self, word: str, exact: bool) -> int:
        """How often a (non-prefix) word occurs, at most: no list is built."""
        if exact:
            return len(self.by_word.get(word, ()))
        return sum(len(self.by_stem.get(s, ())) for s in query_stems(word))

    def find(self, term: Term, limit: int = MAX_POSITIONS, work: Work | None = None) -> list[int]:
        """Sorted word indices where ``term`` starts (a phrase never runs across pages), at
        most ``limit``. A word's are its first ``limit`` occurrences in reading order; a
        phrase is anchored on its rarest word: only the
        first ``limit`` occurrences of that word are tried, each with one comparison per
        other word of the phrase, so the work is at most ``limit`` × the number of words.
        An exact term compares folded words, never stems: "criminality" is not "criminal"."""
        work = work if work is not None else Work()
        words, last, exact = term.words, len(term.words) - 1, term.exact
        if not last:
            return self._word_positions(words[0], term.prefix, limit, work, exact)
        # The anchor: the rarest word that is not a prefix (only the last word can be one).
        anchor = min(
            range(last if term.prefix else last + 1),
            key=lambda k: self._occurrences(words[k], exact),
        )
        others = [
            (k - anchor, word, term.prefix and k == last)
            for k, word in enumerate(words)
            if k != anchor
        ]
        wanted = {} if exact else {w: query_stems(w) for _, w, prefix in others if not prefix}
        page, stems_at, words_at, size = self.page_no, self.stems, self.words, len(self.words)
        hits = []
        for at in self._word_positions(words[anchor], False, limit, work, exact):
            start = at - anchor
            end = start + last
            work.steps += 1
            if start < 0 or end >= size or page[end] != page[start]:
                continue
            for offset, word, prefix in others:
                work.steps += 1
                i = at + offset
                if prefix:
                    if not words_at[i].startswith(word):
                        break
                elif exact:
                    if words_at[i] != word:
                        break
                elif wanted[word].isdisjoint(stems_at[i]):
                    break
            else:
                hits.append(start)
        return hits

    def page_of(self, start: int) -> int:
        return self.page_no[start]

    def offsets(self, i: int) -> tuple[int, int]:
        """Start and end, in its page's text, of the word at index ``i``."""
        page = self.page_no[i]
        spans = self._offsets.get(page)
        if spans is None:
            spans = self._offsets[page] = _PageSpans(self.pages[page - 1])
        return spans.at(i - self.page_start[page - 1])

    @property
    def spans(self) -> list[tuple[int, int, int]]:
        """(page, start, end) of every word: the whole table, for reference implementations
        (tests, benches); the matcher itself asks :meth:`offsets` for the few it quotes."""
        return [(self.page_no[i], *self.offsets(i)) for i in range(len(self.words))]

    def snippet(self, start: int, length: int, width: int = 90) -> str:
        """The text around an occurrence, its own words (as the document spells them, spaces
        and line breaks made one space) between « and »."""
        page = self.page_no[start]
        begin = self.offsets(start)[0]
        end = self.offsets(start + length - 1)[1]
        text = self.pages[page - 1]
        left = max(0, begin - width)
        right = min(len(text), end + width)
        before, after = text[left:begin], text[end:right]
        # A space on either side of the match only where the document has one: "l'«exploitation»",
        # "«victims»," and "[/«b»]" are quoted as written.
        return (
            f"{'…' if left else ''}{_spaced(before)}«{' '.join(text[begin:end].split())}»"
            f"{_spaced(after)}{'…' if right < len(text) else ''}"
        ).strip()


def marked_html(snippet: str, *, keep_quotes: bool = True) -> Markup:
    """A snippet's «matched» words inside ``<mark>``, everything else escaped (site text is
    data). Emails keep the «» inside the tag, so the plain-text part derived from the HTML
    still shows what matched; a web page drops them (the highlight says it)."""
    inner = r"«\1»" if keep_quotes else r"\1"
    return Markup(re.sub(r"«(.*?)»", rf"<mark>{inner}</mark>", str(escape(snippet))))


def _spaced(text: str) -> str:
    """``text`` with each run of spaces and line breaks made one space, ends included."""
    inner = " ".join(text.split())
    if not inner:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")


class _PageSpans:
    """The offsets of a page's words, found as far as a snippet needs them (snippets quote
    a few occurrences; a loop over every word before them costs more than the rest of an
    explanation). The runs before a wanted word are skipped by a regex that consumes 64 of
    them per match (a match object per run costs twice as much), and the text passed is
    checked once for a character that folds into other than one word ("½"); such a page
    comes whole from :func:`word_spans`, whose words are exactly the index's."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._known: dict[int, tuple[int, int]] = {}
        self._next = 0  # the index of the word that starts at or after self._pos
        self._pos = 0
        self._checked = 0  # the text before this offset folds one word per run
        self._whole: list[tuple[int, int]] | None = None

    def at(self, k: int) -> tuple[int, int]:
        if self._whole is not None:
            return self._whole[k]
        span = self._known.get(k)
        if span is not None:
            return span
        if k < self._next:  # behind the scan: start again from the nearest word known before
            before = max((i for i in self._known if i < k), default=None)
            self._next, self._pos = (0, 0)
            if before is not None:
                self._next, self._pos = before + 1, self._known[before][1]
        pos, todo = self._pos, k - self._next
        for skip, size in _SKIPS:
            while todo >= size and (passed := skip.match(self._text, pos)) is not None:
                pos, todo = passed.end(), todo - size
        run = WORD.search(self._text, pos) if todo == 0 else None
        # the k-th run is the k-th word unless a word before it folds into several (then it
        # may also lie past the last run)
        end = len(self._text) if run is None else run.end()
        if end > self._checked:
            if not folds_one_to_one(self._text[self._checked : end]):
                self._whole = [(a, b) for _, a, b in word_spans(self._text)]
                return self._whole[k]
            self._checked = end
        if run is None:
            raise IndexError(k)
        self._next, self._pos = k + 1, run.end()
        self._known[k] = span = run.span()
        return span


# Skip n runs of word characters (possessive: no backtracking into a run)
_SKIPS = tuple((re.compile(rf"(?:\W*+\w++){{{n}}}"), n) for n in (64, 8, 1))


def _occurrences(tokens: list[str], token: str) -> list[int]:
    """The indices of ``token`` in ``tokens``: list.index scans in C, so the loop turns once
    per occurrence, not once per token."""
    found: list[int] = []
    at = -1
    try:
        while True:
            at = tokens.index(token, at + 1)
            found.append(at)
    except ValueError:
        return found


class _StemTokens(Sequence[tuple[str, ...]]):
    """The stems of each word from the stored tokens ("en|fr" when the language is unknown),
    split into a tuple only for the words a query looks at (a search looks at a few)."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens

    def __len__(self) -> int:
        return len(self._tokens)

    @overload
    def __getitem__(self, i: int) -> tuple[str, ...]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[str, ...]]: ...
    def __getitem__(self, i: int | slice) -> tuple[str, ...] | Sequence[tuple[str, ...]]:
        if isinstance(i, slice):
            return [tuple(t.split(STEM_JOIN)) for t in self._tokens[i]]
        return tuple(self._tokens[i].split(STEM_JOIN))


class _Positions(Mapping[str, list[int]]):
    """Word (or stem) → its sorted positions, found the first time a query asks for it. Only
    lookups are supported: a search index built from stored tokens is never iterated."""

    def __init__(self, find: Any) -> None:
        self._find = find
        self._found: dict[str, list[int]] = {}

    def _positions(self, key: str) -> list[int]:
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._find(key)
        return found

    def __getitem__(self, key: str) -> list[int]:
        found = self._positions(key)
        if not found:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._positions(key))

    def __iter__(self) -> Any:
        raise TypeError("positions found on demand cannot be listed")

    def __len__(self) -> int:
        raise TypeError("positions found on demand cannot be counted")


# -- evaluation -------------------------------------------------------------------------------


class _Finder(Protocol):
    def __call__(self, term: Term) -> list[int]: ...


def _partners(
    these: list[int],
    length: int,
    others: list[int],
    other_length: int,
    n: int,
    page: list[int],
) -> set[int]:
    """The occurrences in ``these`` (of ``length`` words) that have an occurrence in
    ``others`` at most ``n`` words before or after them, on their page, not overlapping.

    Only the nearest other occurrence on each side can qualify (pages only grow along the
    text), so each occurrence costs two binary searches, not a scan of its window."""
    used = set()
    size = len(others)
    after = before = 0  # both searches only move forward: ``these`` is sorted
    for a in these:
        end = a + length  # the first word after this occurrence
        after = bisect_left(others, end, after)
        if after < size and others[after] - end <= n and page[others[after]] == page[a]:
            used.add(a)
            continue
        before = bisect_right(others, a - other_length, before)
        if before:
            b = others[before - 1]
            if a - (b + other_length) <= n and page[b] == page[a]:
                used.add(a)
    return used


def _near(node: Near, find: _Finder, index: IndexedText, work: Work) -> Witness | None:
    """Pairs of non-overlapping occurrences, on one page, with at most ``distance`` words
    between them, in either order: every occurrence of either side that is in such a pair.
    Near-linear: O((L + R) log(L + R)) for L and R occurrences, whatever the distance."""
    left, right = find(node.left), find(node.right)
    if not left or not right:
        return None
    len_l, len_r, n = len(node.left.words), len(node.right.words), node.distance
    work.steps += len(left)
    used_l = _partners(left, len_l, right, len_r, n, index.page_no)
    if not used_l:
        return None
    work.steps += len(right)
    used_r = _partners(right, len_r, left, len_l, n, index.page_no)
    witness: Witness = {node.left: used_l}
    witness.setdefault(node.right, set()).update(used_r)
    return witness


def _merge(into: Witness, other: Witness) -> None:
    for term, hits in other.items():
        into.setdefault(term, set()).update(hits)


def evaluate(
    node: Node,
    index: IndexedText,
    meta: DocumentMeta | None = None,
    work: Work | None = None,
    limit: int | None = None,
) -> Witness | None:
    """None when the document does not match; otherwise the occurrences of the terms of the
    branches that made the query true (a failed AND under an OR contributes nothing).

    The cost bound, whatever the document: each distinct term is looked up once, at no more
    than K places (K = ``limit``, :data:`MAX_POSITIONS` unless given; for a phrase, the first
    K occurrences of its rarest word, each followed by one comparison per other word), and
    each distinct NEAR is evaluated once, visiting each of the at most 2K positions of its
    two sides once (two binary searches each, whatever its distance). ``work`` counts those
    positions and comparisons::

        work.steps <= K × (2 × words + 2 × NEARs) + lists

    where ``words`` are the words of the distinct terms, ``NEARs`` the distinct NEARs and
    ``lists`` the posting lists opened (one per stem of a word, one per vocabulary word a
    prefix starts). The parser caps a query at ``MAX_WORDS`` (64) words and ``MAX_NEARS`` (10)
    NEARs, so a query written by hand costs at most 10,000 × 148 ≈ 1.5 million steps on any
    document (a thesaurus expansion multiplies its terms by the few phrases of an entry); on
    an ordinary document it is proportional to the occurrences of the query's terms.
    """
    found: dict[Term, list[int]] = {}
    nears: dict[Near, Witness | None] = {}
    meta = meta or DocumentMeta()
    work = work if work is not None else Work()
    limit = MAX_POSITIONS if limit is None else limit

    def find(term: Term) -> list[int]:
        if term not in found:
            found[term] = index.find(term, limit, work)
        return found[term]

    def walk(node: Node) -> Witness | None:
        if isinstance(node, Term):
            hits = find(node)
            return {node: set(hits)} if hits else None
        if isinstance(node, Near):
            if node not in nears:  # a repeated NEAR is evaluated once (its witness is not
                nears[node] = _near(node, find, index, work)  # modified by the callers)
            return nears[node]
        if isinstance(node, Field):
            return {} if meta.has(node.name, node.value) else None
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
    node: Node,
    index: IndexedText,
    meta: DocumentMeta | None = None,
    max_snippets: int = 3,
    work: Work | None = None,
    limit: int | None = None,
) -> dict[str, Any] | None:
    """None when the document does not match; otherwise which terms matched, where, and how:
    ``{"terms": [{"term", "count", "pages", "snippets": [{"page", "text"}], "thesaurus"?}]}``
    (``count`` and ``pages`` cover the first ``limit`` occurrences of a term, see
    :func:`evaluate`; only ``max_snippets`` snippets are cut per term)."""
    witness = evaluate(node, index, meta, work, limit)
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
                nodes[spec.key] = compile_query(spec.query, thesaurus if spec.thesaurus else None)
            except QueryError:
                invalid.append(spec.key)  # refused at subscribe time; an old row is skipped
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
            explanation = explain_document(self.nodes[spec.key], index, meta, title)
            if explanation is not None:
                out.append((spec.key, explanation))
        return out


def compile_query(query: str, thesaurus: Expander | None = None) -> Node:
    """A subscription's query as the matcher evaluates it: parsed (:class:`QueryError` when
    invalid), then, with a thesaurus, each known term ORed with its translations (those of a
    quoted term quoted too)."""
    node = parse_query(query)
    if thesaurus is not None:
        node = _quoted_alternatives(node, thesaurus.expand(node))
    return node


def explain_document(
    node: Node,
    index: IndexedText,
    meta: DocumentMeta,
    title: IndexedText | Callable[[], IndexedText] | None = None,
) -> dict[str, Any] | None:
    """Why a document matches ``node`` (None when it does not): its text, else its title on
    its own (the explanation then says ``"in": "title"``). Alerts and archive search alike.
    ``title`` may be a function that indexes it: most documents match by their text."""
    explanation = explain(node, index, meta)
    if explanation is None and title is not None:
        explanation = explain(node, title() if callable(title) else title, meta)
        if explanation is not None:
            explanation["in"] = "title"
    return explanation


def _quoted_alternatives(original: Node, expanded: Node) -> Node:
    """``expanded`` with the thesaurus alternatives of a quoted term quoted too.

    The thesaurus builds its alternatives as bare terms ``via`` the one they stand for, so
    ``"forced criminality"`` would bring in "délinquance forcée" stemmed ("délinquant forcé"
    too). The query and its expansion are walked side by side: the thesaurus turns a term into
    an OR of itself and its alternatives, a NEAR into an OR of NEARs, and keeps the rest."""
    if isinstance(original, Term) and isinstance(expanded, Or):
        return Or(
            tuple(_like(c, original) if isinstance(c, Term) else c for c in expanded.children)
        )
    if isinstance(original, Near) and isinstance(expanded, Or):
        return Or(
            tuple(
                Near(_like(n.left, original.left), _like(n.right, original.right), n.distance)
                if isinstance(n, Near)
                else n
                for n in expanded.children
            )
        )
    if isinstance(original, Not) and isinstance(expanded, Not):
        return Not(_quoted_alternatives(original.child, expanded.child))
    if (
        isinstance(original, And | Or)
        and isinstance(expanded, And | Or)
        and type(expanded) is type(original)
        and len(expanded.children) == len(original.children)
    ):
        children = zip(original.children, expanded.children, strict=True)
        return type(expanded)(tuple(_quoted_alternatives(o, e) for o, e in children))
    return expanded


def _like(alternative: Term, term: Term) -> Term:
    """A thesaurus alternative of ``term``, exact when ``term`` is (``term`` itself as is)."""
    if alternative.via is None or not term.exact or alternative.exact:
        return alternative
    return replace(alternative, exact=True)


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
