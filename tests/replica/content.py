"""The replica's content model (documents, articles, issues, UNODC pages) and its initial data.

Everything here is plain data; ``spip.py`` and ``unodc.py`` render it. Links inside article
texts use a SPIP-like shortcut syntax: ``[label->doc5120]`` (a document of the same site) and
``[label->{onu-vienne}/path]`` (an absolute URL; ``{onu-vienne}``, ``{osce}`` and ``{unodc}``
become the replica's base URLs when a page is rendered).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from . import pdfs, texts

MOIS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def date_fr(d: date) -> str:
    """SPIP ``affdate``: ``12 mars 2025``, ``1er mars 2025``."""
    return f"{'1er' if d.day == 1 else d.day} {MOIS[d.month - 1]} {d.year}"


def date_en(d: date, zero_pad: bool = False) -> str:
    return (
        f"{d.day:02d} {MONTHS[d.month - 1]} {d.year}"
        if zero_pad
        else f"{d.day} {MONTHS[d.month - 1]} {d.year}"
    )


def date_text(d: date, lang: str) -> str:
    return date_fr(d) if lang == "fr" else date_en(d)


def iso_z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(d: date, hour: int = 9, minute: int = 30) -> datetime:
    return datetime.combine(d, time(hour, minute), tzinfo=UTC)


def slugify(title: str, max_len: int = 80) -> str:
    """SPIP "URLs propres": ASCII, case kept, ``n°`` → ``no``, cut at a word boundary ≤ 80."""
    text = re.sub(r"([nN])°\s*", r"\1o", title).replace("œ", "oe").replace("Œ", "OE")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = [w for w in re.split(r"[^A-Za-z0-9]+", text) if w]
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_len:
            break
        slug = candidate
    return slug


def size_label(size: int, lang: str) -> str:
    """SPIP ``taille_en_octets``: ``78.7 ko`` / ``2.4 Mo`` (EN: KB / MB)."""
    kb, mb = ("ko", "Mo") if lang == "fr" else ("KB", "MB")
    if size < 1024:
        return f"{size} octets" if lang == "fr" else f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} {kb}"
    return f"{size / 1024 / 1024:.1f} {mb}"


@dataclass(eq=False)
class Document:
    """A served file. SPIP documents have a ``doc_id`` and are linked as ``path?id/cle``."""

    path: str  # "/IMG/pdf/lettre_teh_n23_fr.pdf"
    title: str
    data: bytes
    mtime: datetime
    doc_id: int | None = None
    lang: str = "en"
    legacy_url: bool = False  # old SPIP links: no "?NNNN/hash" query string
    file: Path | None = None  # copy on disk, under the replica's workdir
    cle: str = ""

    def __post_init__(self) -> None:
        self._rekey()

    def _rekey(self) -> None:
        digest = hashlib.sha1(self.data).hexdigest()
        self.cle = hashlib.sha1(f"{self.doc_id}:{digest}".encode()).hexdigest()

    def replace(self, data: bytes, mtime: datetime) -> None:
        self.data, self.mtime = data, mtime
        self._rekey()
        if self.file is not None:
            self.file.write_bytes(data)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.data).hexdigest()[:20] + '"'

    @property
    def query(self) -> str:
        return f"?{self.doc_id}/{self.cle}" if self.doc_id and not self.legacy_url else ""

    @property
    def href(self) -> str:
        """Relative link as SPIP writes it in article bodies: ``IMG/pdf/x.pdf?5120/<hex>``."""
        return self.path.lstrip("/") + self.query


@dataclass(eq=False)
class Rubrique:
    id: int
    title: str
    slug: str  # "-Lettres-d-information-"
    lang: str
    parent: int | None = None


@dataclass(eq=False)
class Article:
    id: int
    title: str
    lang: str
    date: datetime
    rubrique: int
    chapo: str
    text: str  # SPIP-ish markup, see module docstring
    documents: list[Document] = field(default_factory=list)  # "documents joints" + enclosures
    slug: str = ""
    issue: int | None = None
    old_style: bool = False  # 2014–2018 template: no published date, footer date only
    trad: Article | None = None
    mtime: datetime | None = None  # HTTP Last-Modified (defaults to ``date``)

    def __post_init__(self) -> None:
        self.slug = self.slug or slugify(self.title)
        self.mtime = self.mtime or self.date

    @property
    def path(self) -> str:
        return "/" + self.slug

    @property
    def modified(self) -> datetime:
        assert self.mtime is not None
        return max([self.mtime, *(d.mtime for d in self.documents)])


@dataclass(eq=False)
class Issue:
    number: int
    date: date
    fr: Article
    en: Article | None
    pdfs: dict[str, Document]  # lang → document


@dataclass(eq=False)
class SpipContent:
    name: str
    title: str
    lang: str
    rubriques: dict[int, Rubrique]
    articles: list[Article] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)  # by path
    issues: dict[int, Issue] = field(default_factory=dict)
    feed_content_type: str = "text/xml; charset=utf-8"
    root: Path = Path()

    def add_doc(self, doc: Document) -> Document:
        self.documents[doc.path] = doc
        return doc

    def doc_by_id(self, doc_id: int) -> Document | None:
        return next((d for d in self.documents.values() if d.doc_id == doc_id), None)

    def article_by_slug(self, slug: str) -> Article | None:
        return next((a for a in self.articles if a.slug == slug), None)

    def rubrique_by_slug(self, slug: str) -> Rubrique | None:
        return next((r for r in self.rubriques.values() if r.slug == slug), None)

    def branch(self, rubrique_id: int) -> set[int]:
        ids = {rubrique_id}
        while True:
            more = {r.id for r in self.rubriques.values() if r.parent in ids} - ids
            if not more:
                return ids
            ids |= more

    def by_date(self, articles: list[Article] | None = None) -> list[Article]:
        return sorted(
            self.articles if articles is None else articles,
            key=lambda a: (a.date, a.id),
            reverse=True,
        )

    @property
    def modified(self) -> datetime:
        return max(
            [*(a.modified for a in self.articles), *(d.mtime for d in self.documents.values())]
        )

    def next_article_id(self) -> int:
        return max(a.id for a in self.articles) + 1

    def next_doc_id(self) -> int:
        return max(d.doc_id or 0 for d in self.documents.values()) + 1

    def free_path(self, filename: str) -> str:
        """``/IMG/pdf/<name>``, with SPIP's ``-2``, ``-3``… when the name is taken."""
        stem, ext = filename.rsplit(".", 1)
        path, n = f"/IMG/{ext}/{filename}", 1
        while path in self.documents:
            n += 1
            path = f"/IMG/{ext}/{stem}-{n}.{ext}"
        return path

    def new_pdf(
        self,
        path: str,
        title: str,
        data: bytes,
        mtime: datetime,
        lang: str,
        doc_id: int | None = None,
        legacy_url: bool = False,
    ) -> Document:
        file = self.root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        return self.add_doc(Document(path, title, data, mtime, doc_id, lang, legacy_url, file))


