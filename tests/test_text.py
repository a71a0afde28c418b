"""One folding, splitting and stemming (``worker.text``) for subscriptions and the archive search:
unit tests, the migration that re-stems SQLite rows, and French words through the real CLI."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.conftest import Tipwatch, make_env
from tests.hostile_site import HostileSite, static
from tests.replica.pdfs import render_pdf
from tests.test_storage import database_url  # noqa: F401  (fixture: SQLite, then PostgreSQL)
from worker.match import IndexedText, explain
from worker.query import parse_query
from worker.search import search
from worker.storage.db import alembic_config, dispose_engines
from worker.storage.models import Document
from worker.storage.textsearch import index_fields, page_tokens
from worker.text import (
    LANGUAGES,
    WORD,
    all_stems,
    fold,
    folds_one_to_one,
    languages_for,
    query_stems,
    stem,
    term_words,
    word_spans,
    words,
)

# -- fold -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Traite des ÊTRES humains", "traite des etres humains"),
        ("La mendicité forcée", "la mendicite forcee"),
        ("Œuvre, cœur, Æsop, Straße", "oeuvre, coeur, aesop, strasse"),
        ("ﬁnancement ﬂux", "financement flux"),  # PDF ligatures
        ("m² x³", "m2 x3"),
        ("naïve Noël ÇA", "naive noel ca"),
    ],
)
def test_fold_lowers_case_removes_accents_and_spells_out_ligatures(text: str, folded: str) -> None:
    assert fold(text) == folded
    assert fold(folded) == folded


# -- words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L'exploitation d’êtres humains", ["l", "exploitation", "d", "etres", "humains"]),
        ("qu'elles, jusqu’à", ["qu", "elles", "jusqu", "a"]),
        ("main-d'œuvre, non-punishment", ["main", "d", "oeuvre", "non", "punishment"]),
        (
            "exploi-\ntation sexuelle\r\nforcée\fici",
            ["exploi", "tation", "sexuelle", "forcee", "ici"],
        ),
        ("n°7 du 15/03/2025 : 2024-2025", ["n", "7", "du", "15", "03", "2025", "2024", "2025"]),
        ("½ snake_case", ["1", "2", "snake_case"]),
        ("«Identifiées» (exploitées)!", ["identifiees", "exploitees"]),
    ],
)
def test_words_split_on_elisions_hyphens_line_breaks_and_punctuation(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


def test_decomposed_accents_make_the_same_words_and_spans_point_into_nfc() -> None:
    composed = "La mendicité forcée"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert words(decomposed) == words(composed) == ["la", "mendicite", "forcee"]
    spans = word_spans(decomposed)
    assert [composed[start:end] for _, start, end in spans] == ["La", "mendicité", "forcée"]
    assert [w for w, _, _ in word_spans("½")] == ["1", "2"]
    assert {(s, e) for _, s, e in word_spans("½")} == {(0, 1)}


@pytest.mark.parametrize(
    ("text", "one_to_one"),
    [
        ("trafficking in persons", True),
        ("La mendicité forcée « traite » d’êtres humains", True),  # accents, quotes
        ("ﬁnancement m² Straße ŒUVRE", True),  # each folds into one longer word
        ("une part de ½", False),  # "1⁄2": two words
    ],
)
def test_a_text_whose_runs_are_its_words_one_for_one(text: str, one_to_one: bool) -> None:
    assert folds_one_to_one(text) is one_to_one
    assert (len(WORD.findall(text)) == len(words(text))) is one_to_one


def test_a_typed_term_folds_like_the_text() -> None:
    assert term_words("Main-d'Œuvre") == ["main", "d", "oeuvre"]
    assert term_words("MENDICITÉ") == term_words("mendicite") == ["mendicite"]
    assert term_words("traffick*") == ["traffick"]


# -- stems ------------------------------------------------------------------------------------


def test_english_stems() -> None:
    assert stem("trafficked", "en") == stem("trafficking", "en") == "traffick"
    assert stem("victims", "en") == stem("victim", "en")
    assert languages_for("en") == ("en",) and languages_for(None) == tuple(LANGUAGES)


@pytest.mark.parametrize(
    ("typed", "stemmed"),
    [
        ("mendicité", "mendicit"),
        ("exploitées", "exploite"),
        ("identifiées", "identifie"),
        ("forcée", "force"),
        ("êtres", "etre"),
        ("Œuvres", "oeuvr"),
    ],
)
def test_french_words_are_folded_then_stemmed(typed: str, stemmed: str) -> None:
    [word] = term_words(typed)
    assert stem(word, "fr") == stemmed
    assert stemmed in query_stems(word)  # the query side
    assert index_fields(None, [f"La {typed}."], "fr").stems == f"la {stemmed}"  # the index
    assert IndexedText.build([f"La {typed}."], "fr").stems[1] == (stemmed,)  # subscriptions


def test_a_word_of_unknown_language_has_its_stems_in_both_languages() -> None:
    assert all_stems("exploitations") == ("exploit",)
    assert all_stems("traite") == ("trait",)
    assert all_stems("trafficking") == ("traffick", "trafficking")  # English, French
    # The index keeps both, joined: "traffick|trafficking" is two tokens of one word.
    fields = index_fields(None, ["Trafficking, mendicité"], None)
    assert fields.stems == "traffick|trafficking mendicit|mendicit"


# Words as they are written in reports, with their accents, elisions, ligatures and case.
VOCABULARY = [
    "La", "mendicité", "forcée", "femmes", "exploitées", "identifiées", "L'exploitation",
    "d’êtres", "humains", "main-d'œuvre", "ŒUVRE", "ﬁnancement", "trafficking", "trafficked",
    "victims", "Délinquance", "2024", "n°7", "naïve", "Straße", "CONFISQUÉS",
]  # fmt: skip
_TEXT = st.lists(
    st.tuples(st.sampled_from(VOCABULARY), st.sampled_from([" ", "\n", ", ", "-\n", " – "])),
    min_size=1,
    max_size=20,
)


@given(st.lists(_TEXT, min_size=1, max_size=3), st.sampled_from(["en", "fr", None]))
def test_index_query_and_subscriptions_agree_on_every_word(
    pages_parts: list[list[tuple[str, str]]], language: str | None
) -> None:
    """Each word of a text, typed as written, is found by the search index's tokens and by a
    subscription, and the matcher's index read back from the stored tokens is the one built
    from the text: the same folding and stemming on every side."""
    pages = ["".join(word + sep for word, sep in parts) for parts in pages_parts]
    built = IndexedText.build(pages, language)
    fields = index_fields("Title", pages, language)
    words, stems = page_tokens(fields.words, fields.stems)
    stored = IndexedText.from_tokens(pages, words, stems, language)
    assert (stored.words, list(stored.stems), stored.page_no) == (
        built.words,
        built.stems,
        built.page_no,
    )
    tokens = {t for token in fields.stems.split() for t in token.split("|")}
    for parts in pages_parts:
        for typed, _sep in parts:
            for word in term_words(typed):
                assert query_stems(word) & tokens, (typed, word)
            node = parse_query(typed)
            assert explain(node, stored) == explain(node, built) is not None, typed


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*VOCABULARY, "½", "m²", "ﬁn", "e\u0301te\u0301", "x" * 70]),
            st.sampled_from([" ", "\n", ", ", "-\n", "’"]),
        ),
        min_size=1,
        max_size=120,
    ),
    st.lists(st.integers(0, 10_000), min_size=1, max_size=12),
)
def test_snippet_offsets_are_the_words_spans_asked_in_any_order(
    parts: list[tuple[str, str]], asked: list[int]
) -> None:
    """A snippet finds its words' offsets lazily (the runs before them skipped in C, only the
    non-ASCII ones folded, a page with a word that folds into several taken whole): in any
    order, even backwards, they are :func:`word_spans`' offsets of the same word."""
    page = "".join(word + sep for word, sep in parts)
    expected = [(start, end) for _, start, end in word_spans(page)]
    fields = index_fields(None, [page], "fr")
    words, stems = page_tokens(fields.words, fields.stems)
    stored = IndexedText.from_tokens([page], words, stems, "fr")
    for index in (IndexedText.build([page], "fr"), stored):
        assert len(index.words) == len(expected)
        for k in asked:
            i = k % len(expected)
            assert index.offsets(i) == expected[i], (i, page)


