"""Stage 5: does a document match a subscription, and why? Pure functions over text.

Query language: words, "quoted phrases", ``prefix*``, AND / OR / NOT (AND is implied between
terms), and parentheses. Matching is case- and accent-insensitive on whole words.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
_MARKS = re.compile(r"[\u0300-\u036f]")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


def fold(text: str) -> str:
    """Lower-case, accent-free form used on both sides of every comparison."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return _MARKS.sub("", decomposed).casefold()


class QueryError(ValueError):
    """An invalid subscription query; ``position`` points at the offending character."""

    def __init__(self, message: str, query: str, position: int) -> None:
        pointer = f"\n  {query}\n  {' ' * position}^"
        super().__init__(f"{message} at position {position + 1}{pointer}")
        self.message = message
        self.position = position


# -- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # folded
    prefix: bool = False
    raw: str = ""


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | And | Or | Not

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<phrase>[^"]*)(?P<closed>"?)|(?P<word>[^\s()"]+))'
)


def _lex(query: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if not m or m.end() == pos:
            break
        start = m.start(m.lastgroup) if m.lastgroup else pos
        if m["lp"]:
            tokens.append(("(", "(", start))
        elif m["rp"]:
            tokens.append((")", ")", start))
        elif m["phrase"] is not None:
            quote = m.start("phrase") - 1
            if not m["closed"]:
                raise QueryError("unterminated quote", query, quote)
            tokens.append(("phrase", m["phrase"], quote))
        elif m["word"]:
            word = m["word"]
            kind = word if word in ("AND", "OR", "NOT") else "word"
            tokens.append((kind, word, start))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def error(self, message: str) -> QueryError:
        tok = self.peek()
        return QueryError(message, self.query, tok[2] if tok else len(self.query))

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("empty query", self.query, 0)
        node = self.parse_or()
        if (extra := self.peek()) is not None:
            raise self.error("unexpected ')'" if extra[0] == ")" else "unexpected token")
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while (tok := self.peek()) and tok[0] == "OR":
            self.i += 1
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while (tok := self.peek()) and tok[0] not in ("OR", ")"):
            if tok[0] == "AND":
                self.i += 1
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("a term is missing")
        if tok[0] == "NOT":
            self.i += 1
            return Not(self.parse_unary())
        if tok[0] == "(":
            self.i += 1
            node = self.parse_or()
            if (close := self.peek()) is None or close[0] != ")":
                raise self.error("missing ')'")
            self.i += 1
            return node
        if tok[0] in ("word", "phrase"):
            self.i += 1
            return self.term(tok)
        raise self.error(f"expected a term, found {tok[1]!r}")

    def term(self, tok: tuple[str, str, int]) -> Term:
        kind, raw, pos = tok
        prefix = raw.endswith("*")
        words = tuple(fold(w) for w in _WORD.findall(raw))
        if not words:
            raise QueryError("a term needs at least one letter or digit", self.query, pos)
        if prefix and kind == "word" and len(words[-1]) < 2:
            raise QueryError("a prefix needs at least two letters before '*'", self.query, pos)
        return Term(words, prefix, raw)


def parse_query(query: str) -> Node:
    """Parse a subscription query; raise :class:`QueryError` pointing at the mistake."""
    node = _Parser(query).parse()
    if _only_negative(node):
        raise QueryError("a query needs at least one term that is not negated", query, 0)
    return node


def _only_negative(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_only_negative(c) for c in node.children)
    if isinstance(node, Or):
        return any(_only_negative(c) for c in node.children)
    return False


# -- matching ---------------------------------------------------------------------------------


@dataclass
class IndexedText:
    """A document's words, folded, with their page and character offsets, for fast lookup."""

    pages: list[str]
    words: list[str] = field(default_factory=list)
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # (page, start, end)
    positions: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, pages: list[str]) -> IndexedText:
        index = cls(pages)
        for page_no, text in enumerate(pages, start=1):
            for m in _WORD.finditer(text):
                index.positions[fold(m.group())].append(len(index.words))
                index.words.append(fold(m.group()))
                index.spans.append((page_no, m.start(), m.end()))
        return index

    def find(self, term: Term) -> list[int]:
        """Word indices where ``term`` starts."""
        first, rest = term.words[0], term.words[1:]
        if term.prefix and not rest:
            starts = sorted(
                i for w, idx in self.positions.items() if w.startswith(first) for i in idx
            )
        else:
            starts = self.positions.get(first, [])
        if not rest:
            return list(starts)
        hits = []
        for start in starts:
            end = start + len(rest)
            if end >= len(self.words):
                continue
            if self.spans[end][0] != self.spans[start][0]:
                continue  # a phrase does not run across pages
            tail = self.words[start + 1 : end + 1]
            if tail[:-1] == list(rest[:-1]) and (
                tail[-1].startswith(rest[-1]) if term.prefix else tail[-1] == rest[-1]
            ):
                hits.append(start)
        return hits

    def snippet(self, start: int, length: int, width: int = 90) -> str:
        page, begin, _ = self.spans[start]
        end = self.spans[start + length - 1][2]
        text = self.pages[page - 1]
        left = max(0, begin - width)
        right = min(len(text), end + width)
        before = " ".join(text[left:begin].split())
        after = " ".join(text[end:right].split())
        return (
            f"{'…' if left else ''}{before} «{' '.join(text[begin:end].split())}» "
            f"{after}{'…' if right < len(text) else ''}"
        ).strip()

    def page_of(self, start: int) -> int:
        return self.spans[start][0]


def _evaluate(node: Node, index: IndexedText, found: dict[Term, list[int]]) -> bool:
    if isinstance(node, Term):
        if node not in found:
            found[node] = index.find(node)
        return bool(found[node])
    if isinstance(node, And):
        return all(_evaluate(c, index, found) for c in node.children)
    if isinstance(node, Or):
        return any(_evaluate(c, index, found) for c in node.children)
    return not _evaluate(node.child, index, found)


def _positive_terms(node: Node, negated: bool = False) -> list[Term]:
    if isinstance(node, Term):
        return [] if negated else [node]
    if isinstance(node, Not):
        return _positive_terms(node.child, not negated)
    return [t for c in node.children for t in _positive_terms(c, negated)]


def explain(node: Node, index: IndexedText, max_snippets: int = 3) -> dict[str, Any] | None:
    """None when the document does not match; otherwise which terms matched, where, and how."""
    found: dict[Term, list[int]] = {}
    if not _evaluate(node, index, found):
        return None
    terms = []
    for term in dict.fromkeys(_positive_terms(node)):
        hits = found.get(term) if term in found else index.find(term)
        if not hits:
            continue
        terms.append(
            {
                "term": term.raw,
                "count": len(hits),
                "pages": sorted({index.page_of(h) for h in hits}),
                "snippets": [
                    {"page": index.page_of(h), "text": index.snippet(h, len(term.words))}
                    for h in hits[:max_snippets]
                ],
            }
        )
    return {"terms": terms}