def _stub_pdf(title: str, paras: list[str], lang: str, pages_min: int = 2) -> bytes:
    return pdfs.render_pdf(title, tuple(paras), lang, pages_min)


# --- onu-vienne.delegfrance.org ---------------------------------------------------------------

RUB_NEWS_FR, RUB_NEWS_EN, RUB_TEH, RUB_LETTRES, RUB_NEWSLETTERS = 2, 3, 44, 45, 46

ISSUE_DATES = {
    11: date(2018, 12, 18),
    12: date(2019, 4, 1),
    13: date(2019, 7, 15),
    14: date(2019, 12, 10),
    15: date(2020, 7, 1),
    16: date(2021, 2, 4),
    17: date(2021, 8, 2),
    18: date(2022, 3, 29),
    19: date(2022, 12, 13),
    20: date(2023, 6, 20),
    21: date(2024, 2, 27),
    22: date(2024, 12, 17),
    23: date(2025, 3, 12),
}
# Title variants the worker must cope with (default: "Lettre d'information n°N – mois AAAA").
TITLE_VARIANTS = {
    11: (
        "Lettre trimestrielle d'information n°11 sur la lutte contre la traite des êtres"
        " humains en Europe du Sud-Est",
        "Quarterly letter n°11 – Fight against human trafficking in South-Eastern Europe",
    ),
    16: (
        "16e lettre d'information : la traite à des fins de délinquance forcée",
        "16th newsletter: trafficking for forced criminality",
    ),
    19: ("Lettre d'information N°19 – décembre 2022", "Newsletter N°19 – December 2022"),
}
ISSUE_CHAPO_TOPICS = {
    11: (
        "la stratégie française contre la délinquance forcée",
        "the French strategy against forced criminality",
    ),
    23: (
        "la Serbie : exploitation des travailleurs migrants, sommet des procureurs, table ronde"
        " d'ATINA et Congrès pour la prévention du crime",
        "Serbia: exploitation of migrant workers, the prosecutors' summit, the ATINA round"
        " table and the Crime Congress",
    ),
}


