"""Subscription queries: the parser and its syntax tree. Pure functions, no I/O.

Grammar (loosest first): ``OR`` < ``AND`` (implied between terms) < ``NOT`` < ``NEAR/n`` <
term, where a term is a word, a ``"quoted phrase"``, a ``prefix*``, a ``field:value`` filter
(``source:``, ``lang:``, ``kind:``, ``tag:``) or a parenthesised query. A term's words are folded by
:func:`worker.text.term_words`; a bare word is stemmed when matched (:mod:`worker.match`), the
words of a quoted phrase are not: ``"forced criminality"`` is those two words, folded, in
that order, never "forced criminal".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from worker.text import term_words

FIELDS = {"source": "sources", "lang": "languages", "kind": "kinds", "tag": "tags"}
# What one query may cost is bounded when it is parsed (see ``worker.match`` for the bound on
# the work per document that these limits make small). No query of the README comes close.
MAX_QUERY_CHARS = 2000
MAX_DEPTH = 40  # nested parentheses and NOTs
# NEAR/n: at most 200 words apart (the limit stored subscriptions were made under; the cost of
# a NEAR does not depend on its distance)
MAX_NEAR = 200
MAX_NEARS = 10  # NEAR operators in one query
MAX_WORDS = 64  # words in one query, every word of a phrase or prefix counted


POINTER_CHARS = 100  # a longer query is shown around the mistake, so the pointer stays put


class QueryError(ValueError):
    """An invalid subscription query; ``position`` points at the offending character."""

    def __init__(self, message: str, query: str, position: int) -> None:
        start = 0 if len(query) <= POINTER_CHARS else max(0, position - POINTER_CHARS // 2)
        end = min(len(query), start + POINTER_CHARS)
        shown = ("…" if start else "") + query[start:end] + ("…" if end < len(query) else "")
        shown = re.sub(r"\s", " ", shown)  # a newline in the query would break the pointer
        column = position - start + (1 if start else 0)
        pointer = f"\n  {shown}\n  {' ' * column}^"
        super().__init__(f"{message} at position {position + 1}{pointer}")
        self.message = message
        self.position = position


# -- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or phrase (folded words); ``via`` names the query term a thesaurus
    expansion came from, so the explanation can say so. An ``exact`` term (quoted) matches
    its folded words as written, any other by stem; a prefix is the start of a folded word
    either way."""

    words: tuple[str, ...]
    prefix: bool = False
    raw: str = field(default="", compare=False)
    via: str | None = field(default=None, compare=False)
    exact: bool = False

    @property
    def label(self) -> str:
        shown = self.raw or " ".join(self.words)
        return f"{shown} (thesaurus: {self.via})" if self.via else shown


@dataclass(frozen=True)
class Near:
    left: Term
    right: Term
    distance: int


