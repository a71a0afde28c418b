"""10,000 subscriptions against the seed newsletters: Aho-Corasick prefilter vs a naive loop.

The naive loop compiles each subscription's terms to regular expressions over a token stream
(``,stem,:folded`` per word) and evaluates every subscription on every document; it is an
independent implementation of the same semantics, so both result lists are asserted equal.

A second table runs adversarial NEAR queries (the largest the parser allows) against the
matcher and against a copy of the evaluation it replaced (every pair of positions in the NEAR
window compared, every occurrence of a term looked at), kept here as the baseline.
"""

from __future__ import annotations

import random
import re
import time
import unicodedata
from bisect import bisect_left
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from worker.match import (
    MAX_POSITIONS,
    DocumentMeta,
    IndexedText,
    Matcher,
    SubscriptionSpec,
    Work,
    explain,
)
from worker.query import MAX_NEAR, MAX_NEARS, And, Field, Near, Node, Not, Or, Term, parse_query
from worker.text import LANGUAGES, WORD, fold, query_stems, stem

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SUBSCRIPTIONS = 10_000
PAGE_WORDS = 450

# -- the naive matcher ------------------------------------------------------------------------


def token_stream(pages: Sequence[str], language: str | None) -> str:
    """' stem:folded ' per word ('en,fr:folded' when the language is unknown), '|' between
    pages; the same words, folding and stemming as :class:`IndexedText`."""
    languages = (language,) if language in LANGUAGES else tuple(LANGUAGES)
    parts = []
    for page in pages:
        page = unicodedata.normalize("NFC", page)
        words = [w for raw in WORD.findall(page) for w in WORD.findall(fold(raw))]
        parts.append(
            " ".join(",".join(stem(w, lang) for lang in languages) + ":" + w for w in words)
        )
    return " " + " | ".join(parts) + " "


def _word(word: str, prefix: bool, exact: bool = False) -> str:
    """One token; a literal start (' traffick:') keeps Python's regex search fast. A word of a
    quoted phrase is its folded word, whatever its stems."""
    if prefix:
        return r" [^\s:]*:" + re.escape(word) + r"\S*"
    if exact:
        return r" [^\s:]*:" + re.escape(word) + r"(?!\S)"
    alternatives = sorted(query_stems(word))
    stems = (
        re.escape(alternatives[0])
        if len(alternatives) == 1
        else "(?:" + "|".join(re.escape(s) for s in alternatives) + ")"
    )
    return r" (?:[^\s:]*,)??" + stems + r"(?:,[^\s:]*)?:\S*"


def _term(term: Term) -> str:
    last = len(term.words) - 1
    return "".join(
        _word(w, term.prefix and i == last, term.exact) for i, w in enumerate(term.words)
    )


def compile_regex(node: Node) -> object:
    """The query with every term (and NEAR) replaced by a compiled regular expression."""
    if isinstance(node, Term):
        return re.compile(_term(node) + r"(?![^ ])")
    if isinstance(node, Near):
        gap = r"(?: [^ |]+){0," + str(node.distance) + "}"
        left, right = _term(node.left), _term(node.right)
        return re.compile(rf"(?:{left}{gap}{right}|{right}{gap}{left})(?![^ ])")
    if isinstance(node, Not):
        return ("not", compile_regex(node.child))
    if isinstance(node, And | Or):
        return ("and" if isinstance(node, And) else "or", [compile_regex(c) for c in node.children])
    return node  # Field


def _true(compiled: object, stream: str, meta: DocumentMeta) -> bool:
    if isinstance(compiled, re.Pattern):
        return compiled.search(stream) is not None
    if isinstance(compiled, Field):
        return (meta.value(compiled.name) or "").casefold() == compiled.value
    op, arg = compiled  # type: ignore[misc]
    if op == "not":
        return not _true(arg, stream, meta)
    results = (_true(c, stream, meta) for c in arg)
    return all(results) if op == "and" else any(results)


