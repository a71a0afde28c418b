"""Keyphrase quality: TIP Watch's extractor (worker.keywords) beside plain YAKE (the same
yake-rust, on the same text, without the rest), against a gold set a reader wrote
(tests/data/keyphrases_gold.yaml): the seed newsletters rendered to PDF by the replica, and a few
replica article pages.

Two figures per extractor and set of documents:

- precision@10: of the (at most 10) phrases returned per document, the share a reader wrote
  down (compared by folded lemmas, so "victims" is "victim" and case does not matter);
- junk: phrases no reader would keep, found by rule, not by the gold set: one that crosses a
  line break (its words are on no single line), page furniture (found only on lines the source
  or the document repeats, or set in capitals), one that starts or ends on a function word or an
  elided article (l', d'), or a lone common word ("trafficking", "March").

Both extractors see the same text; TIP Watch also gets the furniture learned from the source's
documents (the four newsletters; the site's 31 article pages), as at extraction.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.replica import content, pdfs
from tests.replica.spip import SpipSite
from worker.extract.formats import extract_html, extract_pdf
from worker.keywords import (
    COMPOUND,
    ELISIONS,
    FUNCTION_WORDS,
    GENERIC,
    boilerplate_lines,
    extract_keywords,
    furniture_lines,
    mostly_upper,
    yake_phrases,
)
from worker.text import fold, term_words

GOLD = Path(__file__).resolve().parent.parent / "tests" / "data" / "keyphrases_gold.yaml"
TOP = 10


def _lemmas(phrase: str, language: str) -> tuple[str, ...]:
    import simplemma

    return tuple(fold(simplemma.lemmatize(w, lang=language)) for w in term_words(phrase))


@dataclass
class Document:
    id: str
    kind: str  # newsletter | page
    language: str
    pages: list[str]
    gold: set[tuple[str, ...]]
    furniture: frozenset[str] = frozenset()

    @property
    def text(self) -> str:
        return "\n\n".join(self.pages)


@dataclass
class Score:
    documents: int = 0
    returned: int = 0
    relevant: int = 0
    junk: int = 0
    precisions: list[float] = field(default_factory=list)
    junk_examples: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return sum(self.precisions) / len(self.precisions) if self.precisions else 0.0


def _line_keys(document: Document) -> list[tuple[str, bool]]:
    """Each line's folded words, and whether it is furniture (the source's or the document's
    own repeated lines, or a line in capitals)."""
    repeated = boilerplate_lines(document.pages) | set(document.furniture)
    out = []
    for page in document.pages:
        for line in page.splitlines():
            key = " ".join(term_words(line))
            if key:
                out.append((key, key in repeated or mostly_upper(line)))
    return out


def junk_reason(phrase: str, document: Document, lines: list[tuple[str, bool]]) -> str | None:
    """Why no reader would keep ``phrase``, or None."""
    words = term_words(phrase)
    if not words:
        return "empty"
    weak = FUNCTION_WORDS | ELISIONS
    edges = [fold(t) for t in COMPOUND.findall(phrase)]  # "Sud-Est" is one word, not "est"
    if edges[0] in weak or edges[-1] in weak:
        return "dangling function word"
    key = f" {' '.join(words)} "
    found = [furniture for line, furniture in lines if key in f" {line} "]
    if not found:
        return "crosses a line break"
    if all(found):
        return "page furniture"
    if mostly_upper(phrase) and not all(w.isupper() and len(w) <= 10 for w in phrase.split()):
        return "heading in capitals"
    if len(words) == 1 and (words[0] in GENERIC or phrase[:1].islower()):
        return "lone common word"
    return None


def score(documents: list[Document], extractor: str) -> Score:
    result = Score()
    for document in documents:
        if extractor == "tipwatch":
            phrases = extract_keywords(
                document.pages, document.language, top=TOP, furniture=document.furniture
            )
        else:
            phrases = yake_phrases(document.text, document.language, TOP)
        lines = _line_keys(document)
        relevant = sum(_lemmas(p, document.language) in document.gold for p in phrases)
        result.documents += 1
        result.returned += len(phrases)
        result.relevant += relevant
        result.precisions.append(relevant / len(phrases) if phrases else 0.0)
        for phrase in phrases:
            reason = junk_reason(phrase, document, lines)
            if reason:
                result.junk += 1
                result.junk_examples.append(f"{document.id}: “{phrase}” ({reason})")
    return result


def load_documents(smoke: bool = False) -> list[Document]:
    """The gold set's documents, extracted as TIP Watch extracts them."""
    gold: list[dict[str, Any]] = yaml.safe_load(GOLD.read_text(encoding="utf-8"))["documents"]
    if smoke:
        gold = [g for g in gold if g["id"] in ("n11-en", "article-1901", "article-2044")]
    documents = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        site = content.build_onu_vienne(folder / "site")
        spip = SpipSite(site, {"onu-vienne": "http://127.0.0.1:9"})
        articles = {a.id: a for a in site.articles}
        page_texts = {
            a.id: extract_html(spip.article_page(a).encode(), f"http://127.0.0.1:9/{a.slug}")
            for a in site.articles
        }
        site_furniture = furniture_lines([e.text for e in page_texts.values()])
        pdf_pages: dict[str, list[str]] = {}
        for entry in gold:
            if "pdf" in entry:
                built = getattr(pdfs, entry["pdf"])(folder / f"{entry['id']}.pdf")
                pdf_pages[entry["id"]] = extract_pdf(built).pages
        newsletter_furniture = furniture_lines(["\n".join(p) for p in pdf_pages.values()])
        for entry in gold:
            language = entry["language"]
            keys = {_lemmas(p, language) for p in entry["keyphrases"]}
            if "pdf" in entry:
                pages = pdf_pages[entry["id"]]
                documents.append(
                    Document(entry["id"], "newsletter", language, pages, keys, newsletter_furniture)
                )
            else:
                article = articles[int(entry["article"])]
                assert article.lang == language, entry["id"]
                pages = page_texts[article.id].pages
                documents.append(
                    Document(entry["id"], "page", language, pages, keys, site_furniture)
                )
    for document in documents:
        assert document.text.strip(), f"{document.id}: no text extracted"
    return documents


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.1f}×" if theirs else "∞×"


