"""Issue 12, adversarial queries: what one query may cost is bounded when it is parsed, and
what it costs on one document is bounded whatever the document.

The fast NEAR (two binary searches per position) and the phrase search anchored on the rarest
word are checked against a brute-force reference (every position, every pair) on small
generated documents; costs are checked with the matcher's work counter, never with a clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Tipwatch, make_env
from worker.match import MAX_POSITIONS, IndexedText, Work, evaluate, explain
from worker.query import (
    MAX_NEAR,
    MAX_NEARS,
    MAX_QUERY_CHARS,
    MAX_WORDS,
    And,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    format_query,
    parse_query,
)
from worker.text import query_stems

ISSUE_QUERY = " AND ".join(["trafficking NEAR/200 trafficking"] * 51)  # 93 s on 50 pages
PAGE = " ".join(["trafficking"] * 450)


def flood(pages: int) -> IndexedText:
    """The adversarial document: every word of every page is 'trafficking'."""
    return IndexedText.build([PAGE] * pages, "en")


# -- the limits, checked by the parser --------------------------------------------------------


def _error(query: str) -> QueryError:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    return caught.value


def test_the_issue_query_is_refused_at_its_first_near_too_many() -> None:
    error = _error(ISSUE_QUERY)
    assert f"a query has at most {MAX_NEARS} NEAR operators" in error.message
    nears = [i for i in range(len(ISSUE_QUERY)) if ISSUE_QUERY.startswith("NEAR/", i)]
    assert error.position == nears[MAX_NEARS]


def test_a_near_beyond_the_limit_is_refused() -> None:
    query = f"trafficking NEAR/{MAX_NEAR + 1} minors"
    error = _error(query)
    assert f"NEAR/n needs a number of words from 0 to {MAX_NEAR}" in str(error)
    assert error.position == query.index("NEAR/")


def test_too_many_nears_are_refused_at_the_first_one_too_many() -> None:
    query = " AND ".join([f"trafficking NEAR/{MAX_NEAR} minors"] * 51)
    error = _error(query)
    assert f"a query has at most {MAX_NEARS} NEAR operators" in error.message
    nears = [i for i in range(len(query)) if query.startswith("NEAR/", i)]
    assert error.position == nears[MAX_NEARS]
    # A long query is shown around the mistake: the pointer line stays short and exact.
    _, shown, caret = str(error).split("\n")
    assert len(shown) < 120 and shown[caret.index("^") :].startswith(f"NEAR/{MAX_NEAR}")
    assert parse_query(" AND ".join([f"trafficking NEAR/{MAX_NEAR} minors"] * MAX_NEARS))


def test_too_many_words_are_refused_at_the_first_one_too_many() -> None:
    words = [f"w{i}" for i in range(MAX_WORDS)]
    assert parse_query(" OR ".join(words))
    query = " OR ".join([*words, "extra"])
    assert "at most 64 words" in _error(query).message and MAX_WORDS == 64
    assert _error(query).position == query.index("extra")
    phrases = " OR ".join(['"forced labour in serbia"'] * (MAX_WORDS // 4)) + ' OR "x y"'
    assert _error(phrases).position == phrases.index('"x y"')  # a phrase counts its words


def test_a_query_too_long_is_refused() -> None:
    assert "at most 2000 characters" in str(_error("a" * (MAX_QUERY_CHARS + 1)))


@pytest.mark.parametrize(
    "query",
    [
        "trafficking minors",
        '"forced begging" OR "forced criminality" OR "délinquance forcée"',
        '"forced labour" NEAR/3 Serbia AND (trafficking OR smuggling) lang:fr kind:pdf',
        "traffick* NEAR/100 Serbia AND NOT smuggling",
        " OR ".join(['"traite des êtres humains"'] * 16),  # 64 words
    ],
)
def test_ordinary_queries_are_far_from_the_limits(query: str) -> None:
    node = parse_query(query)
    assert parse_query(format_query(node)) == node


# -- a brute-force reference -------------------------------------------------------------------


def brute_word(index: IndexedText, i: int, word: str, prefix: bool, exact: bool) -> bool:
    """Does the document's word ``i`` match ``word``: its start, itself, or one of its stems."""
    if prefix:
        return index.words[i].startswith(word)
    if exact:
        return index.words[i] == word
    return not query_stems(word).isdisjoint(index.stems[i])