def regex_matches(
    specs: Sequence[SubscriptionSpec],
    pages: Sequence[str],
    meta: DocumentMeta,
    compiled: Sequence[object] | None = None,
) -> list[int | str]:
    """Keys of the subscriptions matching the document, one regex loop per subscription."""
    stream = token_stream(pages, meta.language)
    compiled = compiled or [compile_regex(parse_query(s.query)) for s in specs]
    return [s.key for s, c in zip(specs, compiled, strict=True) if _true(c, stream, meta)]


# -- the workload -----------------------------------------------------------------------------


def _pages(text: str) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + PAGE_WORDS]) for i in range(0, len(words), PAGE_WORDS)]


def documents() -> list[tuple[str, list[str], DocumentMeta]]:
    from tests.replica import texts

    n11 = (SEEDS / "newsletter-n11-en.txt").read_text("utf-8")
    n23 = (SEEDS / "newsletter-n23-en-2025-03.md").read_text("utf-8")
    fr = texts.N11_FR + "\n" + texts.N23_FR
    big = " ".join([n11, n23, fr] * 5)
    en, fr_meta = DocumentMeta("onu-vienne", "en", "pdf"), DocumentMeta("onu-vienne", "fr", "pdf")
    return [
        ("n°11 EN", _pages(n11), en),
        ("n°23 EN", _pages(n23), en),
        ("n°11+23 FR", _pages(fr), fr_meta),
        ("all ×5 (EN+FR)", _pages(big), en),
    ]


def _nonsense(rng: random.Random, word: str) -> str:
    letters = list(word)
    for _ in range(2):
        i = rng.randrange(len(letters))
        letters[i] = rng.choice("qxzjkvw")
    return "".join(letters)


def subscriptions(docs: list[tuple[str, list[str], DocumentMeta]]) -> list[SubscriptionSpec]:
    """Every 33rd query is drawn from the text; the others contain an invented word (which an
    OR or a NOT may still let match): plausible subscriptions, few of them relevant."""
    rng = random.Random(11)
    words = [w for _, pages, _ in docs[:3] for p in pages for w in p.split()]
    clean = [w for w in (re.sub(r"\W", "", w) for w in words) if len(w) >= 4 and w.isalpha()]
    vocabulary = sorted(set(clean))

    def phrase() -> str:
        i = rng.randrange(len(clean) - 3)
        return '"' + " ".join(clean[i : i + rng.choice((2, 3))]) + '"'

    def real() -> str:
        return rng.choice((rng.choice(vocabulary), phrase()))

    def absent() -> str:
        return _nonsense(rng, rng.choice(vocabulary))

    shapes = [
        lambda a, b: a,
        lambda a, b: f"{a} AND {b}",
        lambda a, b: f"{a} OR {b}",
        lambda a, b: f"{a} NOT {b}",
        lambda a, b: f"{a} NEAR/5 {b}",
        lambda a, b: f"{a[:5]}* AND {b}" if a[0].isalpha() and len(a) > 5 else f"{a} {b}",
        lambda a, b: f"({a} OR {b}) lang:fr",
    ]
    specs = []
    for i in range(SUBSCRIPTIONS):
        shape = rng.choice(shapes)
        if i % 33 == 0:  # ~300 that find something
            query = shape(real(), real()) if shape is not shapes[3] else shape(real(), absent())
        else:
            query = shape(absent(), real())
        specs.append(SubscriptionSpec(i, query))
    return specs


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


# -- the NEAR evaluation before issue 12 (the baseline of the adversarial table) ----------------

Witness = dict[Term, set[int]]


def _old_find(index: IndexedText, term: Term) -> list[int]:
    """Every occurrence: the phrase tried at every occurrence of its first word."""

    def matches(i: int, word: str, prefix: bool) -> bool:
        if prefix:
            return index.words[i].startswith(word)
        return not query_stems(word).isdisjoint(index.stems[i])

    first, rest = term.words[0], term.words[1:]
    if term.prefix and not rest:
        starts = sorted(i for w, idx in index.by_word.items() if w.startswith(first) for i in idx)
    else:
        lists = [index.by_stem.get(s, []) for s in query_stems(first)]
        starts = sorted(set().union(*lists)) if len(lists) > 1 else list(lists[0])
    if not rest:
        return starts
    hits = []
    last = len(rest) - 1
    for start in starts:
        end = start + len(rest)
        if end >= len(index.words) or index.spans[end][0] != index.spans[start][0]:
            continue
        if all(
            matches(start + 1 + k, word, term.prefix and k == last) for k, word in enumerate(rest)
        ):
            hits.append(start)
    return hits


