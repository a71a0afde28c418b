"""Text content of the replica's documents.

The English n°11 and n°23 newsletters come from the real seed files (``seeds/``). Everything in
this module is SYNTHETIC: French counterparts written for the replica, short stand-ins for the
issues that are not in the seeds, and a GLOTIP-like report. None of it is a real publication.
"""

from __future__ import annotations

import re
from pathlib import Path

_REPO_SEEDS = Path(__file__).resolve().parents[2] / "seeds"
_SHARED_SEEDS = Path("/work/shared/seeds")


def seed_path(name: str) -> Path:
    """Path of a seed file, from the repo's ``seeds/`` or, failing that, the shared copy."""
    for folder in (_REPO_SEEDS, _SHARED_SEEDS):
        candidate = folder / name
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    raise FileNotFoundError(f"seed {name!r} not found in {_REPO_SEEDS} or {_SHARED_SEEDS}")


def paragraphs(text: str) -> list[str]:
    """Split on blank lines and join each block's lines with single spaces."""
    blocks = re.split(r"\n[ \t\xa0]*\n", text.replace("\r\n", "\n"))
    return [" ".join(b.split()) for b in blocks if b.strip()]


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*)(?=\S)(.+?)(?<=\S)\1")


def markdown_paragraphs(md: str) -> list[str]:
    """Markdown → paragraphs; headings keep a ``#`` prefix and list items a ``- `` prefix
    (``build_pdf`` renders those), all other markdown marks are stripped."""
    out: list[str] = []
    for block in re.split(r"\n[ \t\xa0]*\n", md.replace("\r\n", "\n")):
        if block.lstrip().startswith(("- ", "* ")):
            items: list[str] = []  # one paragraph per list item, continuation lines appended
            for line in block.splitlines():
                if re.match(r"\s*[-*] ", line) or not items:
                    items.append(line)
                else:
                    items[-1] += " " + line
        else:
            items = [block]
        for item in items:
            text = " ".join(item.split())
            if not text or re.fullmatch(r"[-*_]{3,}", text):
                continue
            bullet = re.match(r"[-*] ", text) is not None
            text = _MD_EMPHASIS.sub(r"\2", _MD_LINK.sub(r"\1", text[2:] if bullet else text))
            out.append(("- " if bullet else "") + text.strip())
    return out


def n23_en_paragraphs() -> list[str]:
    return markdown_paragraphs(seed_path("newsletter-n23-en-2025-03.md").read_text("utf-8"))


def n11_en_paragraphs() -> list[str]:
    return paragraphs(seed_path("newsletter-n11-en.txt").read_text("utf-8"))


# --- SYNTHETIC French texts (written for the replica, not the real French editions) ----------

N23_FR = """\
# Éditorial

La traite des êtres humains demeure un enjeu majeur en Europe, et les Balkans, en particulier la
Serbie, n'y font pas exception. Pays d'origine des victimes, la Serbie est aussi un pays de transit
et de destination : selon les données de l'Office des Nations unies contre la drogue et le crime
(ONUDC), plus de la moitié des victimes identifiées dans la région sont des femmes et des enfants.

Aux formes classiques d'exploitation sexuelle s'ajoutent l'exploitation par le travail des
travailleurs migrants, la délinquance forcée et la mendicité forcée, qui touchent d'abord les
mineurs. Les données recueillies montrent aussi une progression des formes d'exploitation en
ligne, qui impose une adaptation constante des dispositifs de prévention et de répression.

Dans son rapport de juin 2023, le Groupe d'experts du Conseil de l'Europe sur la lutte contre la
traite des êtres humains (GRETA) a salué les réformes engagées par la Serbie : délai de
rétablissement et de réflexion pour les victimes, titres de séjour pour motifs humanitaires,
formation des professionnels et identification des victimes indépendante de l'enquête pénale.

La France reste pleinement engagée aux côtés de ses partenaires serbes et européens. La
coopération franco-serbe repose sur des actions concrètes menées avec les associations ATINA, qui
lutte contre l'exploitation sexuelle, et ASTRA, engagée contre la traite à des fins de travail
forcé.

## Retour sur la table ronde organisée à Belgrade par l'association ASTRA

L'association ASTRA a réuni à Belgrade des représentants des ministères, du parquet, de
l'inspection du travail et de la société civile autour de l'exploitation par le travail des
travailleurs migrants. Le permis unique de séjour et de travail simplifie les démarches mais ne
suffit pas à prévenir les abus de certaines agences de recrutement.

Les participants ont rappelé l'importance du principe de non-sanction : une victime de la traite
contrainte de commettre une infraction, qu'il s'agisse de délinquance forcée, de mendicité forcée
ou de travail illégal, ne doit pas être poursuivie pour ces faits.

## Gros plan : le troisième sommet du Consortium mondial des procureurs

Le troisième sommet annuel du Consortium mondial des procureurs spécialisés dans la lutte contre
la traite des êtres humains a réuni des magistrats de plus de quarante pays. Les échanges ont porté
sur l'essor de la traite à des fins d'exploitation par le travail, sur les liens entre traite et
trafic illicite de migrants, sur la « sextorsion » et sur la multiplication des centres
d'escroquerie en ligne, où des victimes sont contraintes de commettre des délits.

## Focus : la table ronde de l'association ATINA sur l'exploitation sexuelle

Soutenu par la France, le projet d'ATINA analyse la requalification de faits de traite en simple
prostitution, forme les professionnels et sensibilise le public. La table ronde a présenté le
modèle français, qui pénalise l'achat d'actes sexuels et protège les personnes prostituées.

## Entretien avec CAP International

La Coalition pour l'abolition de la prostitution fédère plus de trente-six associations dans
vingt-huit pays. Elle accompagne les personnes qui souhaitent sortir de la prostitution et porte
un plaidoyer commun auprès des institutions européennes et internationales.

## Zoom : le Congrès des Nations unies pour la prévention du crime et la justice pénale

Le quinzième Congrès pour la prévention du crime et la justice pénale, qui se tiendra à Abou Dhabi
en avril 2025, rappellera que la lutte contre la traite des êtres humains exige une réponse pénale
ferme, centrée sur les victimes et fondée sur la coopération internationale.

Représentation permanente de la France auprès de l'Office des Nations unies et des organisations
internationales à Vienne – Représentation permanente de la France auprès de l'OSCE.
"""