def issue_titles(number: int, d: date) -> tuple[str, str]:
    return TITLE_VARIANTS.get(
        number,
        (
            f"Lettre d'information n°{number} – {MOIS[d.month - 1]} {d.year}",
            f"Newsletter n°{number} – {MONTHS[d.month - 1]} {d.year}",
        ),
    )


def add_issue(
    site: SpipContent,
    number: int,
    d: date,
    *,
    mtime: datetime | None = None,
    fr_pdf: bytes | None = None,
    en_pdf: bytes | None = None,
    fr_doc_id: int | None = None,
    article_id: int | None = None,
    en_filename: str | None = None,
) -> Issue:
    """One issue = a FR article (rubrique 45) + its EN translation (rubrique 46), both
    attaching the FR and EN PDFs."""
    title_fr, title_en = issue_titles(number, d)
    fr_pdf = fr_pdf or _stub_pdf(
        f"Lettre d'information n°{number} – {date_fr(d)}",
        texts.stub_issue_paragraphs(number, "fr"),
        "fr",
    )
    en_pdf = en_pdf or _stub_pdf(
        f"Newsletter n°{number} – {date_en(d)}", texts.stub_issue_paragraphs(number, "en"), "en"
    )
    published = at(d)
    doc_id = fr_doc_id or site.next_doc_id()
    doc_fr = site.new_pdf(
        site.free_path(f"lettre_teh_n{number}_fr.pdf"),
        f"Lettre d'information n°{number} (FR)",
        fr_pdf,
        mtime or published,
        "fr",
        doc_id,
    )
    doc_en = site.new_pdf(
        site.free_path(en_filename or f"newsletter_thb_n{number}_en.pdf"),
        f"Newsletter n°{number} (EN)",
        en_pdf,
        mtime or published,
        "en",
        doc_id + 1,
    )
    topic_fr, topic_en = ISSUE_CHAPO_TOPICS.get(
        number, texts.ISSUE_TOPICS.get(number, texts.DEFAULT_TOPIC)
    )
    art_id = article_id or site.next_article_id()
    fr = Article(
        art_id,
        title_fr,
        "fr",
        published,
        RUB_LETTRES,
        f"Ce {texts.ordinal_fr(number)} numéro de la lettre trimestrielle « Lutte contre la"
        f" traite des êtres humains en Europe du Sud-Est » est consacré à {topic_fr}.",
        f"Télécharger la [version française->doc{doc_fr.doc_id}] ; disponible en"
        f" [version anglaise->doc{doc_en.doc_id}].",
        [doc_fr, doc_en],
        issue=number,
        mtime=mtime,
    )
    en = Article(
        art_id + 1,
        title_en,
        "en",
        at(d, 9, 45),
        RUB_NEWSLETTERS,
        f"This {texts.ordinal_en(number)} issue of the quarterly newsletter “Fight against human"
        f" trafficking in South-Eastern Europe” focuses on {topic_en}.",
        f"Download the [English version->doc{doc_en.doc_id}]; also available in"
        f" [French->doc{doc_fr.doc_id}].",
        [doc_fr, doc_en],
        issue=number,
        mtime=mtime,
    )
    fr.trad, en.trad = en, fr
    for art in (fr, en):  # SPIP appends "-<id>" when a slug is taken
        if site.article_by_slug(art.slug) is not None:
            art.slug = f"{art.slug}-{art.id}"
    site.articles += [fr, en]
    issue = Issue(number, d, fr, en, {"fr": doc_fr, "en": doc_en})
    site.issues[number] = issue
    return issue