@dataclass(frozen=True)
class Field:
    """A metadata filter written in the query: ``source:onu-vienne``, ``lang:fr``, ``kind:pdf``,
    ``tag:forced-criminality`` (a concept of the taxonomy the document mentions)."""

    name: str  # sources | languages | kinds | tags
    value: str


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | Near | Field | And | Or | Not

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<phrase>[^"]*)(?P<closed>"?)|(?P<word>[^\s()"]+))'
)
_NEAR = re.compile(r"NEAR(?:/(?P<n>.*))?")
_FIELD = re.compile(r"(?P<name>[a-z]+):(?P<value>.*)")
_FIELD_VALUE = re.compile(r"[a-z0-9][a-z0-9._-]*")

Token = tuple[str, str, int]  # (kind, text, position)


def _lex(query: str) -> list[Token]:
    tokens: list[Token] = []
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
            if word in ("AND", "OR", "NOT"):
                kind = word
            elif _NEAR.fullmatch(word):
                kind = "NEAR"
            elif (f := _FIELD.fullmatch(word)) and f["name"] in FIELDS:
                kind = "field"
            else:
                kind = "word"
            tokens.append((kind, word, start))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.i = 0
        self.depth = 0
        self.words = 0
        self.nears = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def error(self, message: str, token: Token | None = None) -> QueryError:
        tok = token or self.peek()
        return QueryError(message, self.query, tok[2] if tok else len(self.query))

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("empty query", self.query, 0)
        node = self.parse_or()
        if (extra := self.peek()) is not None:
            raise self.error("unexpected ')'" if extra[0] == ")" else "unexpected token")
        return node

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("the query is nested too deeply")

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
        if tok is not None and tok[0] == "NOT":
            self.nest()
            self.i += 1
            child = self.parse_unary()
            self.depth -= 1
            return Not(child)
        return self.parse_near()

    def parse_near(self) -> Node:
        left = self.parse_primary()
        tok = self.peek()
        if tok is None or tok[0] != "NEAR":
            return left
        distance = self.near_distance(tok)
        if not isinstance(left, Term):
            raise self.error("NEAR joins two words or phrases", tok)
        self.nears += 1
        if self.nears > MAX_NEARS:
            raise self.error(f"a query has at most {MAX_NEARS} NEAR operators", tok)
        self.i += 1
        after = self.peek()
        right = self.parse_primary()
        if not isinstance(right, Term):
            raise self.error("NEAR joins two words or phrases", after)
        if (again := self.peek()) is not None and again[0] == "NEAR":
            raise self.error("NEAR joins two terms; combine several NEARs with AND", again)
        return Near(left, right, distance)

    def near_distance(self, tok: Token) -> int:
        m = _NEAR.fullmatch(tok[1])
        text = m["n"] if m else None
        if text is None:
            return 10
        if not text.isdigit() or not text.isascii() or int(text) > MAX_NEAR:
            raise self.error(f"NEAR/n needs a number of words from 0 to {MAX_NEAR}", tok)
        return int(text)

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("a term is missing")
        if tok[0] == "(":
            self.nest()
            self.i += 1
            node = self.parse_or()
            if (close := self.peek()) is None or close[0] != ")":
                raise self.error("missing ')'")
            self.i += 1
            self.depth -= 1
            return node
        if tok[0] in ("word", "phrase"):
            self.i += 1
            return self.term(tok)
        if tok[0] == "field":
            self.i += 1
            return self.field(tok)
        raise self.error(f"expected a term, found {tok[1]!r}")

    def term(self, tok: Token) -> Term:
        kind, raw, pos = tok
        prefix = raw.endswith("*")
        words = tuple(term_words(raw))
        if not words:
            raise QueryError("a term needs at least one letter or digit", self.query, pos)
        if prefix and len(words[-1]) < 2:
            raise QueryError("a prefix needs at least two letters before '*'", self.query, pos)
        self.words += len(words)
        if self.words > MAX_WORDS:
            message = f"a query has at most {MAX_WORDS} words (a phrase counts each of its words)"
            raise QueryError(message, self.query, pos)
        return Term(words, prefix, raw, exact=kind == "phrase")

    def field(self, tok: Token) -> Field:
        name, _, value = tok[1].partition(":")
        value = value.casefold()
        if not _FIELD_VALUE.fullmatch(value):
            raise self.error(f"{name}: needs a value such as {name}:{_EXAMPLES[name]}", tok)
        return Field(FIELDS[name], value)


_EXAMPLES = {"source": "onu-vienne", "lang": "fr", "kind": "pdf", "tag": "forced-labour"}


def parse_query(query: str) -> Node:
    """Parse a subscription query; raise :class:`QueryError` pointing at the mistake, or at
    what makes the query too costly (``MAX_QUERY_CHARS``, ``MAX_WORDS``, ``MAX_NEARS``,
    ``MAX_NEAR``, ``MAX_DEPTH``)."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"a query is at most {MAX_QUERY_CHARS} characters", query, 0)
    node = _Parser(query).parse()
    if _lacks_positive_term(node):
        raise QueryError("a query needs at least one word or phrase that is not negated", query, 0)
    return node


def _lacks_positive_term(node: Node) -> bool:
    """True when the query could match a document without any of its words (it would alert
    on nearly everything)."""
    if isinstance(node, Not | Field):
        return True
    if isinstance(node, And):
        return all(_lacks_positive_term(c) for c in node.children)
    if isinstance(node, Or):
        return any(_lacks_positive_term(c) for c in node.children)
    return False


def format_query(node: Node) -> str:
    """The canonical text of a parsed query: ``parse_query(format_query(n)) == n``."""
    if isinstance(node, Term):
        return _format_term(node)
    if isinstance(node, Near):
        return f"{format_query(node.left)} NEAR/{node.distance} {format_query(node.right)}"
    if isinstance(node, Field):
        short = next(k for k, v in FIELDS.items() if v == node.name)
        return f"{short}:{node.value}"
    if isinstance(node, Not):
        return f"NOT {_grouped(node.child, And | Or)}"
    if isinstance(node, And):
        return " AND ".join(_grouped(c, And | Or) for c in node.children)
    return " OR ".join(_grouped(c, Or) for c in node.children)


def _format_term(term: Term) -> str:
    """A quoted term stays quoted, even of one word; an unquoted term of several words
    (``main-d'œuvre``) is written hyphenated, so it is read back unquoted: stemmed."""
    star = "*" if term.prefix else ""
    if term.exact:
        return '"' + " ".join(term.words) + star + '"'
    return "-".join(term.words) + star


def _grouped(node: Node, needs_parentheses: Any) -> str:
    text = format_query(node)
    return f"({text})" if isinstance(node, needs_parentheses) else text
