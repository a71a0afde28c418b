"""Keywords of the seed newsletters: on topic, no masthead, no lemma twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replica import pdfs
from worker.extract.formats import extract_pdf
from worker.keywords import boilerplate_lines, extract_keywords, mostly_upper
from worker.text import fold

MASTHEAD = ("liberte", "egalite", "fraternite", "ministere", "etrangeres", "representation perm")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[str], str]]:
    folder: Path = tmp_path_factory.mktemp("kw")
    out = {}
    for name, build in (("n11", pdfs.build_n11_en), ("n23", pdfs.build_n23_en)):
        result = extract_pdf(build(folder / f"{name}.pdf"))
        out[name] = (result.pages, result.language or "en")
    return out


def test_n11_keywords_are_about_forced_criminality(extracted: dict) -> None:
    pages, language = extracted["n11"]
    keywords = [fold(k) for k in extract_keywords(pages, language)]
    assert keywords[0] == "human trafficking"
    assert {"forced criminal activity", "forced criminality", "forced delinquency"} & set(keywords)


@pytest.mark.parametrize("name", ["n11", "n23"])
def test_no_masthead_or_capitals(extracted: dict, name: str) -> None:
    pages, language = extracted[name]
    for text in (pages, "\n\n".join(pages)):  # as pages, or as the stored text
        keywords = extract_keywords(text, language)
        assert len(keywords) == 15
        assert not [k for k in keywords if any(m in fold(k) for m in MASTHEAD)], keywords
        assert not [k for k in keywords if mostly_upper(k)], keywords


def test_lemmas_are_deduplicated() -> None:
    text = "Les drogues et la drogue. " * 5 + "Le trafic de drogues en Europe du Sud-Est. " * 3
    folded = [fold(k) for k in extract_keywords(text, "fr")]
    assert not ({"drogue", "drogues"} <= set(folded)), folded


def test_boilerplate_is_repeated_or_upper_case() -> None:
    pages = [
        "Liberté Égalité Fraternité\nThe victims of trafficking.",
        "Liberté Égalité Fraternité\nx",
    ]
    pages.append("Liberté Égalité Fraternité\nMINISTÈRE DE L'EUROPE\nForced labour in Serbia.")
    assert boilerplate_lines(pages) == {"liberte egalite fraternite", "ministere de l europe"}
    assert not mostly_upper("UNODC") and mostly_upper("AFFAIRES ÉTRANGÈRES")


@pytest.mark.parametrize("text", ["", [""], ["", ""], "\n\n", ["   \n"]])
def test_empty_documents_have_no_keywords(text: str | list[str]) -> None:
    # An encrypted or scanned PDF has empty pages: it must still be archived.
    assert extract_keywords(text, "en") == []