def _old_near(node: Near, found: dict[Term, list[int]], index: IndexedText) -> Witness | None:
    """Every pair of positions within the window compared: O(L × window)."""
    left, right = found[node.left], found[node.right]
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


def old_explain(node: Node, index: IndexedText) -> dict[str, Any] | None:
    """The evaluation and explanation as they were (no Field in these queries)."""
    found: dict[Term, list[int]] = {}

    def walk(node: Node) -> Witness | None:
        for term in (node.left, node.right) if isinstance(node, Near) else (node,):
            if isinstance(term, Term) and term not in found:
                found[term] = _old_find(index, term)
        if isinstance(node, Term):
            return {node: set(found[node])} if found[node] else None
        if isinstance(node, Near):
            return _old_near(node, found, index)
        if isinstance(node, Not):
            return {} if walk(node.child) is None else None
        assert isinstance(node, And | Or), node
        witness: Witness = {}
        matched = False
        for child in node.children:
            part = walk(child)
            if part is None and isinstance(node, And):
                return None
            if part is not None:
                matched = True
                for term, hits in part.items():
                    witness.setdefault(term, set()).update(hits)
        return witness if matched else None

    witness = walk(node)
    if witness is None:
        return None
    terms = []
    for term in dict.fromkeys(t for t in _terms(node) if t in witness):
        hits = sorted(witness[term])
        terms.append(
            {
                "term": term.label,
                "count": len(hits),
                "pages": sorted({index.page_of(h) for h in hits}),
                "snippets": [
                    {"page": index.page_of(h), "text": index.snippet(h, len(term.words))}
                    for h in hits[:3]
                ],
            }
        )
    return {"terms": terms}


def _terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Near):
        return [node.left, node.right]
    if isinstance(node, Not):
        return _terms(node.child)
    if isinstance(node, And | Or):
        return [t for child in node.children for t in _terms(child)]
    return []


# -- the adversarial NEAR queries ---------------------------------------------------------------

# Twenty distinct terms that all match every word of a page of "trafficking": ten word forms
# stemmed to "traffick" and ten prefixes of it.
_FORMS = "trafficking trafficked trafficks traffick traffickings trafficker traffickers"
_FORMS += " traffickingly trafficke trafficki"
_PREFIXES = [("trafficking"[:k] + "*") for k in range(2, 12)]


def adversarial_queries() -> list[tuple[str, str]]:
    """(label, query): the self-NEAR of the issue at the largest distance allowed, and the
    largest NEAR query allowed: MAX_NEARS clauses of distinct terms, all at MAX_NEAR."""
    largest = " AND ".join(
        f"{prefix} NEAR/{MAX_NEAR} {form}"
        for prefix, form in list(zip(_PREFIXES, _FORMS.split(), strict=True))[:MAX_NEARS]
    )
    return [
        (f"trafficking NEAR/{MAX_NEAR} trafficking", f"trafficking NEAR/{MAX_NEAR} trafficking"),
        (f"{MAX_NEARS} × tr…* NEAR/{MAX_NEAR} traffick…", largest),
    ]


