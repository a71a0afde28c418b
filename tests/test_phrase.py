"""Quoted phrases are exact words: folded (case, accents, ligatures) but never stemmed.

The subscription ``"forced criminality"`` used to match "forced criminal" (both stem to
*crimin*) and its alert claimed occurrences the document did not have. Every check goes
through the matcher the alerts use (``Matcher``/``matcher_for`` over ``IndexedText``).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.match import DocumentMeta, IndexedText, Matcher, SubscriptionSpec, matcher_for
from worker.query import format_query, parse_query
from worker.thesaurus import Thesaurus, load_thesaurus

THESAURUS = Thesaurus.from_mapping(
    {
        "entries": [
            {"en": ["trafficking"], "fr": ["traite"]},
            {"en": ["forced criminality"], "fr": ["délinquance forcée"]},
        ]
    }
)


def matched(
    query: str,
    pages: list[str],
    language: str | None = "en",
    thesaurus: Thesaurus | None = None,
) -> dict[str, Any] | None:
    """The explanation of the one subscription ``query`` on ``pages``, or None."""
    spec = SubscriptionSpec("q", query, {}, thesaurus is not None)
    index = IndexedText.build(pages, language)
    found = dict(Matcher.build([spec], thesaurus).match(index, DocumentMeta("s", language, "pdf")))
    return found.get("q")


def only_term(explanation: dict[str, Any] | None) -> dict[str, Any]:
    assert explanation is not None
    [term] = explanation["terms"]
    return term  # type: ignore[no-any-return]


# -- exact, not stemmed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Victims were used for forced criminal activity.",
        "It was forced criminal, they said.",
        "Forced criminalities are on the rise.",
        "Criminality was forced on them.",
    ],
)
def test_a_quoted_phrase_does_not_match_other_forms_of_its_words(text: str) -> None:
    assert matched('"forced criminality"', [text]) is None


def test_bare_words_are_still_stemmed() -> None:
    assert only_term(matched("criminality", ["A criminal network."]))["count"] == 1
    assert matched("forced criminality", ["forced criminal activity"]) is not None
    assert matched("traffick*", ["Trafficked persons"]) is not None


@pytest.mark.parametrize(
    "text",
    [
        "forced\ncriminality",
        "FORCED Criminality",
        "Minors were pushed into forced   \n\n  criminality in 2023.",
        "forced-\ncriminality",
        "(forced) criminality",
    ],
)
def test_a_quoted_phrase_matches_across_case_and_line_breaks(text: str) -> None:
    assert only_term(matched('"forced criminality"', [text]))["count"] == 1


def test_a_phrase_across_a_page_line_break_but_never_across_pages() -> None:
    pages = ["Cover page.", "The report on forced\ncriminality of minors.", "Annex."]
    term = only_term(matched('"forced criminality"', pages))
    assert term["pages"] == [2]
    assert "«forced criminality»" in term["snippets"][0]["text"]  # the line break made a space
    assert matched('"forced criminality"', ["It was forced", "criminality, page two."]) is None


@pytest.mark.parametrize(
    "text",
    [
        "La delinquance forcee des mineurs",
        "LA DÉLINQUANCE FORCÉE DES MINEURS",
        unicodedata.normalize("NFD", "la Délinquance forcée"),  # accents as combining marks
    ],
)
def test_a_french_phrase_matches_without_its_accents(text: str) -> None:
    assert matched('"délinquance forcée"', [text], "fr") is not None
    assert matched('"delinquance forcee"', [text], None) is not None


def test_a_french_phrase_does_not_match_its_plural() -> None:
    assert matched('"délinquance forcée"', ["Les délinquances forcées"], "fr") is None
    assert matched("délinquance forcée", ["Les délinquances forcées"], "fr") is not None


def test_ligatures_fold_the_same_way() -> None:
    assert matched('"cœur"', ["Au COEUR du réseau"], "fr") is not None
    assert matched('"coeur"', ["Au Cœur du réseau"], "fr") is not None
    assert matched('"cœur"', ["Les cœurs"], "fr") is None


def test_a_quoted_word_is_exact_too() -> None:
    text = ["Trafficking was reported; persons were trafficked; trafficking grows."]
    term = only_term(matched('"trafficking"', text))
    assert term["count"] == 2
    assert matched('"trafficking"', ["Persons were trafficked."]) is None
    assert only_term(matched("trafficking", text))["count"] == 3


def test_quoted_and_bare_are_distinct_queries_that_round_trip() -> None:
    for query in ('"trafficking"', "trafficking", '"forced crimin*"', "main-d'œuvre"):
        node = parse_query(query)
        assert parse_query(format_query(node)) == node
    assert parse_query('"trafficking"') != parse_query("trafficking")
    assert parse_query("main-d'œuvre") != parse_query('"main d oeuvre"')


# -- the explanation tells the document's words -----------------------------------------------

REPORT = [
    "Forced Criminality is rising. Some forced criminal acts were seen.",
    "Again FORCED CRIMINALITY, and forced criminalities.",
]


def test_the_count_is_the_exact_occurrences_and_the_snippets_the_documents_words() -> None:
    term = only_term(matched('"forced criminality"', REPORT))
    assert term["term"] == "forced criminality"
    assert (term["count"], term["pages"]) == (2, [1, 2])
    texts = [s["text"] for s in term["snippets"]]
    assert "«Forced Criminality»" in texts[0] and "«FORCED CRIMINALITY»" in texts[1]
    assert all(t.count("«") == 1 for t in texts)
    stemmed = only_term(matched("criminality", REPORT))
    assert stemmed["count"] == 4  # the bare word: every form


def test_the_snippet_keeps_the_documents_accents() -> None:
    term = only_term(matched('"delinquance forcee"', ["Sur la Délinquance forcée, rien."], "fr"))
    assert "«Délinquance forcée»" in term["snippets"][0]["text"]


def test_the_title_is_searched_the_same_way() -> None:
    specs = [SubscriptionSpec("q", '"forced criminality"')]
    matcher = Matcher.build(specs, None)
    meta = DocumentMeta("s", "en", "pdf")
    body = IndexedText.build(["Nothing here about forced criminal acts."], "en")
    assert matcher.match(body, meta, IndexedText.build(["Forced criminal acts"], "en")) == []
    [(_, found)] = matcher.match(body, meta, IndexedText.build(["On Forced Criminality"], "en"))
    assert (
        found["in"] == "title"
        and "«Forced Criminality»" in found["terms"][0]["snippets"][0]["text"]
    )


# -- with the other operators -----------------------------------------------------------------


def test_near_between_a_phrase_and_a_word() -> None:
    near = '"forced criminality" NEAR/3 minors'
    found = matched(near, ["Minors pushed into forced criminality."])
    assert found is not None
    assert [t["term"] for t in found["terms"]] == ["forced criminality", "minors"]
    assert matched(near, ["Minors pushed into forced criminal acts."]) is None
    text = ["forced criminality of the minors"]
    assert matched('minors NEAR/2 "forced criminality"', text) is not None
    assert matched('minors NEAR/1 "forced criminality"', text) is None


def test_not_and_filters_with_a_phrase() -> None:
    text = ["Trafficking for forced criminality."]
    assert matched('trafficking NOT "forced criminal"', text) is not None  # not this phrase
    assert matched("trafficking NOT forced criminal", text) is None  # the bare words are there
    assert matched('"forced criminality" lang:fr', text) is None
    assert matched('"forced criminality" lang:en kind:pdf', text) is not None


def test_a_prefix_ends_a_quoted_phrase_as_before() -> None:
    assert matched('"forced crimin*"', ["Forced criminal acts"]) is not None
    assert matched('"forced crimin*"', ["forced CRIMINALITY"]) is not None
    assert matched('"forced crimin*"', ["forces criminal"]) is None  # 'forced' is exact


# -- the thesaurus ----------------------------------------------------------------------------


def test_the_thesaurus_alternatives_of_a_quoted_phrase_are_exact() -> None:
    term = only_term(matched('"forced criminality"', ["La délinquance forcée."], "fr", THESAURUS))
    assert term["term"] == "délinquance forcée (thesaurus: forced criminality)"
    assert term["thesaurus"] == "forced criminality"
    assert "«délinquance forcée»" in term["snippets"][0]["text"]
    assert matched('"forced criminality"', ["Des délinquances forcées."], "fr", THESAURUS) is None
    near = '"forced criminality" NEAR/3 mineurs'
    assert matched(near, ["la délinquance forcée des mineurs"], "fr", THESAURUS) is not None
    assert matched(near, ["les délinquances forcées des mineurs"], "fr", THESAURUS) is None


def test_the_thesaurus_alternatives_of_a_bare_word_are_stemmed() -> None:
    assert matched("trafficking", ["Les traites"], "fr", THESAURUS) is not None
    assert matched('"trafficking"', ["Les traites"], "fr", THESAURUS) is None
    assert matched('"trafficking"', ["La Traite"], "fr", THESAURUS) is not None


def test_the_real_thesaurus_names_what_the_document_says() -> None:
    found = matched('"forced criminality"', ["Forced criminal activity"], "en", load_thesaurus())
    term = only_term(found)
    assert term["term"] == "forced criminal activity (thesaurus: forced criminality)"
    assert "«Forced criminal activity»" in term["snippets"][0]["text"]


# -- the prefilter never drops what the matcher matches ----------------------------------------

QUERIES = [
    '"forced criminality"',
    "forced criminality",
    '"trafficking"',
    "trafficking",
    '"forced crimin*"',
    '"délinquance forcée"',
    "délinquance forcée",
    '"cœur"',
    '"forced criminality" NEAR/3 minors',
    'minors NEAR/0 "trafficking"',
    'trafficking NOT "forced criminal"',
    '("forced criminality" OR "délinquance forcée") lang:fr',
    '"traffick*"',
]
DOCUMENTS = [
    (["Victims were used for forced criminal activity by traffickers."], "en"),
    (["FORCED\nCriminality of minors", "and trafficking of minors."], "en"),
    (["Forced criminalities; trafficked minors; forced criminality"], None),
    (["La DÉLINQUANCE forcée des mineurs, au coeur de la traite."], "fr"),
    (["Les délinquances forcées", "trafficking minors"], "fr"),
    (["forced", "criminality"], "en"),
]


@pytest.mark.parametrize("thesaurus", [None, load_thesaurus()])
@pytest.mark.parametrize(("pages", "language"), DOCUMENTS)
def test_many_subscriptions_match_as_each_one_alone(
    pages: list[str], language: str | None, thesaurus: Thesaurus | None
) -> None:
    specs = [SubscriptionSpec(i, q, {}, thesaurus is not None) for i, q in enumerate(QUERIES)]
    index, meta = IndexedText.build(pages, language), DocumentMeta("s", language, "pdf")
    many = matcher_for(specs, thesaurus, thesaurus.version if thesaurus else "")
    assert not many.invalid
    alone = [
        found
        for spec in specs
        for found in Matcher.build([spec], thesaurus).match(index, meta, use_prefilter=False)
    ]
    assert many.match(index, meta) == alone
    assert alone  # the documents are not all misses


WORDS = ["forced", "forces", "criminality", "criminal", "Trafficking", "trafficked", "cœur"]
WORDS += ["coeurs", "délinquance", "DELINQUANCES", "minors", "of"]
word = st.sampled_from(WORDS)


@st.composite
def exact_terms(draw: st.DrawFn) -> str:
    words = draw(st.lists(word, min_size=1, max_size=3))
    if draw(st.booleans()):
        words[-1] = words[-1][: draw(st.integers(2, 4))] + "*"
    text = " ".join(words)
    return f'"{text}"' if draw(st.booleans()) or " " in text else text


queries = st.one_of(
    exact_terms(),
    st.builds(lambda a, n, b: f"{a} NEAR/{n} {b}", exact_terms(), st.integers(0, 3), exact_terms()),
    st.builds(lambda a, b: f"{a} OR {b}", exact_terms(), exact_terms()),
    st.builds(lambda a, b: f"{a} NOT {b}", exact_terms(), exact_terms()),
)
documents = st.lists(st.lists(word, max_size=25).map(" ".join), min_size=1, max_size=3)


@given(st.lists(queries, min_size=1, max_size=8), documents, st.sampled_from(["en", "fr", None]))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_the_prefilter_keeps_every_exact_match(
    texts: list[str], pages: list[str], language: str | None
) -> None:
    specs = [SubscriptionSpec(i, q) for i, q in enumerate(texts)]
    matcher = Matcher.build(specs, None)
    index, meta = IndexedText.build(pages, language), DocumentMeta("s", language, "pdf")
    assert matcher.match(index, meta) == matcher.match(index, meta, use_prefilter=False)