def brute_find(index: IndexedText, term: Term) -> list[int]:
    """Every word index where the term starts: each word of the phrase compared there."""
    last = len(term.words) - 1
    hits = []
    for start in range(len(index.words)):
        end = start + last
        if end >= len(index.words) or index.spans[end][0] != index.spans[start][0]:
            continue
        if all(
            brute_word(index, start + k, w, term.prefix and k == last, term.exact)
            for k, w in enumerate(term.words)
        ):
            hits.append(start)
    return hits


def brute_near(node: Near, left: list[int], right: list[int], index: IndexedText) -> Any:
    """Every pair compared: non-overlapping, on one page, at most n words between."""
    len_l, len_r, n = len(node.left.words), len(node.right.words), node.distance
    pairs = [
        (a, b)
        for a in left
        for b in right
        if index.spans[a][0] == index.spans[b][0]
        and (0 <= b - (a + len_l) <= n or 0 <= a - (b + len_r) <= n)
    ]
    if not pairs:
        return None
    witness = {node.left: {a for a, _ in pairs}}
    witness.setdefault(node.right, set()).update(b for _, b in pairs)
    return witness


def brute_evaluate(node: Node, index: IndexedText, limit: int | None = None) -> Any:
    """The reference evaluation; ``limit`` keeps the first occurrences of each term only."""

    def find(term: Term) -> list[int]:
        return brute_find(index, term)[:limit]

    def walk(node: Node) -> Any:
        if isinstance(node, Term):
            return {node: set(find(node))} if find(node) else None
        if isinstance(node, Near):
            return brute_near(node, find(node.left), find(node.right), index)
        if isinstance(node, Not):
            return {} if walk(node.child) is None else None
        assert isinstance(node, And | Or)
        parts = [walk(child) for child in node.children]
        if (isinstance(node, And) and None in parts) or all(p is None for p in parts):
            return None
        witness: dict[Term, set[int]] = {}
        for part in parts:
            for term, hits in (part or {}).items():
                witness.setdefault(term, set()).update(hits)
        return witness

    return walk(node)


def brute_explain(node: Node, index: IndexedText) -> Any:
    witness = brute_evaluate(node, index)
    if witness is None:
        return None
    terms = []
    for term in dict.fromkeys(t for t in _terms(node) if t in witness):
        hits = sorted(witness[term])
        terms.append(
            {
                "term": term.label,
                "count": len(hits),
                "pages": sorted({index.spans[h][0] for h in hits}),
                "snippets": [
                    {"page": index.spans[h][0], "text": index.snippet(h, len(term.words))}
                    for h in hits[:3]
                ],
            }
        )
    return {"terms": terms}


def _terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Near):
        return [node.left, node.right]
    if isinstance(node, Not):
        return _terms(node.child)
    if isinstance(node, And | Or):
        return [t for child in node.children for t in _terms(child)]
    return []


# A small vocabulary with stems in common (trafficking/trafficked), accents, a French word and
# prefixes of one another, so that terms overlap, repeat and meet across the page boundaries.
WORDS = ["trafficking", "trafficked", "traffic", "minors", "minor", "forced", "forcée", "of"]
word = st.sampled_from(WORDS)
pages = st.lists(st.lists(word, max_size=30).map(" ".join), min_size=1, max_size=3)
short_pages = st.lists(st.lists(word, max_size=8).map(" ".join), min_size=1, max_size=5)
languages = st.sampled_from(["en", "fr", None])