N11_FR = """\
# La stratégie française contre la délinquance forcée

Ce onzième numéro de la lettre trimestrielle « Lutte contre la traite des êtres humains en Europe
du Sud-Est » est consacré à la stratégie mise en œuvre par la France contre la traite des êtres
humains aux fins de contrainte à commettre des délits, en particulier en Europe du Sud-Est.

Ces dernières années, la traite à des fins de délinquance forcée a fortement augmenté en France,
ou du moins est devenue plus visible. Des mineurs, souvent originaires de communautés d'Europe du
Sud-Est, sont contraints par des réseaux familiaux ou claniques de commettre des vols et de
pratiquer la mendicité forcée.

## L'action de la Direction des affaires criminelles et des grâces

La Direction des affaires criminelles et des grâces (DACG) travaille avec la MIPROF à un second
plan d'action national. Une circulaire de politique pénale du 22 janvier 2015 a rappelé la
nécessité de retenir plus souvent la qualification de traite des êtres humains, afin
d'appréhender l'ensemble de la chaîne criminelle.

Le principe de non-sanction des victimes doit être appliqué : un mineur contraint de commettre des
délits est d'abord une victime. Les magistrats disposent désormais d'un guide sur la traite des
mineurs comprenant un modèle d'audition.

Les 5 et 6 octobre 2017, la DACG a co-organisé avec la MIPROF et ECPAT France un atelier européen
sur la traite des mineurs à des fins de délinquance forcée, qui a réuni une trentaine de magistrats
de sept pays européens.

## La protection des mineurs victimes

Le dispositif expérimental mis en place à Paris a permis d'identifier et de mettre à l'abri 84
mineurs victimes d'exploitation, grâce à un éloignement géographique et à un accompagnement
éducatif renforcé. L'exploitation par le travail et l'exploitation sexuelle restent par ailleurs
au cœur de la coopération avec la Roumanie, la Serbie et la Bulgarie.
"""

GLOTIP_2024 = """\
# Preface

Trafficking in persons is a crime that thrives on inequality, conflict and crisis. This edition of
the Global Report on Trafficking in Persons covers 156 countries and draws on cases detected
between 2020 and 2023. It shows that after the disruption caused by the COVID-19 pandemic the
number of detected victims is rising again in most regions of the world.

# Key findings

- The number of detected victims increased by 25 per cent compared with pre-pandemic levels.
- Children account for 38 per cent of detected victims; detected child victims rose sharply.
- Trafficking for forced labour grew faster than any other form of exploitation.
- Trafficking for forced criminality, including in online scam centres, is a growing concern.
- Most convicted traffickers are men, but women are more often convicted than for other crimes.

# Chapter 1: Global overview

Detections of victims of trafficking in persons vary widely between regions. Countries in Western
and Southern Europe and in North America detect more victims per capita, while countries in
Sub-Saharan Africa report fewer cases despite a high number of victims repatriated from abroad.
Low detection does not mean that trafficking is rare: it often reflects weak institutional
capacity and limited resources for victim identification.

The share of victims trafficked for sexual exploitation has decreased, while the share of victims
trafficked for forced labour, for forced criminality and for forced begging has increased. Mixed
forms of exploitation are frequent, and many victims are exploited in more than one way.

# Chapter 2: Child trafficking

Girls remain the largest group of detected child victims, mostly trafficked for sexual
exploitation. Boys are more often detected in forced labour and in forced criminal activity.
Unaccompanied and separated children on the move are particularly vulnerable to traffickers,
as are children in residential care and children affected by armed conflict.

# Chapter 3: Trafficking flows

Most victims are detected in their own region. Domestic trafficking accounts for a large share of
detections, but long-distance flows from Sub-Saharan Africa, South Asia and East Asia reach
Europe, North America and the Middle East. Climate-related disasters and conflicts displace
people and expose them to exploitation along migration routes.

# Chapter 4: Criminal justice response

The number of convictions for trafficking in persons remains low compared with the number of
detected victims. Effective investigations depend on financial investigations, cross-border
cooperation and the protection of victims and witnesses. The non-punishment principle protects
victims who were compelled to commit offences as a direct consequence of being trafficked.

# Methodology

The Report is based on official data on detected victims and offenders collected through a
standard questionnaire, complemented by a review of more than 800 court case summaries. Data are
reported by national authorities and refer to cases detected, which is only part of the total.
"""

