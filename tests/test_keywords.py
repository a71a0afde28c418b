"""Keywords of the seed newsletters: on topic, no masthead, no lemma twice; no page furniture,
no phrase across a line break, no dangling function word or elision (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replica import pdfs
from worker.extract.formats import extract_pdf
from worker.keywords import (
    ELISIONS,
    FUNCTION_WORDS,
    boilerplate_lines,
    extract_keywords,
    furniture_lines,
    mostly_upper,
    yake_phrases,
)
from worker.text import fold, term_words

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


# -- issue 17: keyphrases a reader would pick --------------------------------------------------

SITE_FURNITURE = [
    "Home | News | Publications | Contact",
    "Download the English version; also available in French.",
    "Share this page on social networks",
]


def _site_page(body: list[str]) -> str:
    return "\n".join([SITE_FURNITURE[0], *body, SITE_FURNITURE[1], SITE_FURNITURE[2]])


SITE_PAGES = [
    _site_page(
        [
            "Forced criminality in Serbia",
            "Prosecutors in Belgrade described forced criminality as a growing form of"
            " exploitation. Children were forced to steal and to sell drugs.",
            "The non-punishment principle protects the victims of forced criminality.",
        ]
    ),
    _site_page(
        [
            "Labour exploitation on farms",
            "Labour inspectors found migrant workers in debt bondage on farms in the region.",
            "Debt bondage keeps migrant workers with the same employer for years.",
        ]
    ),
    _site_page(
        [
            "Online sexual exploitation",
            "Investigators followed online sexual exploitation of children across borders.",
        ]
    ),
]


def test_furniture_is_learned_from_the_source_and_removed() -> None:
    furniture = furniture_lines(SITE_PAGES)
    assert {_key(line) for line in SITE_FURNITURE} <= furniture
    assert _key("Forced criminality in Serbia") not in furniture  # said once: content
    page = SITE_PAGES[0]
    furniture_words = {_key(line) for line in SITE_FURNITURE}
    furniture_words = {w for line in furniture_words for w in line.split() if len(w) > 3}
    plain = [fold(k) for k in yake_phrases(page, "en", 15)]
    assert [k for k in plain if furniture_words & set(k.split())], plain  # plain YAKE is fooled
    keywords = [fold(k) for k in extract_keywords(page, "en", furniture=furniture)]
    assert not [k for k in keywords if furniture_words & set(k.split())], keywords
    assert "forced criminality" in keywords


def _key(line: str) -> str:
    return " ".join(term_words(line))


@pytest.mark.parametrize("name", ["n11", "n23"])
def test_no_keyphrase_crosses_a_line_break(extracted: dict, name: str) -> None:
    pages, language = extracted[name]
    lines = [" ".join(term_words(line)) for page in pages for line in page.splitlines()]
    for keyword in extract_keywords(pages, language):
        words = " ".join(term_words(keyword))
        assert any(f" {words} " in f" {line} " for line in lines), keyword


def test_french_elisions_and_function_words_are_trimmed() -> None:
    text = (
        "Éditorial\n"
        "La traite des êtres humains à des fins d'exploitation sexuelle progresse.\n"
        "L'association ASTRA accompagne les victimes d'exploitation sexuelle.\n"
        "L'association ATINA accompagne les victimes de la traite des êtres humains.\n"
        "Le prélèvement d'organes reste rare ; l'exploitation sexuelle reste fréquente.\n"
        "Les ouvriers agricoles L'association ASTRA les soutient.\n"
    )
    keywords = extract_keywords(text, "fr")
    assert keywords
    for keyword in keywords:
        words = term_words(keyword)
        assert words[0] not in ELISIONS | FUNCTION_WORDS, keyword
        assert words[-1] not in ELISIONS | FUNCTION_WORDS, keyword
        assert not keyword.startswith(("L'", "l'", "d'", "D'", "qu'")), keyword
    folded = [fold(k) for k in keywords]
    assert "exploitation sexuelle" in folded, folded
    assert "agricoles l'association astra" not in folded


def test_case_variants_merge_and_the_document_spelling_wins() -> None:
    text = (
        "Forced Begging is rising.\n"
        "Police reported forced begging in the capital.\n"
        "The report on forced begging was published.\n"
        "FORCED BEGGING\n"
        "Children in forced begging need protection.\n"
    )
    keywords = extract_keywords(text, "en")
    begging = [k for k in keywords if fold(k) == "forced begging"]
    assert begging == ["forced begging"], keywords