@st.composite
def terms(draw: st.DrawFn) -> str:
    words = draw(st.lists(word, min_size=1, max_size=3))
    if draw(st.booleans()):
        words[-1] = words[-1][: draw(st.integers(2, 5))] + "*"
    if len(words) == 1 and draw(st.booleans()):
        return words[0]
    return '"' + " ".join(words) + '"'  # exact words, even of one word


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 4 if depth < 2 else 1))
    if choice == 0:
        return draw(terms())
    if choice == 1:
        return f"{draw(terms())} NEAR/{draw(st.integers(0, 6))} {draw(terms())}"
    op = draw(st.sampled_from(["AND", "OR", "AND NOT"]))
    return f"({draw(queries(depth + 1))} {op} {draw(queries(depth + 1))})"


@given(terms(), pages, languages)
@example('"of minors"', ["minors of of of"], "en")  # anchored on 'minors': no start at -1
@example('"minors of"', ["of of minors", "of"], "en")  # nor across the page break
@settings(max_examples=300)
def test_find_equals_the_brute_force_search(term: str, texts: list[str], language: Any) -> None:
    node = parse_query(term)
    assert isinstance(node, Term)
    index = IndexedText.build(texts, language)
    assert index.find(node) == brute_find(index, node)


@given(queries(), pages, languages)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_near_and_explanations_equal_the_brute_force_reference(
    query: str, texts: list[str], language: Any
) -> None:
    node = parse_query(query)
    index = IndexedText.build(texts, language)
    assert explain(node, index) == brute_explain(node, index)
    assert evaluate(node, index) == brute_evaluate(node, index)


@given(terms(), terms(), st.integers(0, 5), short_pages, languages)
@settings(max_examples=400)
def test_a_near_equals_the_brute_force_pairs_across_page_breaks(
    left: str, right: str, distance: int, texts: list[str], language: Any
) -> None:
    node = parse_query(f"{left} NEAR/{distance} {right}")
    index = IndexedText.build(texts, language)
    assert explain(node, index) == brute_explain(node, index)


@given(
    st.lists(st.sampled_from(["trafficking", "trafficked", "minors", "of"]), max_size=60),
    st.integers(1, 6),
    st.integers(0, 5),
)
@settings(max_examples=200)
def test_past_the_cap_a_near_pairs_the_first_occurrences_only(
    words: list[str], limit: int, distance: int
) -> None:
    texts = [" ".join(words[i : i + 20]) for i in range(0, len(words), 20)]
    index = IndexedText.build(texts, "en")
    node = parse_query(
        f"trafficking NEAR/{distance} minors OR traffick* NEAR/{distance} of OR minors"
    )
    assert evaluate(node, index, limit=limit) == brute_evaluate(node, index, limit)


# -- the work per document --------------------------------------------------------------------


def bound(node: Node, limit: int, index: IndexedText) -> int:
    """The rule of ``evaluate``'s docstring: limit × (2 × words + 2 × NEARs) + lists, where a
    word opens at most two lists (one stem per language) and a prefix at most one per word of
    the document's vocabulary."""
    distinct = set(_terms(node))
    words = sum(len(t.words) for t in distinct)
    prefixes = sum(t.prefix for t in distinct)
    lists = 2 * words + prefixes * len(index.vocabulary)
    return limit * (2 * words + 2 * len(_nears(node))) + lists


def _nears(node: Node) -> set[Near]:
    if isinstance(node, Near):
        return {node}
    if isinstance(node, Not):
        return _nears(node.child)
    if isinstance(node, And | Or):
        return set().union(*(_nears(c) for c in node.children))
    return set()


def largest_near_query() -> str:
    """MAX_NEARS distinct NEAR/MAX_NEAR clauses whose twenty terms all match every word of
    the flooded document (prefixes of 'trafficking' and forms stemmed to 'traffick')."""
    forms = "trafficking trafficked trafficks traffick traffickings trafficker traffickers"
    forms += " traffickingly trafficke trafficki"
    clauses = [
        f"{'trafficking'[:k]}* NEAR/{MAX_NEAR} {form}"
        for k, form in zip(range(2, 12), forms.split(), strict=True)
    ]
    return " AND ".join(clauses[:MAX_NEARS])


