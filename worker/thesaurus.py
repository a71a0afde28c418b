"""The EN↔FR thesaurus: one query term finds its translations. Its entries are the concepts
of the taxonomy (``config/taxonomy.yaml``, :mod:`worker.taxonomy`) that take part in it.

A subscription that opts in (``--thesaurus``) has each of its words and phrases that is an
entry of the thesaurus replaced by "the term OR any other phrase of the entry"; the phrases
brought in this way carry ``via`` so an alert says "délinquance forcée (thesaurus: forced
criminality)". Loading reads a file; expanding is pure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from worker.query import And, Near, Node, Not, Or, Term
from worker.taxonomy import DEFAULT_PATH, Taxonomy, parse_taxonomy
from worker.text import LANGUAGES, stem, term_words

Key = tuple[str, ...]


def _keys(words: tuple[str, ...]) -> set[Key]:
    """A phrase compared through its stems in either language: 'forced criminalities' is the
    entry 'forced criminality'."""
    return {tuple(stem(w, language) for w in words) for language in LANGUAGES}


@dataclass(frozen=True)
class Thesaurus:
    entries: tuple[tuple[Term, ...], ...]
    version: str = ""

    @classmethod
    def from_mapping(cls, data: object, version: str = "") -> Thesaurus:
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ValueError("thesaurus: expected a mapping with an 'entries' list")
        entries = []
        for number, entry in enumerate(data["entries"], start=1):
            if not isinstance(entry, dict):
                raise ValueError(f"thesaurus entry {number}: expected a mapping of languages")
            terms = []
            for language, phrases in entry.items():
                if language not in LANGUAGES or not isinstance(phrases, list):
                    raise ValueError(f"thesaurus entry {number}: bad language {language!r}")
                for phrase in phrases:
                    words = tuple(term_words(str(phrase)))
                    if not words:
                        raise ValueError(f"thesaurus entry {number}: empty phrase")
                    terms.append(Term(words, False, str(phrase)))
            entries.append(tuple(terms))
        return cls(tuple(entries), version)

    @classmethod
    def from_taxonomy(cls, taxonomy: Taxonomy) -> Thesaurus:
        """One entry per concept that takes part in the thesaurus, its phrases in file order."""
        entries = tuple(
            tuple(Term(tuple(term_words(p)), False, p) for _, p in concept.phrases())
            for concept in taxonomy.concepts
            if concept.in_thesaurus
        )
        return cls(entries, taxonomy.version)

    @property
    def lookup(self) -> dict[Key, int]:
        return _lookup(self)

    def alternatives(self, term: Term) -> list[Term]:
        """The other phrases of the entry ``term`` belongs to, marked as coming from it."""
        if term.prefix:
            return []
        lookup = self.lookup
        number = next((lookup[k] for k in _keys(term.words) if k in lookup), None)
        if number is None:
            return []
        own = _keys(term.words)
        via = term.raw.strip('"') or " ".join(term.words)
        return [
            Term(t.words, False, t.raw, via)
            for t in self.entries[number]
            if own.isdisjoint(_keys(t.words))
        ]

    def expand(self, node: Node) -> Node:
        """The query with every thesaurus term ORed with its translations and synonyms."""
        if isinstance(node, Term):
            alternatives = self.alternatives(node)
            return Or((node, *alternatives)) if alternatives else node
        if isinstance(node, Near):
            lefts = [node.left, *self.alternatives(node.left)]
            rights = [node.right, *self.alternatives(node.right)]
            if len(lefts) == len(rights) == 1:
                return node
            return Or(tuple(Near(a, b, node.distance) for a in lefts for b in rights))
        if isinstance(node, Not):
            return Not(self.expand(node.child))
        if isinstance(node, And):
            return And(tuple(self.expand(c) for c in node.children))
        if isinstance(node, Or):
            return Or(tuple(self.expand(c) for c in node.children))
        return node


@lru_cache(maxsize=8)
def _lookup(thesaurus: Thesaurus) -> dict[Key, int]:
    table: dict[Key, int] = {}
    for number, entry in enumerate(thesaurus.entries):
        for term in entry:
            for key in _keys(term.words):
                table.setdefault(key, number)
    return table


@lru_cache(maxsize=4)
def _load(path: Path, mtime: float) -> Thesaurus:
    """A taxonomy file (``concepts:``), or a plain thesaurus of ``entries:``."""
    raw = path.read_bytes()
    data = yaml.safe_load(raw)
    version = hashlib.sha256(raw).hexdigest()[:16]
    if isinstance(data, dict) and "concepts" in data:
        return Thesaurus.from_taxonomy(parse_taxonomy(data, version, str(path)))
    try:
        return Thesaurus.from_mapping(data, version)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_thesaurus(path: Path = DEFAULT_PATH) -> Thesaurus:
    """The thesaurus of the taxonomy file, parsed once per modification."""
    return _load(path, path.stat().st_mtime)
