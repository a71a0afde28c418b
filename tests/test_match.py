"""Matching: the query language, stemming, thesaurus, explanations, and the prefilter.

Property tests check the parser and the prefilter against the plain evaluation; real-text
tests run on the seed newsletters, turned into PDFs by the replica and extracted for real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bench.matching import regex_matches
from tests.conftest import SmtpServer, Tipwatch
from tests.replica import pdfs
from worker.extract.formats import extract_pdf
from worker.match import (
    DocumentMeta,
    IndexedText,
    Matcher,
    SubscriptionSpec,
    evaluate,
    explain,
    passes_filters,
)
from worker.query import Near, Not, QueryError, Term, format_query, parse_query
from worker.text import fold
from worker.thesaurus import Thesaurus, load_thesaurus

# -- the parser -------------------------------------------------------------------------------


@given(st.text(max_size=80))
@settings(max_examples=400)
def test_parser_never_crashes_and_round_trips(text: str) -> None:
    try:
        node = parse_query(text)
    except QueryError as exc:
        assert 0 <= exc.position <= len(text)
        return
    assert parse_query(format_query(node)) == node


OPERATORS = st.sampled_from(["AND", "OR", "NOT", "(", ")", '"', "NEAR/3", "NEAR", "*", "lang:fr"])


@given(st.lists(st.one_of(OPERATORS, st.sampled_from(["a", "trafic", "ÉTÉ", "x*"])), max_size=12))
def test_parser_on_operator_soup(tokens: list[str]) -> None:
    text = " ".join(tokens)
    try:
        node = parse_query(text)
    except QueryError:
        return
    assert parse_query(format_query(node)) == node


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("trafficking NEAR/x minors", "NEAR/n needs a number", 12),
        ("(a OR b) NEAR/3 c", "NEAR joins two words or phrases", 9),
        ("a NEAR/2 b NEAR/2 c", "combine several NEARs with AND", 11),
        ("kind: pdf", "kind: needs a value", 0),
        ("lang:fr", "not negated", 0),
        ("(" * 60 + "a" + ")" * 60, "nested too deeply", 40),
    ],
)
def test_invalid_queries_point_at_the_mistake(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert message in str(caught.value)
    assert caught.value.position == position


# -- evaluation -------------------------------------------------------------------------------

PAGES = [
    "Editorial: traffickers forced minors into forced delinquency and begging.",
    "Trafficking of minors is rising; exploitations of many kinds were reported.",
    "La traite des êtres humains et la délinquance forcée des mineurs.",
]


def _terms(query: str, pages: list[str] = PAGES, language: str | None = "en") -> list[str]:
    result = explain(parse_query(query), IndexedText.build(pages, language))
    return [] if result is None else [t["term"] for t in result["terms"]]


def test_stemming_accents_and_case() -> None:
    assert _terms("trafficked") == ["trafficked"]  # "Trafficking"
    assert _terms("exploitation") == ["exploitation"]  # "exploitations"
    assert _terms("TRAITE DES ETRES HUMAINS", language=None) == [
        "TRAITE",
        "DES",
        "ETRES",
        "HUMAINS",
    ]
    assert _terms('"delinquance forcee"', language="fr") == ["delinquance forcee"]
    assert _terms("traffick*") == ["traffick*"]
    assert _terms("begg*") == ["begg*"]
    assert _terms("smuggling") == []


def test_near_counts_words_between_in_either_order_on_one_page() -> None:
    assert _terms("trafficking NEAR/1 minors") == ["trafficking", "minors"]
    assert _terms("minors NEAR/1 trafficking") == ["minors", "trafficking"]
    assert _terms("trafficking NEAR/0 minors") == []
    assert _terms('"forced delinquency" NEAR/1 begging') == ["forced delinquency", "begging"]
    assert _terms("begging NEAR/5 rising") == []  # other page
    near = explain(parse_query("forced NEAR/0 minors"), IndexedText.build(PAGES, "en"))
    assert near is not None and near["terms"][0]["count"] == 1  # only the occurrence near


def test_explanation_lists_only_the_branches_that_matched() -> None:
    assert _terms("(trafficking AND smuggling) OR begging") == ["begging"]
    assert _terms("(minors AND smuggling) OR (begging AND NOT migrants)") == ["begging"]
    result = explain(parse_query("begging OR rising"), IndexedText.build(PAGES, "en"))
    assert result is not None
    assert [(t["term"], t["pages"]) for t in result["terms"]] == [("begging", [1]), ("rising", [2])]
    assert "«begging»." in result["terms"][0]["snippets"][0]["text"]


def test_filters_in_the_query_and_on_the_subscription() -> None:
    index = IndexedText.build(PAGES, "en")
    meta = DocumentMeta("onu-vienne", "en", "pdf")
    assert evaluate(parse_query("minors source:onu-vienne kind:pdf"), index, meta) is not None
    assert evaluate(parse_query("minors lang:fr"), index, meta) is None
    assert evaluate(parse_query("minors NOT kind:html"), index, meta) is not None
    assert passes_filters({"sources": ["onu-vienne"], "kinds": []}, meta)
    assert not passes_filters({"languages": ["fr"]}, meta)


WORDS = ["trafficking", "trafficked", "minors", "forced", "begging", "délinquance", "forcée"]
WORDS += ["exploitation", "exploitations", "traite", "êtres", "humains", "victims", "the", "of"]
word = st.sampled_from(WORDS)


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 7 if depth < 3 else 3))
    if choice == 0:
        return draw(word)
    if choice == 1:
        return '"' + " ".join(draw(st.lists(word, min_size=2, max_size=3))) + '"'
    if choice == 2:
        return draw(word)[:3] + "*"
    if choice == 3:
        return f"{draw(word)} NEAR/{draw(st.integers(0, 4))} {draw(word)}"
    if choice == 4:
        return f"lang:{draw(st.sampled_from(['en', 'fr']))} {draw(queries(depth + 1))}"
    op = draw(st.sampled_from(["AND", "OR", "AND NOT"]))
    return f"({draw(queries(depth + 1))} {op} {draw(queries(depth + 1))})"


documents = st.lists(st.lists(word, max_size=40).map(" ".join), min_size=1, max_size=3)
languages = st.sampled_from(["en", "fr", None])


@given(documents, st.lists(word, min_size=1, max_size=3), languages, st.data())
def test_a_document_containing_a_phrase_matches_it(
    pages: list[str], phrase: list[str], language: str | None, data: st.DataObject
) -> None:
    page = data.draw(st.integers(0, len(pages) - 1))
    pages[page] = f"{pages[page]} {' '.join(phrase).upper()} {pages[page]}"
    result = explain(parse_query(f'"{" ".join(phrase)}"'), IndexedText.build(pages, language))
    assert result is not None
    assert page + 1 in result["terms"][0]["pages"]


@given(queries(), documents, languages)
def test_not_inverts(query: str, pages: list[str], language: str | None) -> None:
    node = parse_query(query)
    index = IndexedText.build(pages, language)
    assert (evaluate(Not(node), index) is None) == (evaluate(node, index) is not None)


@given(st.lists(queries(), min_size=1, max_size=12), documents, languages, st.booleans())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_prefilter_equals_naive_evaluation(
    texts: list[str], pages: list[str], language: str | None, thesaurus: bool
) -> None:
    specs = [SubscriptionSpec(i, q, {}, thesaurus) for i, q in enumerate(texts)]
    matcher = Matcher.build(specs, load_thesaurus())
    assume(not matcher.invalid)
    index = IndexedText.build(pages, language)
    meta = DocumentMeta("s", language, "pdf")
    fast = matcher.match(index, meta)
    assert fast == matcher.match(index, meta, use_prefilter=False)
    if not thesaurus:
        assert [k for k, _ in fast] == regex_matches(specs, pages, meta)


def test_query_terms_are_ored_with_the_thesaurus() -> None:
    thesaurus = Thesaurus.from_mapping(
        {"entries": [{"en": ["forced criminality"], "fr": ["délinquance forcée"]}]}
    )
    expanded = thesaurus.expand(parse_query('"forced criminalities" NEAR/3 minors'))
    assert isinstance(expanded, Near) is False
    labels = {n.left.label for n in expanded.children}  # type: ignore[union-attr]
    assert labels == {
        "forced criminalities",
        "délinquance forcée (thesaurus: forced criminalities)",
    }
    assert thesaurus.alternatives(Term(("forced",), True, "forced*")) == []


# -- the seed newsletters ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[str], IndexedText]]:
    folder: Path = tmp_path_factory.mktemp("seeds")
    built = {
        "n11-en": (pdfs.build_n11_en, "en"),
        "n11-fr": (pdfs.build_n11_fr, "fr"),
        "n23-en": (pdfs.build_n23_en, "en"),
    }
    out = {}
    for name, (build, language) in built.items():
        extracted = extract_pdf(build(folder / f"{name}.pdf"))
        assert extracted.language == language
        out[name] = (extracted.pages, IndexedText.build(extracted.pages, language))
    return out


def _pages_with(pages: list[str], phrase: str) -> list[int]:
    return [n for n, p in enumerate(pages, 1) if phrase in " ".join(p.casefold().split())]


def test_n11_matches_forced_delinquency_on_its_page(seeds: dict) -> None:
    pages, index = seeds["n11-en"]
    result = explain(parse_query('"forced delinquency" AND minors'), index)
    assert result is not None
    term = result["terms"][0]
    assert term["term"] == "forced delinquency"
    assert term["pages"] == _pages_with(pages, "forced delinquency") != []
    assert "«forced delinquency»" in term["snippets"][0]["text"]


def test_thesaurus_crosses_languages(seeds: dict) -> None:
    thesaurus = load_thesaurus()
    specs = [
        SubscriptionSpec("fr", '"délinquance forcée"', {}, True),
        SubscriptionSpec("en", '"forced criminality"', {}, True),
        SubscriptionSpec("fr-plain", '"délinquance forcée"', {}, False),
    ]
    matcher = Matcher.build(specs, thesaurus)
    _, en_index = seeds["n11-en"]
    found = dict(matcher.match(en_index, DocumentMeta("onu-vienne", "en", "pdf")))
    assert "fr-plain" not in found
    labels = [t["term"] for t in found["fr"]["terms"]]
    assert "forced delinquency (thesaurus: délinquance forcée)" in labels
    assert found["fr"]["terms"][0]["thesaurus"] == "délinquance forcée"
    _, fr_index = seeds["n11-fr"]
    found = dict(matcher.match(fr_index, DocumentMeta("onu-vienne", "fr", "pdf")))
    assert {"fr", "en", "fr-plain"} <= set(found)
    en_labels = [t["term"] for t in found["en"]["terms"]]
    assert "délinquance forcée (thesaurus: forced criminality)" in en_labels


def test_every_thesaurus_entry_is_bilingual() -> None:
    thesaurus = load_thesaurus()
    assert len(thesaurus.entries) >= 25
    for entry in thesaurus.entries:
        assert any(re.search(r"[a-z]", t.raw) for t in entry) and len(entry) >= 2


def test_n23_near_and_prefix(seeds: dict) -> None:
    _, index = seeds["n23-en"]
    assert explain(parse_query('Dubrovnik AND "forced labor"'), index) is not None
    assert explain(parse_query("traffick* NEAR/5 Serbia"), index) is not None
    assert explain(parse_query("Dubrovnik NEAR/0 zzzz"), index) is None


# -- through the CLI --------------------------------------------------------------------------


def test_preview_and_backfill_through_the_cli(tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    tipwatch.run("poll", "--source", "onu-vienne")
    bad = tipwatch.run("subscribe", "x", "--query", "a NEAR/x b", "-n", smtp.url(), check=False)
    assert bad.returncode == 2 and "NEAR/n needs a number" in bad.stderr
    tipwatch.run(
        "subscribe", "fr-crime", "--query", '"forced criminality"', "--thesaurus",
        "--language", "fr", "--kind", "pdf", "--notify", smtp.url(),
    )  # fmt: skip
    preview = tipwatch.json("subscriptions", "preview", "fr-crime")
    assert preview and {row["language"] for row in preview} == {"fr"}
    labels = {t["term"] for row in preview for t in row["explanation"]["terms"]}
    assert "délinquance forcée (thesaurus: forced criminality)" in labels
    listed = {row["name"]: row for row in tipwatch.json("subscriptions")}
    assert listed["fr-crime"]["filters"] == {"languages": ["fr"], "kinds": ["pdf"]}
    assert listed["fr-crime"]["thesaurus"] is True
    # Created after the poll: nothing alerted, until asked to backfill.
    assert tipwatch.json("poll", "--source", "onu-vienne")["sources"][0]["alerts"] == 0
    done = tipwatch.run(
        "subscribe", "fr-crime-2", "--query", '"forced criminality"', "--thesaurus",
        "--language", "fr", "--kind", "pdf", "--backfill", "--notify", smtp.url(),
    )  # fmt: skip
    assert f"{len(preview)} alert(s) queued" in done.stdout.replace("\n", " ")