# One topic per stand-in issue: (French, English). SYNTHETIC.
ISSUE_TOPICS: dict[int, tuple[str, str]] = {
    5: (
        "la stratégie française de lutte contre la traite pour 2017",
        "the French strategy against trafficking for 2017",
    ),
    9: (
        "la stratégie française de lutte contre la traite des êtres humains et son réseau",
        "the French strategy against human trafficking and its network",
    ),
    12: (
        "la traite à des fins d'exploitation par le travail dans l'agriculture",
        "trafficking for labour exploitation in agriculture",
    ),
    13: (
        "l'identification des mineurs victimes de la traite",
        "the identification of child victims of trafficking",
    ),
    14: (
        "la coopération judiciaire entre la France et les Balkans occidentaux",
        "judicial cooperation between France and the Western Balkans",
    ),
    15: (
        "la traite des êtres humains pendant la pandémie de COVID-19",
        "human trafficking during the COVID-19 pandemic",
    ),
    16: (
        "la délinquance forcée et le principe de non-sanction",
        "forced criminality and the non-punishment principle",
    ),
    17: ("le recrutement des victimes en ligne", "the online recruitment of victims"),
    18: (
        "la protection des personnes fuyant la guerre en Ukraine",
        "protecting people fleeing the war in Ukraine",
    ),
    19: ("la mendicité forcée des enfants", "the forced begging of children"),
    20: ("le rapport du GRETA sur la Serbie", "the GRETA report on Serbia"),
    21: (
        "les mariages forcés et la traite des êtres humains",
        "forced marriage and human trafficking",
    ),
    22: (
        "le Rapport mondial 2024 de l'ONUDC sur la traite des personnes",
        "UNODC's Global Report on Trafficking in Persons 2024",
    ),
}
DEFAULT_TOPIC = (
    "les dernières actions de la France contre la traite des êtres humains",
    "France's latest action against human trafficking",
)


def ordinal_fr(n: int) -> str:
    return "1er" if n == 1 else f"{n}e"


def ordinal_en(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def stub_issue_paragraphs(number: int, lang: str) -> list[str]:
    """Two short paragraphs for a stand-in issue (SYNTHETIC)."""
    fr, en = ISSUE_TOPICS.get(number, DEFAULT_TOPIC)
    if lang == "fr":
        return [
            f"Ce {ordinal_fr(number)} numéro de la lettre d'information « Lutte contre la traite"
            f" des êtres humains en Europe du Sud-Est » est consacré à {fr}.",
            "La Représentation permanente de la France auprès des Nations unies à Vienne y"
            " présente les actions menées avec l'ONUDC, l'OSCE et les associations partenaires"
            " de la région contre la traite des êtres humains, l'exploitation par le travail et"
            " la délinquance forcée, ainsi que les dernières évolutions législatives.",
        ]
    if lang == "sr":
        return [
            f"Broj {number} biltena o borbi protiv trgovine ljudima u jugoistočnoj Evropi.",
            "Stalna misija Francuske pri Ujedinjenim nacijama u Beču predstavlja saradnju sa"
            " UNODC-om, OEBS-om i udruženjima u regionu.",
        ]
    return [
        f"This {ordinal_en(number)} issue of the quarterly newsletter “Fight against human"
        f" trafficking in South-Eastern Europe” focuses on {en}.",
        "The Permanent Representation of France to the United Nations in Vienna presents the"
        " work carried out with UNODC, the OSCE and partner associations in the region against"
        " human trafficking, labour exploitation and forced criminality, and the latest"
        " legislative developments.",
    ]