def _best_of(call: Any) -> tuple[float, Any]:
    """The shortest of a few runs (one run when it takes more than a fifth of a second)."""
    times, result = [], None
    while sum(times) < 0.2 and len(times) < 5:
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def adversarial_table(docs: list[tuple[str, list[str], DocumentMeta]], smoke: bool) -> list[str]:
    pages = 1 if smoke else 50
    flood = [" ".join(["trafficking"] * PAGE_WORDS)] * pages
    flooded = f"{pages} page{'s' if pages > 1 else ''} of 'trafficking'"
    targets = [(flooded, flood, "en"), (docs[-1][0], docs[-1][1], "en")]
    lines = [
        "| adversarial query | document (words) | occurrences of a term | old ms "
        "| new ms, no cap | old / no cap | new ms | old / new | count: old → new "
        "| new work (steps) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, query in adversarial_queries():
        node = parse_query(query)
        for name, doc_pages, language in targets:
            index = IndexedText.build(doc_pages, language)
            occurrences = max(len(_old_find(index, t)) for t in _terms(node))
            everything = len(index.words)
            old_s, old = _best_of(partial(old_explain, node, index))
            uncapped_s, uncapped = _best_of(partial(explain, node, index, limit=everything))
            new_s, new = _best_of(partial(explain, node, index))
            work = Work()
            explain(node, index, work=work)
            assert uncapped == old, (label, name)  # the same algorithm's result, exactly
            assert (new is None) == (old is None), (label, name)
            if occurrences <= MAX_POSITIONS:  # below the cap, the very same explanation
                assert new == old, (label, name)
            counts = " → ".join(f"{e['terms'][0]['count']:,}" if e else "-" for e in (old, new))
            old_ms, uncapped_ms, new_ms = old_s * 1000, uncapped_s * 1000, new_s * 1000
            lines.append(
                f"| `{label}` | {name} ({everything:,}) | {occurrences:,} | {old_ms:,.1f} "
                f"| {uncapped_ms:,.1f} | {old_ms / uncapped_ms:,.0f}× "
                f"| {new_ms:,.1f} | {old_ms / new_ms:,.0f}× | {counts} | {work.steps:,} |"
            )
    lines += [
        "",
        "old = the evaluation before issue 12: every position of a NEAR's left side compared "
        "with every position of its right side within the window, every occurrence of a term "
        f"looked at; new = two binary searches per position, a term looked for at no more than "
        f"{MAX_POSITIONS:,} places (`MAX_POSITIONS`: on the flooded document the count stops "
        f"there); no cap = the new algorithm without that cap, asserted to give exactly the "
        f"old explanations (and new = old below the cap); work = positions and comparisons "
        f"counted by `worker.match.Work`, bounded whatever the document.",
    ]
    return lines


def run(smoke: bool = False) -> str:
    docs = documents()
    specs = subscriptions(docs)
    adversarial_docs = docs[:1] if smoke else docs
    if smoke:
        docs, specs = docs[:1], specs[:300]
    started = time.perf_counter()
    matcher = Matcher.build(specs, None)
    build = time.perf_counter() - started
    compiled = [compile_regex(parse_query(s.query)) for s in specs]
    lines = [
        f"{len(specs):,} subscriptions; prefilter build (parse + automaton) {_ms(build)} ms.",
        "",
        "| document | words | pages | index ms | prefilter ms | candidates | matches "
        "| evaluate-all ms | naive regex ms | regex / prefilter |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, pages, meta in docs:
        t0 = time.perf_counter()
        index = IndexedText.build(pages, meta.language)
        t1 = time.perf_counter()
        fast = matcher.match(index, meta)
        t2 = time.perf_counter()
        every = matcher.match(index, meta, use_prefilter=False)
        t3 = time.perf_counter()
        naive = regex_matches(specs, pages, meta, compiled)
        t4 = time.perf_counter()
        keys = [k for k, _ in fast]
        assert keys == [k for k, _ in every] == naive, name
        candidates = len(matcher.prefilter.candidates(index.stream()))
        lines.append(
            f"| {name} | {len(index.words):,} | {len(pages)} | {_ms(t1 - t0)} | {_ms(t2 - t1)} "
            f"| {candidates:,} | {len(keys):,} | {_ms(t3 - t2)} | {_ms(t4 - t3)} "
            f"| {(t4 - t3) / (t2 - t1):,.0f}× |"
        )
    lines += [
        "",
        "prefilter ms = token stream + Aho-Corasick pass + full evaluation and explanation of "
        "the candidates; evaluate-all = the same evaluation of every subscription without the "
        "prefilter; naive regex = one compiled regex search per term per subscription. The "
        "three result lists are asserted equal.",
        "",
    ]
    lines += adversarial_table(adversarial_docs, smoke)
    return "\n".join(lines)