# -- SQLite: the migration re-stems what was stored --------------------------------------------

FRENCH = "La mendicité forcée touche des femmes exploitées, identifiées par les inspecteurs."


def _stem_then_fold(text: str) -> str:
    """The stems column as it was written before 0006: stemmed with accents, then folded."""
    import Stemmer

    french = Stemmer.Stemmer("french")
    return " ".join(fold(french.stemWord(w.lower())) for w in WORD.findall(text))


def _found(engine: sa.Engine, query: str) -> bool:
    with Session(engine) as session:
        return bool(search(session, query).hits)


def test_migration_restems_rows_stored_in_the_old_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0005")
            conn.commit()
        with engine.begin() as conn:  # the columns of 0005, not those of today's model
            conn.execute(
                sa.insert(Document).values(
                    content_sha256="a" * 64, source="s", url="http://x/1",
                    canonical_url="http://x/1", kind="pdf", size_bytes=1, title="Rapport",
                    text=FRENCH, language="fr",
                )
            )  # fmt: skip
        with engine.begin() as conn:  # as 0004 stored it (the FTS5 trigger re-indexes the row)
            old = _stem_then_fold(f"Rapport\n{FRENCH}")
            conn.execute(sa.text("UPDATE document SET stems = :s"), {"s": old})
        assert "mendiqu" in old
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        for query in ("mendicité", "MENDICITE", "exploitées", "identifiées", "forcée"):
            assert _found(engine, query), query
        with engine.begin() as conn:
            stored = conn.execute(sa.text("SELECT fts_stems FROM document")).scalar_one()
            assert stored == index_fields("Rapport", [FRENCH], "fr").stems  # 0010: the tokens
            old_stems = "SELECT count(*) FROM document_fts WHERE document_fts MATCH 'mendiqu'"
            assert conn.execute(sa.text(old_stems)).scalar_one() == 0  # re-indexed, not added
            # The index agrees with the rows (rank 1: checked against the content table).
            check = "INSERT INTO document_fts(document_fts, rank) VALUES ('integrity-check', 1)"
            conn.execute(sa.text(check))
    finally:
        engine.dispose()
        dispose_engines()


