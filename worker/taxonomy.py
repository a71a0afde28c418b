"""The controlled vocabulary (``config/taxonomy.yaml``): bilingual concepts with stable ids that
tag documents, so a French and an English issue about forced criminality meet on one tag.

A concept's phrases are compared the way a subscription's bare words are (:mod:`worker.text`:
folded, then stemmed in the document's language, or both when it is unknown), so "Serbie",
"serbie" and "SERBIE" are one tag, and "forced criminal activities" is "forced criminal
activity". Loading reads a file (validated with pydantic, errors name the concept); tagging is
pure.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worker.text import languages_for, stems, term_words, words

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "taxonomy.yaml"

Kind = Literal["form", "victim", "response", "actor", "country", "region", "topic"]
KINDS: tuple[str, ...] = ("form", "victim", "response", "actor", "country", "region", "topic")
# Concepts of these kinds are thesaurus entries unless they say otherwise: translating a form
# of exploitation helps a subscription; translating a country's name is the tags' job.
THESAURUS_KINDS = frozenset({"form", "response", "topic"})


class Concept(BaseModel):
    """One concept: its id (never changes once published), kind and phrases per language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)
    kind: Kind
    en: tuple[str, ...] = ()
    fr: tuple[str, ...] = ()
    thesaurus: bool | None = None

    @model_validator(mode="after")
    def _has_phrases(self) -> Concept:
        if not self.en and not self.fr:
            raise ValueError(f"concept {self.id!r}: needs at least one en or fr phrase")
        for phrase in (*self.en, *self.fr):
            if not term_words(phrase):
                raise ValueError(f"concept {self.id!r}: phrase {phrase!r} has no word")
        return self

    @property
    def in_thesaurus(self) -> bool:
        return self.kind in THESAURUS_KINDS if self.thesaurus is None else self.thesaurus

    def phrases(self) -> list[tuple[str, str]]:
        """(language, phrase), English first, each phrase once."""
        pairs = [("en", p) for p in self.en] + [("fr", p) for p in self.fr]
        return list(dict.fromkeys(pairs))

    @property
    def label(self) -> str:
        """The name shown to a reader: the first English phrase, else the first French one."""
        return (self.en or self.fr)[0]


@dataclass(frozen=True)
class Tag:
    """A concept a document mentions, and how many times."""

    id: str
    count: int


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    concepts: tuple[Concept, ...]
    version: str = ""

    @model_validator(mode="after")
    def _unique_ids(self) -> Taxonomy:
        seen: set[str] = set()
        for concept in self.concepts:
            if concept.id in seen:
                raise ValueError(f"concept id {concept.id!r} appears twice")
            seen.add(concept.id)
        return self

    def get(self, concept_id: str) -> Concept | None:
        return _by_id(self).get(concept_id)

    def ids(self, kind: str | None = None) -> list[str]:
        return [c.id for c in self.concepts if kind is None or c.kind == kind]

    def tag(self, pages: Sequence[str], language: str | None, title: str = "") -> list[Tag]:
        """The concepts the document mentions (its pages and title), most mentioned first.
        A phrase never runs across a page; a document of unknown language is read in both
        languages and each concept counted by the language that finds it most."""
        counts: Counter[str] = Counter()
        texts = [title, *pages] if title else list(pages)
        for language_code in languages_for(language):
            table = _phrase_table(self, language_code)
            found: Counter[str] = Counter()
            for text in texts:
                found.update(_scan(stems(words(text), language_code), table))
            for concept_id, n in found.items():
                counts[concept_id] = max(counts[concept_id], n)
        return [Tag(i, n) for i, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


PhraseTable = dict[str, list[tuple[tuple[str, ...], str]]]  # first stem -> (stems, concept)


@lru_cache(maxsize=16)
def _by_id(taxonomy: Taxonomy) -> dict[str, Concept]:
    return {c.id: c for c in taxonomy.concepts}


@lru_cache(maxsize=16)
def _phrase_table(taxonomy: Taxonomy, language: str) -> PhraseTable:
    """Every phrase of every concept stemmed in ``language`` (a French phrase is looked for in
    an English text too: "Serbie" in an English text is still Serbia), longest first."""
    table: PhraseTable = {}
    for concept in taxonomy.concepts:
        for _, phrase in concept.phrases():
            key = tuple(stems(term_words(phrase), language))
            entries = table.setdefault(key[0], [])
            if (key, concept.id) not in entries:
                entries.append((key, concept.id))
    for entries in table.values():
        entries.sort(key=lambda e: -len(e[0]))
    return table


def _scan(document_stems: list[str], table: PhraseTable) -> Counter[str]:
    """Occurrences of each concept: at each position, each concept counts its longest phrase
    that starts there once ("online sexual exploitation" is one mention of online
    exploitation, and one of sexual exploitation at the next word)."""
    found: Counter[str] = Counter()
    n = len(document_stems)
    for i, first in enumerate(document_stems):
        entries = table.get(first)
        if not entries:
            continue
        counted: set[str] = set()
        for key, concept_id in entries:
            if concept_id in counted:
                continue
            if tuple(document_stems[i : i + len(key)]) == key and i + len(key) <= n:
                counted.add(concept_id)
                found[concept_id] += 1
    return found


def parse_taxonomy(data: object, version: str = "", where: str = "taxonomy") -> Taxonomy:
    """A taxonomy from its YAML mapping; ValueError naming the place and the concept."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with a 'concepts' list")
    try:
        return Taxonomy(concepts=data.get("concepts"), version=version)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'concepts'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{where}: {problems}") from None


@lru_cache(maxsize=4)
def _load(path: Path, mtime: float) -> Taxonomy:
    raw = path.read_bytes()
    version = hashlib.sha256(raw).hexdigest()[:16]
    return parse_taxonomy(yaml.safe_load(raw), version, str(path))


def load_taxonomy(path: Path = DEFAULT_PATH) -> Taxonomy:
    """The taxonomy file, parsed once per modification."""
    return _load(path, path.stat().st_mtime)


def tag_document(pages: Sequence[str], language: str | None, title: str = "") -> list[Tag]:
    """:meth:`Taxonomy.tag` with the configured taxonomy."""
    return load_taxonomy().tag(pages, language, title)