def build_onu_vienne(root: Path) -> SpipContent:
    site = SpipContent(
        "onu-vienne",
        "Représentation permanente de la France auprès de l'ONU et des organisations"
        " internationales à Vienne",
        "fr",
        {
            r.id: r
            for r in [
                Rubrique(RUB_NEWS_FR, "Actualités", "-Actualites-", "fr"),
                Rubrique(RUB_NEWS_EN, "News", "-News-", "en"),
                Rubrique(
                    RUB_TEH,
                    "Lutte contre la traite des êtres humains",
                    "-Lutte-contre-la-traite-des-etres-humains-",
                    "fr",
                ),
                Rubrique(
                    RUB_LETTRES, "Lettres d'information", "-Lettres-d-information-", "fr", RUB_TEH
                ),
                Rubrique(RUB_NEWSLETTERS, "Newsletters", "-Newsletters-", "en", RUB_LETTRES),
            ]
        },
        root=root,
    )
    # Old-style articles (2017–2018 template). n°5: links without query string, FR/EN/SR.
    d5 = date(2017, 3, 24)
    n5 = [
        site.new_pdf(
            f"/IMG/pdf/{name}",
            title,
            _stub_pdf(title, texts.stub_issue_paragraphs(5, lang), lang),
            at(d5),
            lang,
            doc_id,
            legacy_url=True,
        )
        for name, title, lang, doc_id in [
            ("lettre_teh_n5_fr.pdf", "Lettre d'information TEH n°5", "fr", 2611),
            ("newsletter_thb_n5_en.pdf", "THB newsletter n°5", "en", 2612),
            ("bilten_tbl_n5_sr.pdf", "Bilten TBL br. 5", "sr", 2613),
        ]
    ]
    site.articles.append(
        Article(
            1187,
            "Traite des êtres humains : 5e lettre d'information",
            "fr",
            at(d5),
            RUB_LETTRES,
            "Depuis octobre 2014, nous avons le plaisir de publier une lettre d'information"
            " trimestrielle sur la lutte contre la traite des êtres humains en Europe du Sud-Est.",
            f"Télécharger le [5ème numéro de la lettre d'information TEH->doc{n5[0].doc_id}] ;"
            f" disponible en [version anglaise->doc{n5[1].doc_id}] et en"
            f" [version serbe->doc{n5[2].doc_id}].",
            n5,
            slug="Lettre-d-information-sur-la-traite-des-etres-humains-no5-fevrier-2017",
            issue=5,
            old_style=True,
        )
    )
    d9 = date(2018, 2, 15)
    n9 = [
        site.new_pdf(
            f"/IMG/pdf/{name}",
            title,
            _stub_pdf(title, texts.stub_issue_paragraphs(9, lang), lang),
            at(d9),
            lang,
            doc_id,
        )
        for name, title, lang, doc_id in [
            (
                "lettre_trimestrielle_n9_fr.pdf",
                "Lettre trimestrielle d'information n°9",
                "fr",
                3404,
            ),
            ("quarterly_letter_n9_en.pdf", "Quarterly letter n°9", "en", 3405),
        ]
    ]
    site.articles.append(
        Article(
            1420,
            "Lettre trimestrielle d'information n°9 sur la stratégie française de lutte"
            " contre la traite des êtres humains et son réseau d'influence",
            "fr",
            at(d9),
            RUB_LETTRES,
            "Ce numéro présente le programme 2018 de la chargée de mission pour la lutte contre la"
            " traite des êtres humains en Europe du Sud-Est.",
            f"[Lettre trimestrielle n°9 (français)->doc{n9[0].doc_id}] –"
            f" [Quarterly letter n°9 (English)->doc{n9[1].doc_id}]",
            n9,
            slug="Lettre-trimestrielle-d-information-no9",
            issue=9,
            old_style=True,
        )
    )

    # n°11…n°23. n°11 and n°23 carry the real seed texts (EN) and synthetic FR texts.
    tmp = root / ".build"
    seed_pdfs = {
        11: (pdfs.build_n11_fr(tmp / "n11fr.pdf"), pdfs.build_n11_en(tmp / "n11en.pdf")),
        23: (pdfs.build_n23_fr(tmp / "n23fr.pdf"), pdfs.build_n23_en(tmp / "n23en.pdf")),
    }
    for number, d in ISSUE_DATES.items():
        fr_file, en_file = seed_pdfs.get(number, (None, None))
        add_issue(
            site,
            number,
            d,
            fr_pdf=fr_file.read_bytes() if fr_file else None,
            en_pdf=en_file.read_bytes() if en_file else None,
            fr_doc_id=5120 - 40 * (23 - number),
            article_id=1800 + 20 * (number - 11),
            # n°21's English PDF was re-uploaded: SPIP named it "-2"
            en_filename="newsletter_thb_n21_en-2.pdf" if number == 21 else None,
        )
    for file in tmp.iterdir():
        file.unlink()
    tmp.rmdir()
    # the first upload of n°21 EN stays on disk, linked from nowhere
    first = site.issues[21].pdfs["en"]
    site.new_pdf(
        "/IMG/pdf/newsletter_thb_n21_en.pdf",
        first.title,
        _stub_pdf("Newsletter n°21 (draft)", texts.stub_issue_paragraphs(21, "en"), "en"),
        first.mtime,
        "en",
        5039,
    )

    n23_fr = site.issues[23].pdfs["fr"]
    site.articles += [
        Article(
            1995,
            "ONUDC : Journée mondiale contre la traite des êtres humains (30 juillet 2024, Vienne)",
            "fr",
            at(date(2024, 7, 30), 14, 0),
            RUB_NEWS_FR,
            "À l'occasion de la Journée mondiale contre la traite des êtres humains, la France"
            " a réaffirmé son soutien à l'ONUDC.",
            "La Représentation permanente a participé à la cérémonie organisée par l'ONUDC"
            " à Vienne, consacrée cette année aux enfants victimes de la traite.",
        ),
        # the same PDF as the n°23 FR article, attached to a second article
        Article(
            2044,
            "Table ronde sur la traite des êtres humains à Belgrade (20 mars 2025)",
            "fr",
            at(date(2025, 3, 20), 16, 0),
            RUB_NEWS_FR,
            "La Représentation permanente a présenté à Belgrade le dernier numéro de sa"
            " lettre d'information.",
            "La table ronde a réuni magistrats, policiers et associations serbes autour de"
            " la délinquance forcée et de l'exploitation par le travail.\n\n"
            f"Le 23e numéro de la lettre d'information est [disponible ici->doc"
            f"{n23_fr.doc_id}].",
            [n23_fr],
        ),
        # a slug that collided with an older "Human-trafficking" article
        Article(
            2140,
            "Human trafficking",
            "en",
            at(date(2025, 4, 15), 11, 0),
            RUB_NEWS_EN,
            "France's action against human trafficking from Vienna.",
            "The Permanent Representation follows the work of UNODC, including the"
            " [Global Report on Trafficking in Persons->"
            "{unodc}/unodc/en/data-and-analysis/glotip.html].\n\n"
            "Read [our quarterly newsletters->{onu-vienne}/-Newsletters-].",
            slug="Human-trafficking-2140",
        ),
    ]
    return site


