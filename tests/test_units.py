"""Pure functions: URL identity, dates and issue numbers, the query language, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import ConfigError, load_sources
from worker.dates import issue_number, parse_date
from worker.match import IndexedText, QueryError, explain, fold, parse_query
from worker.urls import canonical_url, is_allowed


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "https://onu-vienne.delegfrance.org/IMG/pdf/x.pdf?3405/cce3edd51b7391114c0ae73feba6edbd386da124",
            "https://onu-vienne.delegfrance.org/IMG/pdf/x.pdf",
        ),
        (
            "https://by.ambafrance.org/IMG/arton5049.jpg?1510666945",
            "https://by.ambafrance.org/IMG/arton5049.jpg",
        ),
        (
            "https://www.unodc.org/unodc/fr/frontpage/2017/June/a.html?ref=fs6",
            "https://www.unodc.org/unodc/fr/frontpage/2017/June/a.html",
        ),
        ("HTTPS://WWW.UNODC.ORG:443/a.html#top", "https://www.unodc.org/a.html"),
        (
            "https://s.org/-Lettres-?debut_articles=10&utm_source=x",
            "https://s.org/-Lettres-?debut_articles=10",
        ),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_allowed_hosts_compare_host_and_port() -> None:
    allowed = frozenset({"127.0.0.1:8100"})
    assert is_allowed("http://127.0.0.1:8100/x", allowed)
    assert not is_allowed("http://127.0.0.1:8101/x", allowed)
    assert not is_allowed("http://169.254.169.254/latest/meta-data", allowed)
    assert not is_allowed("file:///etc/passwd", allowed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1er mars 2025", datetime(2025, 3, 1, tzinfo=UTC)),
        ("12 mars 2025", datetime(2025, 3, 12, tzinfo=UTC)),
        ("Dernière modification : 24/03/2017", datetime(2017, 3, 24, tzinfo=UTC)),
        ("2025-03-12T09:30:00Z", datetime(2025, 3, 12, 9, 30, tzinfo=UTC)),
        ("2013-03-27 15:06:17.0", datetime(2013, 3, 27, 15, 6, 17, tzinfo=UTC)),
        ("12 January 2021", datetime(2021, 1, 12, tzinfo=UTC)),
        ("Vienna (Austria), 11 December 2024 – The number", datetime(2024, 12, 11, tzinfo=UTC)),
        ("Newsletter – juin 2025", datetime(2025, 6, 1, tzinfo=UTC)),
        ("no date here, 31/02/2020 is not one", None),
    ],
)
def test_parse_date(text: str, expected: datetime | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Lettre d'information n°24 – juin 2025", 24),
        ("No 24", 24),
        ("N°10, QUATERLY LETTER", 10),
        ("lettre_teh_n23_fr.pdf", 23),
        ("Lettre-d-information-no23-mars-2025", 23),
        ("Traite des êtres humains : 5e lettre d'information", 5),
        ("5ème numéro", 5),
        ("Global Report on Trafficking in Persons 2024", None),
    ],
)
def test_issue_number(text: str, number: int | None) -> None:
    assert issue_number(text) == number


def test_fold_ignores_case_accents_and_ligatures() -> None:
    assert fold("Traite des ÊTRES humains, Œuvre") == "traite des etres humains, oeuvre"


def test_query_matches_phrases_prefixes_and_negation_with_pages() -> None:
    pages = [
        "Editorial.",
        "La traite des êtres humains à des fins de délinquance forcée.",
        "Forced criminality of minors.",
    ]
    index = IndexedText.build(pages)
    result = explain(parse_query('"traite des etres humains" AND delinquance'), index)
    assert result is not None
    assert [t["pages"] for t in result["terms"]] == [[2], [2]]
    assert "«traite des êtres humains»" in result["terms"][0]["snippets"][0]["text"]
    assert explain(parse_query("crimin*"), index)["terms"][0]["pages"] == [3]
    assert explain(parse_query("criminality NOT minors"), index) is None
    assert explain(parse_query("(begging OR criminality) AND forced"), index) is not None
    assert explain(parse_query('"forced delinquency"'), index) is None
    # A phrase does not run across a page break.
    assert explain(parse_query('"editorial la"'), index) is None


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ('"forced begging', "unterminated quote", 0),
        ("(trafficking OR smuggling", "missing ')'", 25),
        ("trafficking)", "unexpected ')'", 11),
        ("NOT drugs", "not negated", 0),
        ("trafficking AND", "a term is missing", 15),
        ("", "empty query", 0),
    ],
)
def test_invalid_queries_point_at_the_mistake(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert message in str(caught.value)
    assert caught.value.position == position


def test_sources_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - name: x\n    kind: spip\n    base_url: ftp://nope\n")
    with pytest.raises(ConfigError) as caught:
        load_sources(bad)
    assert str(bad) in str(caught.value) and "sources[0].base_url" in str(caught.value)
    bad.write_text("sources:\n  - name: x\n    kind: gopher\n    base_url: https://a.org\n")
    with pytest.raises(ConfigError, match="unknown kind 'gopher'"):
        load_sources(bad)
    bad.write_text(
        "sources:\n  - name: x\n    kind: html\n    base_url: https://a.org\n"
        "    options: {item_pattern: '('}\n"
    )
    with pytest.raises(ConfigError, match="item_pattern: invalid regular expression"):
        load_sources(bad)


def test_base_url_override_rewrites_hosts_everywhere() -> None:
    from config.settings import DEFAULT_SOURCES

    sources = {
        s.name: s
        for s in load_sources(
            DEFAULT_SOURCES,
            {"onu-vienne": "http://127.0.0.1:8100", "www.unodc.org": "http://127.0.0.1:8102"},
        )
    }
    assert sources["onu-vienne"].base_url == "http://127.0.0.1:8100"
    assert sources["unodc-glotip"].base_url == "http://127.0.0.1:8102"
    assert sources["unodc-press"].base_url == "http://127.0.0.1:8102"
    # The OSCE site links PDFs hosted by the Vienna mission: its allowed host follows the override.
    assert "127.0.0.1:8100" in sources["osce"].allowed_netlocs
    assert sources["osce"].base_url == "https://osce.delegfrance.org"
    with pytest.raises(ConfigError, match="neither a source name nor a host"):
        load_sources(DEFAULT_SOURCES, {"nowhere": "http://127.0.0.1:1"})