# -- through the CLI, on SQLite and PostgreSQL ----------------------------------------------------

FR_ARTICLE = """<!doctype html><html lang="fr"><head><title>Note de situation</title></head>
<body><main><article><h1>Note de situation</h1>
<p>La mendicité forcée touche surtout des enfants et des personnes handicapées, amenés chaque
matin aux carrefours des grandes villes par les réseaux qui les exploitent.</p>
<p>En un an, quarante femmes exploitées dans des ateliers clandestins ont été identifiées par
les inspecteurs du travail, puis orientées vers des associations spécialisées.</p>
<p>Les enquêteurs rappellent que la traite des êtres humains prend des formes multiples.</p>
</article></main></body></html>"""

FR_PDF = (
    "La mendicité forcée reste sous-estimée dans les statistiques nationales de la traite.",
    "Les victimes exploitées sont rarement identifiées comme telles par les services sociaux,"
    " faute de formation des agents de première ligne.",
)


@pytest.fixture(scope="module")
def french_site() -> Iterator[HostileSite]:
    """A loopback RSS site: one French article and one French PDF about forced begging."""
    with HostileSite() as site:
        feed = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>FR</title>'
            f"<link>{site.base}/</link><item><title>Note de situation</title>"
            f"<link>{site.base}/note.html</link><pubDate>Mon, 03 Mar 2025 10:00:00 GMT</pubDate>"
            f'<enclosure url="{site.base}/mendicite.pdf" type="application/pdf" length="1"/>'
            "</item></channel></rss>"
        )
        site.routes.update(
            {
                "/feed.xml": static(feed.encode(), "application/rss+xml"),
                "/note.html": static(FR_ARTICLE.encode()),
                "/mendicite.pdf": static(
                    render_pdf("Rapport sur la mendicité", FR_PDF, "fr", 2), "application/pdf"
                ),
            }
        )
        yield site


def test_archive_search_finds_what_a_subscription_matches(
    french_site: HostileSite,
    tmp_path: Path,
    database_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    """A French page and PDF saying "La mendicité forcée", "exploitées", "identifiées": the
    archive search finds both by these words typed with or without accents, as a subscription
    to the same words matches both (it did not on SQLite, whose index stemmed before folding)."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - name: fr\n    kind: rss\n    base_url: {french_site.base}\n"
        "    feeds: [feed.xml]\n",
        encoding="utf-8",
    )
    env = make_env(
        tmp_path / "data", None, TIPWATCH_SOURCES=str(sources), TIPWATCH_DATABASE_URL=database_url
    )
    tipwatch = Tipwatch(tmp_path / "data", env)
    tipwatch.run("poll", "--no-notify")
    found = tipwatch.json("archive", "search", "mendicité")
    assert sorted((d["kind"], d["language"]) for d in found) == [("html", "fr"), ("pdf", "fr")]
    assert all("«mendicité»" in d["snippet"] for d in found), found
    both = {d["id"] for d in found}
    for query in ("MENDICITE", "exploitées identifiées"):
        found = tipwatch.json("archive", "search", query)
        assert {d["id"] for d in found} == both, (query, found)
        assert all("«" in d["snippet"] for d in found), found
    query = "mendicité exploitées identifiées"
    tipwatch.run("subscribe", "fr", "--query", query, "--notify", "json://127.0.0.1:9/")
    preview = tipwatch.json("subscriptions", "preview", "fr")
    assert {row["document"] for row in preview} == both, preview
    for row in preview:
        terms = {t["term"] for t in row["explanation"]["terms"]}
        assert terms == {"mendicité", "exploitées", "identifiées"}, row