# --- osce.delegfrance.org ---------------------------------------------------------------------


def build_osce(root: Path, onu: SpipContent) -> SpipContent:
    site = SpipContent(
        "osce",
        "Représentation permanente de la France auprès de l'OSCE",
        "fr",
        {1: Rubrique(1, "Actualités", "-Actualites-", "fr")},
        root=root,
        # like some MEAE sites, the feed is served with a mislabeled content type
        feed_content_type="text/html; charset=utf-8",
    )
    d = date(2025, 3, 25)
    title = (
        "Déclaration de la France au Conseil permanent de l'OSCE sur la traite des êtres"
        " humains (mars 2025)"
    )
    own = site.new_pdf(
        "/IMG/pdf/declaration_france_cp_osce_traite_2025.pdf",
        title,
        _stub_pdf(
            title,
            [  # SYNTHETIC
                "La France salue l'engagement de la Représentante spéciale et coordinatrice de"
                " l'OSCE pour la lutte contre la traite des êtres humains.",
                "Elle appelle les États participants à appliquer le principe de non-sanction et à"
                " renforcer la lutte contre l'exploitation par le travail dans les chaînes"
                " d'approvisionnement.",
            ],
            "fr",
        ),
        at(d),
        "fr",
        1344,
    )
    # Links captured now: if onu-vienne replaces the PDF later, these keep the old "?id/hash".
    n23 = onu.issues[23].pdfs
    site.articles += [
        Article(
            812,
            "Lutte contre la traite des êtres humains",
            "fr",
            at(d, 10, 0),
            1,
            "La France soutient l'action de l'OSCE contre la traite des êtres humains.",
            "La Représentation permanente de la France auprès de l'ONU à Vienne publie une"
            " lettre d'information trimestrielle. Le dernier numéro (n°23, mars 2025) est"
            f" disponible en [français->{{onu-vienne}}{n23['fr'].path}{n23['fr'].query}]"
            f" et en [anglais->{{onu-vienne}}{n23['en'].path}{n23['en'].query}].\n\n"
            f"[Déclaration de la France au Conseil permanent->doc{own.doc_id}]",
            [own],
            slug="Lutte-contre-la-traite-des-etre-humains",
        ),
        Article(
            790,
            "L'OSCE sur la voie du renforcement",
            "fr",
            at(date(2024, 12, 5), 10, 0),
            1,
            "Le Conseil ministériel de Malte a adopté plusieurs décisions.",
            "La France se félicite de l'adoption du budget unifié de l'Organisation.",
        ),
    ]
    return site


