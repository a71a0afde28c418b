"""Which subscriptions could match a document? One Aho-Corasick pass answers for all of them.

Each query is reduced to required *anchors* in conjunctive form: a list of clauses, each a set
of patterns of which at least one must occur in the document's token stream (see
``IndexedText.stream``) if the query is to match. The reduction only ever over-approximates,
so the prefilter never loses a match; it spares the full evaluation of the thousands of
subscriptions none of whose required terms occur, keeping matching near-linear in the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from typing import Any

from worker.query import And, Field, Near, Node, Not, Term
from worker.text import query_stems

Clause = frozenset[str]
Key = int | str  # a subscription id (or any label in tests and benches)
MAX_PATTERNS_PER_TERM = 8
MAX_CLAUSES = 2


def term_patterns(term: Term) -> Clause:
    """Patterns, one of which occurs in the stream wherever ``term`` matches: the stem
    sequences of a phrase (' s1 s2 '), or ' prefix' over the folded words; an exact term's
    folded words themselves (' w1 w2 ', or ' w1 pre' when it ends with a prefix), which the
    stream's run of folded words holds wherever the term occurs."""
    if term.exact:
        return frozenset({" " + " ".join(term.words) + ("" if term.prefix else " ")})
    words = list(term.words)
    if term.prefix:
        words.pop()
        if not words:
            return frozenset({" " + term.words[-1]})
    alternatives = [sorted(query_stems(w)) for w in words]
    combos = 1
    for alts in alternatives:
        combos *= len(alts)
    if combos <= MAX_PATTERNS_PER_TERM:
        return frozenset(" " + " ".join(seq) + " " for seq in product(*alternatives))
    longest = max(alternatives, key=lambda alts: min(len(a) for a in alts))
    return frozenset(f" {s} " for s in longest)


def _selectivity(clause: Clause) -> int:
    return min(len(p) for p in clause)


def clauses(node: Node) -> list[Clause]:
    """Clauses every matching document satisfies; [] means 'cannot tell: always evaluate'."""
    if isinstance(node, Term):
        return [term_patterns(node)]
    if isinstance(node, Near):
        return [term_patterns(node.left), term_patterns(node.right)]
    if isinstance(node, Not | Field):
        return []
    if isinstance(node, And):
        found = [c for child in node.children for c in clauses(child)]
        return sorted(set(found), key=_selectivity, reverse=True)[:MAX_CLAUSES]
    per_child = [clauses(child) for child in node.children]
    if any(not c for c in per_child):
        return []
    # Whichever branch matched satisfies its own best clause: their union is required.
    return [frozenset().union(*(c[0] for c in per_child))]


class Prefilter:
    """One automaton over the anchors of a set of queries."""

    def __init__(self, nodes: Mapping[Key, Node]) -> None:
        import ahocorasick

        self.always: set[Key] = set()
        self.required: dict[Key, int] = {}  # key -> bit mask of its clauses
        postings: dict[str, list[tuple[Key, int]]] = {}
        for key, node in nodes.items():
            found = clauses(node)
            if not found:
                self.always.add(key)
                continue
            self.required[key] = (1 << len(found)) - 1
            for bit, clause in enumerate(found):
                for pattern in clause:
                    postings.setdefault(pattern, []).append((key, 1 << bit))
        self.postings = list(postings.values())
        self.automaton: Any = ahocorasick.Automaton()
        for number, pattern in enumerate(postings):
            self.automaton.add_word(pattern, number)
        if postings:
            self.automaton.make_automaton()

    def candidates(self, stream: str) -> set[Key]:
        """Keys of the queries whose every clause has a pattern in ``stream``."""
        if not self.postings:
            return set(self.always)
        hit = {number for _end, number in self.automaton.iter(stream)}
        satisfied: dict[Key, int] = {}
        for number in hit:
            for key, bit in self.postings[number]:
                satisfied[key] = satisfied.get(key, 0) | bit
        return self.always | {k for k, bits in satisfied.items() if bits == self.required[k]}