def run(smoke: bool = False) -> str:
    documents = load_documents(smoke)
    sets = [
        ("seed newsletters (PDF)", [d for d in documents if d.kind == "newsletter"]),
        ("replica article pages (HTML)", [d for d in documents if d.kind == "page"]),
        ("all", documents),
    ]
    rows = [
        "| documents | n | TIP Watch precision@10 | plain YAKE precision@10 | ratio"
        " | TIP Watch junk | plain YAKE junk |",
        "|---|---|---|---|---|---|---|",
    ]
    examples: list[str] = []
    for name, subset in sets:
        if not subset:
            continue
        ours, plain = score(subset, "tipwatch"), score(subset, "yake")
        rows.append(
            f"| {name} | {ours.documents} | {ours.precision:.2f} ({ours.relevant}/{ours.returned})"
            f" | {plain.precision:.2f} ({plain.relevant}/{plain.returned})"
            f" | {_ratio(ours.precision, plain.precision)} | {ours.junk} | {plain.junk} |"
        )
        if name == "all":
            examples = [f"- TIP Watch: {e}" for e in ours.junk_examples[:10]]
            examples += [f"- plain YAKE: {e}" for e in plain.junk_examples[:10]]
    intro = (
        f"Gold set: {GOLD.relative_to(GOLD.parent.parent.parent)} ({len(documents)} documents)."
        " precision@10: the mean, over documents, of the share of the (at most 10) phrases"
        " returned that the gold set holds (relevant/returned in all in brackets)."
        " Junk: phrases crossing a line break, page furniture, dangling function words or"
        " elisions, headings in capitals, lone common words."
    )
    caveats = (
        "Caveats: the gold set is small and was written by the team that tuned the extractor"
        " (read it, and add documents, before trusting a second decimal); the replica pages are"
        " short, so TIP Watch returns fewer than 10 phrases there (its precision is over what it"
        " returns, plain YAKE always returns 10); the rules find no junk in TIP Watch's lists,"
        " but a reader would still drop a few verb phrases of the short French pages"
        " (“réuni magistrats”), which no rule here detects."
    )
    table = "\n".join(rows)
    junk = "\n".join(examples) if examples else "- none"
    return f"{intro}\n\n{table}\n\n{caveats}\n\nJunk found (first ten of each):\n\n{junk}\n"


if __name__ == "__main__":
    print(run())