# --- www.unodc.org ----------------------------------------------------------------------------


@dataclass(eq=False)
class UnodcPage:
    path: str
    title: str
    date: date
    kind: str  # "story" | "press" | "legacy"
    teaser: str
    body: list[str]  # HTML paragraphs
    lang: str = "en"
    place: str = "Vienna (Austria)"
    listing_href: str = ""  # how the listing links it (defaults to path)
    zero_pad: bool = False  # listing prints "03 March 2016"
    legacy_date: str = ""  # date as printed by the legacy feed page
    mtime: datetime | None = None

    def __post_init__(self) -> None:
        self.listing_href = self.listing_href or self.path
        self.mtime = self.mtime or at(self.date, 10, 0)


@dataclass(eq=False)
class UnodcContent:
    pages: list[UnodcPage]
    documents: dict[str, Document]
    glotip: list[tuple[str, list[tuple[str, str]]]]  # (heading, [(href, label)])
    feed_path: str = "/unodc/en/human-trafficking/news-feed.xml"  # REPLICA-ONLY, invented

    def page(self, path: str) -> UnodcPage | None:
        return next((p for p in self.pages if p.path == path), None)

    def listed(self, kind: str) -> list[UnodcPage]:
        return sorted((p for p in self.pages if p.kind == kind), key=lambda p: p.date, reverse=True)

    @property
    def modified(self) -> datetime:
        return max(
            [*(p.mtime for p in self.pages if p.mtime), *(d.mtime for d in self.documents.values())]
        )


GLOTIP_DIR = "/documents/data-and-analysis/glotip"
GLOTIP_BOOK = f"{GLOTIP_DIR}/2024/GLOTIP2024_BOOK.pdf"


