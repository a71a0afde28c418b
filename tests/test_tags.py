"""Concept tags (issue 17): the taxonomy tags English and French documents alike, `tag:` filters
subscriptions and searches, and the CLI, the web page and the JSON API browse by tag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.archive_site import MiniSite, mini_tipwatch, running_web
from tests.conftest import Tipwatch
from tests.replica import pdfs
from worker.extract.formats import extract_pdf
from worker.match import DocumentMeta, IndexedText, Matcher, SubscriptionSpec, passes_filters
from worker.query import Field, QueryError, format_query, parse_query
from worker.taxonomy import load_taxonomy, parse_taxonomy
from worker.thesaurus import load_thesaurus

# -- the taxonomy ------------------------------------------------------------------------------


def test_the_taxonomy_is_bilingual_with_stable_ids() -> None:
    taxonomy = load_taxonomy()
    assert len(taxonomy.concepts) >= 60
    kinds = {c.kind for c in taxonomy.concepts}
    assert {"form", "victim", "response", "actor", "country", "region"} <= kinds
    for concept_id in (
        "sexual-exploitation",
        "forced-labour",
        "forced-criminality",
        "forced-begging",
        "domestic-servitude",
        "organ-removal",
        "forced-marriage",
        "online-exploitation",
        "children",
        "migrants",
        "women",
        "non-punishment",
        "victim-identification",
        "financial-investigations",
        "joint-investigation-teams",
        "unodc",
        "osce",
        "greta",
        "eurojust",
        "iom",
        "atina",
        "astra",
        "serbia",
        "albania",
        "western-balkans",
    ):
        concept = taxonomy.get(concept_id)
        assert concept is not None, concept_id
    serbia = taxonomy.get("serbia")
    assert serbia is not None and serbia.kind == "country" and serbia.fr == ("Serbie",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"concepts": [{"id": "a", "kind": "form", "en": ["x"]}] * 2}, "appears twice"),
        ({"concepts": [{"id": "a", "kind": "planet", "en": ["x"]}]}, "kind"),
        ({"concepts": [{"id": "a", "kind": "form"}]}, "at least one"),
        ({"concepts": [{"id": "Bad Id", "kind": "form", "en": ["x"]}]}, "id"),
        ({"concepts": [{"id": "a", "kind": "form", "en": ["x"], "de": ["y"]}]}, "de"),
        (["not a mapping"], "mapping"),
    ],
)
def test_a_bad_taxonomy_is_refused_naming_the_problem(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_taxonomy(data, where="taxonomy.yaml")


def test_the_thesaurus_comes_from_the_taxonomy() -> None:
    thesaurus = load_thesaurus()
    assert thesaurus.version == load_taxonomy().version
    phrases = {" ".join(t.words) for entry in thesaurus.entries for t in entry}
    assert {"forced criminality", "delinquance forcee", "joint investigation teams"} <= phrases
    assert "serbie" not in phrases, "countries are tags, not thesaurus entries"


@pytest.fixture(scope="module")
def n11(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    folder: Path = tmp_path_factory.mktemp("tags")
    return {
        "en": extract_pdf(pdfs.build_n11_en(folder / "en.pdf")).pages,
        "fr": extract_pdf(pdfs.build_n11_fr(folder / "fr.pdf")).pages,
    }


def test_a_french_and_an_english_issue_share_their_concept_tags(n11: dict) -> None:
    taxonomy = load_taxonomy()
    en = {t.id: t.count for t in taxonomy.tag(n11["en"], "en")}
    fr = {t.id: t.count for t in taxonomy.tag(n11["fr"], "fr")}
    shared = set(en) & set(fr)
    assert {"forced-criminality", "children", "human-trafficking"} <= shared, (en, fr)
    assert len(shared) >= 0.5 * min(len(en), len(fr)), (en, fr)
    ranked = [t.id for t in taxonomy.tag(n11["en"], "en")]
    assert ranked.index("forced-criminality") < 5, ranked  # the issue's subject ranks high


def test_tags_are_counted_through_folding_and_stemming() -> None:
    taxonomy = load_taxonomy()
    tags = {
        t.id: t.count
        for t in taxonomy.tag(
            ["Forced criminal activities in SERBIA.", "La délinquance forcée en Serbie."],
            None,
            title="Forced criminality",
        )
    }
    assert tags["forced-criminality"] == 3 and tags["serbia"] == 2
    # a phrase never runs across a page
    assert "forced-begging" not in {t.id for t in taxonomy.tag(["forced", "begging"], "en")}


# -- tag: in the query language ------------------------------------------------------------------


def test_tag_filters_parse_and_round_trip() -> None:
    node = parse_query("trafficking tag:Forced-Criminality")
    assert Field("tags", "forced-criminality") in node.children  # type: ignore[union-attr]
    assert parse_query(format_query(node)) == node
    with pytest.raises(QueryError, match="tag: needs a value"):
        parse_query("trafficking tag:")
    with pytest.raises(QueryError, match="at least one word"):
        parse_query("tag:serbia")


def test_subscriptions_filter_on_tags() -> None:
    index = IndexedText.build(["Children forced to commit crimes: forced criminality."], "en")
    spec = SubscriptionSpec(1, "children tag:forced-criminality")
    negated = SubscriptionSpec(2, "children NOT tag:serbia")
    stored = SubscriptionSpec(3, "children", filters={"tags": ["forced-criminality"]})
    matcher = Matcher.build([spec, negated, stored], None)
    tagged = DocumentMeta("s", "en", "pdf", frozenset({"forced-criminality", "children"}))
    assert [k for k, _ in matcher.match(index, tagged)] == [1, 2, 3]
    serbian = DocumentMeta("s", "en", "pdf", frozenset({"serbia"}))
    assert [k for k, _ in matcher.match(index, serbian)] == []
    assert passes_filters({"tags": ["serbia", "albania"]}, serbian)


# -- the archive: CLI, search, reindex, web ------------------------------------------------------


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tipwatch]:
    with MiniSite() as site:
        tipwatch = mini_tipwatch(site, tmp_path_factory.mktemp("tagged"))
        tipwatch.run("poll", "--no-notify")
        yield tipwatch


def _titles(rows: list[dict]) -> set[str]:
    return {r["title"] for r in rows}


def test_documents_are_tagged_at_extraction_and_listed_by_tag(polled: Tipwatch) -> None:
    tags = {t["tag"]: t for t in polled.json("archive", "tags")}
    assert {"forced-labour", "debt-bondage", "sexual-exploitation", "labour-exploitation"} <= set(
        tags
    )
    assert tags["labour-exploitation"]["documents"] >= 2  # the EN and FR newsletter n°7
    assert tags["debt-bondage"]["kind"] == "form" and tags["debt-bondage"]["label"]

    bonded = polled.json("archive", "list", "--tag", "debt-bondage")
    assert _titles(bonded) == {"Child labour report"}
    both = polled.json("archive", "list", "--tag", "Debt-Bondage", "--tag", "children")
    assert _titles(both) == {"Child labour report"}
    assert polled.json("archive", "list", "--tag", "debt-bondage", "--tag", "women") == []
    assert polled.json("archive", "list", "--country", "albania") == []

    unknown = polled.run("archive", "list", "--tag", "no-such-tag", check=False)
    assert unknown.returncode == 2 and "unknown tag" in unknown.stderr
    not_country = polled.run("archive", "list", "--country", "forced-labour", check=False)
    assert not_country.returncode == 2 and "not a country" in not_country.stderr

    table = polled.run("archive", "tags", "--tag-kind", "form").stdout
    assert "debt-bondage" in table and "serbia" not in table


def test_search_count_and_export_filter_on_tags(polled: Tipwatch) -> None:
    found = polled.json("archive", "search", "trafficking tag:forced-labour")
    assert _titles(found) == {"Child labour report"}
    assert polled.json("archive", "search", "trafficking", "--tag", "forced-labour") == found
    assert polled.json("archive", "search", "trafficking NOT tag:forced-labour")
    assert polled.json("archive", "count", "traite", "--tag", "sexual-exploitation")["count"] == 1
    exported = polled.run("archive", "export", "--tag", "debt-bondage").stdout.splitlines()
    assert len(exported) == 1 and '"debt-bondage"' in exported[0]


def test_show_prints_tags_and_keyphrases(polled: Tipwatch) -> None:
    report = next(iter(polled.json("archive", "list", "--tag", "debt-bondage")))
    shown = polled.json("archive", "show", str(report["id"]))
    assert {"debt-bondage", "forced-labour"} <= {t["tag"] for t in shown["tags"]}
    assert shown["keywords"]
    table = polled.run("archive", "show", str(report["id"])).stdout
    assert "tags" in table and "debt-bondage" in table


def test_reindex_recomputes_tags_and_keywords(polled: Tipwatch) -> None:
    engine = sa.create_engine(polled.settings().resolved_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM document_tag"))
            conn.execute(sa.text("UPDATE document SET keywords = '[]'"))
    finally:
        engine.dispose()
    assert polled.json("archive", "tags") == []
    report = polled.json("archive", "reindex")
    assert report["documents"] >= 9 and report["tagged"] >= 5 and report["changed_keywords"] >= 5
    assert _titles(polled.json("archive", "list", "--tag", "debt-bondage")) == {
        "Child labour report"
    }
    shown = polled.run("archive", "reindex")
    assert "documents reindexed" in shown.stdout


def test_web_tag_facets_document_tags_and_api(polled: Tipwatch) -> None:
    with running_web(polled) as base:
        tags = httpx.get(f"{base}/api/tags").json()
        assert {"debt-bondage", "labour-exploitation"} <= {t["tag"] for t in tags}
        assert all(t["documents"] >= 1 and t["mentions"] >= t["documents"] for t in tags)
        french = httpx.get(f"{base}/api/tags", params={"language": "fr"}).json()
        assert "debt-bondage" not in {t["tag"] for t in french}
        forms = httpx.get(f"{base}/api/tags", params={"tag_kind": "form"}).json()
        assert forms and {t["kind"] for t in forms} == {"form"}

        listed = httpx.get(f"{base}/api/documents", params={"tag": "debt-bondage"}).json()
        assert _titles(listed) == {"Child labour report"}
        page = httpx.get(f"{base}/", params={"tag": "debt-bondage"}).text
        assert 'id="tags"' in page and "debt bondage" in page and "Child labour report" in page
        assert "tag=debt-bondage" in page

        report = listed[0]
        document = httpx.get(f"{base}/documents/{report['id']}").text
        assert "Tags" in document and "Keyphrases" in document and "/?tag=debt-bondage" in document
        detail = httpx.get(f"{base}/api/documents/{report['id']}").json()
        assert detail["tags"][0]["label"] and detail["tags"][0]["count"] >= 1