def test_a_self_near_on_the_flooded_document_costs_three_steps_per_position() -> None:
    index = flood(10)  # 4,500 occurrences, under the cap: nothing left out
    node = parse_query(f"trafficking NEAR/{MAX_NEAR} trafficking")
    work = Work()
    result = explain(node, index, work=work)
    assert result is not None and result["terms"][0]["count"] == 4500
    assert work.steps <= 3 * 4500 + 2  # found once, then each side visited once
    # The former evaluation compared each position with every one in its window: 2 × 100.
    assert 50 * work.steps < 4500 * 2 * MAX_NEAR


def test_the_work_does_not_grow_with_the_document_past_the_cap() -> None:
    node = parse_query(largest_near_query())
    steps = []
    for pages in (1, 4, 12):  # 450, 1,800 and 5,400 occurrences of each term
        work, index = Work(), flood(pages)
        assert evaluate(node, index, work=work, limit=600) is not None
        steps.append(work.steps)
        assert work.steps <= bound(node, 600, index)
    assert steps[0] < steps[1] == steps[2]  # past the cap, the same work


@pytest.mark.parametrize("pages", [1, 50])
def test_the_largest_allowed_query_stays_within_the_documented_bound(pages: int) -> None:
    index = flood(pages)
    for query in (largest_near_query(), '"' + " ".join(["trafficking"] * MAX_WORDS) + '"'):
        node = parse_query(query)
        work = Work()
        assert explain(node, index, work=work) is not None
        assert work.steps <= bound(node, MAX_POSITIONS, index)
        assert work.steps <= 1_200_000  # whatever the document: a fraction of a second


def test_a_repeated_near_is_evaluated_once() -> None:
    index = flood(2)
    once, twice = Work(), Work()
    evaluate(parse_query("trafficking NEAR/5 trafficked"), index, work=once)
    evaluate(parse_query("trafficking NEAR/5 trafficked AND trafficking NEAR/5 trafficked"),
             index, work=twice)  # fmt: skip
    assert once.steps == twice.steps


def test_a_phrase_is_anchored_on_its_rarest_word() -> None:
    text = " ".join(["of the"] * 300 + ["the united nations of the world"] + ["the"] * 100)
    index = IndexedText.build([text], "en")
    phrase, work = parse_query('"the united nations"'), Work()
    assert isinstance(phrase, Term) and index.find(phrase, work=work) == [600]
    assert work.steps < 10  # 'united' occurs once: one candidate, not 700 'the'
    assert evaluate(phrase, index, limit=50) == {phrase: {600}}  # though 'the' is past it


# -- through the CLI --------------------------------------------------------------------------


def test_subscribe_refuses_an_over_limit_query_and_stores_nothing(tmp_path: Path) -> None:
    tipwatch = Tipwatch(tmp_path / "data", make_env(tmp_path / "data", None))
    url = "mailto://127.0.0.1:2525?from=tipwatch@example.org&to=analyst@example.org"
    query = " AND ".join([f"trafficking NEAR/{MAX_NEAR} minors"] * 51)
    bad = tipwatch.run("subscribe", "adversarial", "--query", query, "-n", url, check=False)
    assert bad.returncode == 2, bad.stderr
    first, *pointer = bad.stderr.strip().splitlines()
    eleventh = [i for i in range(len(query)) if query.startswith("NEAR/", i)][MAX_NEARS]
    assert first == (
        f"error: invalid query: a query has at most {MAX_NEARS} NEAR operators "
        f"at position {eleventh + 1}"
    )
    assert len(pointer) == 2 and pointer[1].strip() == "^"  # the query, pointed at
    assert "Traceback" not in bad.stderr and bad.stdout == ""
    # Within the limits, the same command works; the refused query left no row behind.
    tipwatch.run("subscribe", "fine", "--query", f"trafficking NEAR/{MAX_NEAR} minors", "-n", url)
    assert [row["name"] for row in tipwatch.json("subscriptions")] == ["fine"]