def build_unodc(root: Path) -> UnodcContent:
    launch = at(date(2024, 12, 11), 10, 0)
    docs: dict[str, Document] = {}

    def add(path: str, title: str, data: bytes, mtime: datetime = launch) -> None:
        file = root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        docs[path] = Document(path, title, data, mtime, file=file)

    book = pdfs.build_glotip_2024(root / GLOTIP_BOOK.lstrip("/"))
    add(GLOTIP_BOOK, pdfs.GLOTIP_2024_TITLE, book.read_bytes())
    for path, title in [
        (
            f"{GLOTIP_DIR}/2024/GLOTIP2024_Chapter_1.pdf",
            "Global Report on Trafficking in Persons 2024 – Chapter 1: Global overview",
        ),
        (
            f"{GLOTIP_DIR}/2024/East_Asia_the_Pacific_GLOTIP2024.pdf",
            "Global Report on Trafficking in Persons 2024 – Country profiles: East Asia and the"
            " Pacific",
        ),
    ]:
        add(path, title, _stub_pdf(title, texts.paragraphs(texts.GLOTIP_2024)[:8], "en", 2))
    title_2022 = "Global Report on Trafficking in Persons 2022"
    add(
        f"{GLOTIP_DIR}/2022/GLOTiP_2022_web.pdf",
        title_2022,
        _stub_pdf(
            title_2022,
            [
                "The 2022 edition covers 141 countries and cases detected between 2018 and"
                " 2021, during the COVID-19 pandemic."
            ],
            "en",
            3,
        ),
        at(date(2023, 1, 24), 10, 0),
    )

    book_link = f'<a href="{GLOTIP_BOOK}">Global Report on Trafficking in Persons 2024</a>'
    pages = [
        UnodcPage(
            "/unodc/en/frontpage/2025/July/world-day-against-trafficking-in-persons-2025.html",
            "World Day against Trafficking in Persons 2025: organized crime"
            " drives human trafficking",
            date(2025, 7, 30),
            "story",
            "Most trafficking is driven by organized criminal groups, UNODC warns.",
            [
                "Organized criminal groups are behind most cases of trafficking in persons,"
                " including forced criminality in online scam centres."
            ],
        ),
        UnodcPage(
            "/unodc/en/frontpage/2024/December/global-report-on-trafficking-in-persons"
            "-2024--child-trafficking-up-31-per-cent.html",
            "Global Report on Trafficking in Persons 2024: child trafficking up 31 per cent",
            date(2024, 12, 11),
            "story",
            "Detected victims of trafficking rose by 25 per cent over pre-pandemic levels.",
            [
                f"The {book_link} shows a sharp rise in detected child victims.",
                "Forced labour and forced criminality account for a growing share of cases.",
            ],
        ),
        UnodcPage(
            "/unodc/en/frontpage/2024/May/8-facts-you-need-to-know-about-human"
            "-trafficking-in-the-21st-century.html",
            "8 facts you need to know about human trafficking in the 21st century",
            date(2024, 5, 3),
            "story",
            "Human trafficking affects every country in the world.",
            ["Traffickers adapt quickly to new technologies and to crises."],
        ),
        UnodcPage(
            "/unodc/en/frontpage/2023/July/world-day-against-trafficking-in-persons---reach"
            "-every-trafficking-victim--leave-no-one-behind--says-unodc.html",
            "World Day against Trafficking in Persons: “Reach every trafficking victim,"
            " leave no one behind”, says UNODC",
            date(2023, 7, 28),
            "story",
            "Many victims remain unidentified and unprotected.",
            ["Crises, conflicts and the climate emergency are increasing trafficking risks."],
        ),
        UnodcPage(
            "/unodc/en/frontpage/2021/January/securing-evidence-the-key-to-convictions-in"
            "-human-trafficking.html",
            "Securing Evidence: The Key to Convictions in Human Trafficking",
            date(2021, 1, 12),
            "story",
            "Human trafficking is a global and widespread crime…",
            ["Investigators need evidence that does not rely only on victim testimony."],
        ),
        UnodcPage(
            "/unodc/fr/frontpage/2017/June/lonudc-et-la-france-renforcent-la-lutte-contre"
            "-la-traite-des-etres-humains-en-europe-du-sud-est.html",
            "L'ONUDC et la France renforcent la lutte contre la traite des êtres humains"
            " en Europe du Sud-Est",
            date(2017, 6, 14),
            "story",
            "Un atelier régional s'est tenu à Belgrade.",
            ["Magistrats et policiers de la région ont échangé sur la délinquance forcée."],
            lang="fr",
            listing_href="/unodc/fr/frontpage/2017/June/lonudc-et-la-france-renforcent"
            "-la-lutte-contre-la-traite-des-etres-humains-en-europe-du-sud-est.html"
            "?ref=fs6",
        ),
        UnodcPage(
            "/unodc/en/frontpage/2016/March/third-annual-meeting-on-trafficking-in-persons"
            "-in-south-eastern-europe.html",
            "Third annual meeting on trafficking in persons in South-Eastern Europe",
            date(2016, 3, 3),
            "story",
            "The third annual meeting took place in Vienna.",
            ["Experts from the region reviewed national referral mechanisms."],
            zero_pad=True,
            legacy_date="03/03/2016",
        ),
        UnodcPage(
            "/unodc/en/frontpage/2013/March/unodc-launches-trafficking-case-law-database.html",
            "UNODC launches the human trafficking case law database",
            date(2013, 3, 27),
            "legacy",
            "The database collects court decisions.",
            ["More than 1,000 cases are available."],
            legacy_date="2013-03-27 15:06:17.0",
        ),
        # press releases (only some are about trafficking)
        UnodcPage(
            "/unodc/en/press/releases/2025/November/137-women-and-girls-killed-every-day-by"
            "-intimate-partners-or-family-members-in-2024.html",
            "137 women and girls killed every day by intimate partners or family members in 2024",
            date(2025, 11, 25),
            "press",
            "New data on femicide.",
            ["Femicide remains widespread in every region."],
        ),
        UnodcPage(
            "/unodc/en/press/releases/2025/October/signing-ceremony.html",
            "Signing ceremony of the UN Convention against Cybercrime",
            date(2025, 10, 25),
            "press",
            "The Convention opened for signature in Hanoi.",
            ["Member States signed the Convention."],
            place="Hanoi (Viet Nam)",
        ),
        UnodcPage(
            "/unodc/en/press/releases/2025/June/unodc-warns-of-scam-centres-fuelled-by"
            "-human-trafficking.html",
            "UNODC warns of scam centres fuelled by human trafficking",
            date(2025, 6, 2),
            "press",
            "Victims are trafficked to work in online fraud compounds.",
            [
                "Trafficking for forced criminality in scam centres has spread beyond"
                " South-East Asia."
            ],
            place="Bangkok (Thailand)",
        ),
        UnodcPage(
            "/unodc/en/press/releases/2024/December/un-general-assembly-adopts-landmark"
            "-convention-on-cybercrime.html",
            "UN General Assembly adopts landmark convention on cybercrime",
            date(2024, 12, 24),
            "press",
            "The first global treaty on cybercrime.",
            ["The Convention was adopted without a vote."],
            place="New York",
        ),
        UnodcPage(
            "/unodc/en/press/releases/2024/December/unodc-global-report-detected"
            "-trafficking-victims-up-25-per-cent.html",
            "UNODC Global Report: detected trafficking victims up 25 per cent",
            date(2024, 12, 11),
            "press",
            "The number of detected victims rose by 25 per cent over 2019.",
            [
                "The number of detected victims of trafficking in persons rose by 25 per"
                " cent compared with pre-pandemic levels, according to the Global Report.",
                f"Read the full report: {book_link}.",
                "* *** *",
                "For further information please contact: UNODC Communications.",
            ],
        ),
    ]
    glotip = [
        (
            "2024",
            [
                (GLOTIP_BOOK, "Full report"),
                (f"{GLOTIP_DIR}/2024/GLOTIP2024_Chapter_1.pdf", "Chapter 1"),
                (
                    "{unodc}" + f"{GLOTIP_DIR}/2024/East_Asia_the_Pacific_GLOTIP2024.pdf",
                    "Country profiles: East Asia and the Pacific",
                ),
            ],
        ),
        ("Previous editions", [(f"{GLOTIP_DIR}/2022/GLOTiP_2022_web.pdf", "2022")]),
    ]
    return UnodcContent(pages, docs, glotip)
