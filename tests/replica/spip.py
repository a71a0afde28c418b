"""SPIP sites (onu-vienne.delegfrance.org, osce.delegfrance.org) rendered from ``content``.

Markup follows the composed skeletons of sources.md §1.9 (SPIP dist structure: hentry, abbr
published, spip_in links, #documents_joints, debut_articles pagination, backend RSS 2.0 with
dc:date, no pubDate and one <enclosure> per attached document).
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from urllib.parse import parse_qs

from .base import Response, Site, html_page, not_found
from .content import Article, Rubrique, SpipContent, date_text, iso_z, size_label

PER_PAGE = 10

LABELS = {
    "fr": {
        "home": "Accueil",
        "docs": "Documents joints",
        "download": "Télécharger",
        "modified": "Dernière modification : {}",
        "top": "Haut de page",
        "more": "Lire la suite",
        "other": "English",
        "rss": "Syndiquer cette rubrique",
    },
    "en": {
        "home": "Home",
        "docs": "Attached documents",
        "download": "Download",
        "modified": "Last modified on {}",
        "top": "Top of page",
        "more": "Read more",
        "other": "Français",
        "rss": "Subscribe to this section",
    },
}
_SHORTCUT = re.compile(r"\[([^\[\]]+?)->([^\]]+)\]")
_PLACEHOLDER = re.compile(r"\{(onu-vienne|osce|unodc)\}")


def _q(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


class SpipSite(Site):
    def __init__(self, content: SpipContent, base_urls: dict[str, str]) -> None:
        super().__init__(content.name, base_urls)
        self.content = content
        self.lang = content.lang

    def files(self):  # type: ignore[no-untyped-def]
        return self.content.documents

    @property
    def modified(self) -> datetime:
        return self.content.modified

    def abs(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    # --- routing --------------------------------------------------------------------------

    def route(self, path: str, query: str) -> Response | None:
        params = parse_qs(query)
        if path == "/":
            return self._html(self.home(), self.modified)
        if path == "/spip.php":
            return self.spip_php(query, params)
        slug = path.lstrip("/")
        rubrique = self.content.rubrique_by_slug(slug)
        if rubrique is not None:
            try:
                offset = max(int(_q(params, "debut_articles") or 0), 0)
            except ValueError:
                offset = 0
            return self._html(self.rubrique_page(rubrique, offset), self.modified)
        article = self.content.article_by_slug(slug)
        if article is not None:
            return self._html(self.article_page(article), article.modified)
        return None

    def spip_php(self, query: str, params: dict[str, list[str]]) -> Response:
        page = _q(params, "page")
        if page == "backend":
            resp = Response(
                body=self.backend(params).encode(),
                content_type=self.content.feed_content_type,
                mtime=self.modified,
            )
            return resp
        if page == "backend-breves":  # no brèves on these sites: an empty channel
            return Response(
                body=self.backend({"id_rubrique": ["-1"]}).encode(),
                content_type=self.content.feed_content_type,
                mtime=self.modified,
            )
        if page == "rss":  # traps: 404 without a rubrique, an HTML page with one
            rid = _q(params, "id_rubrique")
            if rid is None:
                return not_found(self.lang)
            return self._html(self.feeds_page(rid), self.modified)
        target: str | None = None
        m = re.fullmatch(r"(article|rubrique)(\d+)", query)
        if page in ("article", "rubrique"):
            m = re.fullmatch(r"\d+", _q(params, f"id_{page}") or "")
            target = self._object_url(page, int(m.group())) if m else None
        elif m:
            target = self._object_url(m.group(1), int(m.group(2)))
        if target:
            return Response(301, b"", headers={"Location": target})
        if page is None and "lang" in params:
            return self._html(self.home(), self.modified)
        return not_found(self.lang)

    def _object_url(self, kind: str, oid: int) -> str | None:
        if kind == "article":
            art = next((a for a in self.content.articles if a.id == oid), None)
            return self.abs(art.slug) if art else None
        rub = self.content.rubriques.get(oid)
        return self.abs(rub.slug) if rub else None

    @staticmethod
    def _html(text: str, mtime: datetime) -> Response:
        return Response(body=text.encode(), mtime=mtime)

    # --- text -----------------------------------------------------------------------------

    def expand(self, url: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self.base_urls.get(m.group(1), ""), url)

    def spip_text(self, text: str) -> str:
        def link(m: re.Match[str]) -> str:
            label, target = m.groups()
            doc_ref = re.fullmatch(r"doc(\d+)", target)
            doc = self.content.doc_by_id(int(doc_ref.group(1))) if doc_ref else None
            if doc is not None:
                return (
                    f'<a href="{escape(doc.href)}" class="spip_in"'
                    f' type="application/pdf">{label}</a>'
                )
            if doc_ref:  # a document not (yet) online: SPIP shows the label alone
                return label
            url = self.expand(target)
            kind = ' type="application/pdf"' if ".pdf" in url else ""
            if url.startswith(self.base + "/"):
                return f'<a href="{escape(url)}" class="spip_in"{kind}>{label}</a>'
            return f'<a href="{escape(url)}" class="spip_out" rel="external"{kind}>{label}</a>'

        return "\n".join(f"<p>{_SHORTCUT.sub(link, p)}</p>" for p in text.split("\n\n"))

    # --- pages ----------------------------------------------------------------------------

    def layout(
        self, lang: str, title: str, body_class: str, main: str, footer: datetime, head: str = ""
    ) -> str:
        lab = LABELS[lang]
        feed = "spip.php?page=backend" + ("&amp;lang=en" if lang == "en" else "")
        return f"""<!DOCTYPE html>
<html lang="{lang}" dir="ltr">
<head>
<meta charset="utf-8">
<title>{escape(title)} - {escape(self.content.title)}</title>
<link rel="alternate" type="application/rss+xml" title="{escape(self.content.title)}" \
href="{feed}">
{head}</head>
<body class="{body_class}">
<header><a href="{self.base}/" class="nom_site">{escape(self.content.title)}</a></header>
<nav class="menu-langues"><a href="?lang=fr" hreflang="fr"{' class="on"' if lang == "fr" else ""}\
>FR</a> <a href="?lang=en" hreflang="en"{' class="on"' if lang == "en" else ""}>EN</a></nav>
{main}
<footer><p>{lab["modified"].format(footer.strftime("%d/%m/%Y"))}</p>\
<a href="#">{lab["top"]}</a></footer>
</body>
</html>
"""

    def breadcrumbs(self, rubrique: Rubrique, lang: str, current: bool) -> str:
        chain: list[Rubrique] = []
        rub: Rubrique | None = rubrique
        while rub is not None:
            chain.insert(0, rub)
            rub = self.content.rubriques.get(rub.parent) if rub.parent else None
        parts = [f'<a href="./">{LABELS[lang]["home"]}</a>']
        for r in chain:
            if current and r is rubrique:
                parts.append(f'<strong class="on">{escape(r.title)}</strong>')
            else:
                parts.append(f'<a href="{r.slug}">{escape(r.title)}</a>')
        return '<div id="hierarchie">' + " &gt; ".join(parts) + "</div>"

    def home(self) -> str:
        latest = self.content.by_date()[:5]
        items = "\n".join(
            f'<li><a href="{self.abs(a.slug)}">{escape(a.title)}</a>'
            f" <small>{date_text(a.date.date(), a.lang)}</small></li>"
            for a in latest
        )
        rubs = "\n".join(
            f'<li><a href="{r.slug}">{escape(r.title)}</a></li>'
            for r in self.content.rubriques.values()
        )
        main = (
            f'<main id="contenu"><h1>{escape(self.content.title)}</h1>\n'
            f'<div class="menu articles"><h2>À la une</h2><ul>\n{items}\n</ul></div>\n'
            f'<nav class="menu rubriques"><ul>\n{rubs}\n</ul></nav></main>'
        )
        return self.layout(
            self.lang, LABELS[self.lang]["home"], "page_sommaire", main, self.modified
        )

    def rubrique_page(self, rub: Rubrique, offset: int) -> str:
        lab = LABELS[rub.lang]
        arts = self.content.by_date([a for a in self.content.articles if a.rubrique == rub.id])
        page = arts[offset : offset + PER_PAGE]
        items = "\n".join(
            f"""<li>
<h3><a href="{a.slug}">{escape(a.title)}</a></h3>
<small>{date_text(a.date.date(), rub.lang)}</small>
<p class="introduction">{escape(a.chapo)} <a href="{self.abs(a.slug)}" class="lire-la-suite">\
{lab["more"]}</a></p>
</li>"""
            for a in page
        )
        subs = [r for r in self.content.rubriques.values() if r.parent == rub.id]
        sub_html = (
            '<ul class="sous-rubriques">'
            + "".join(f'<li><a href="{r.slug}">{escape(r.title)}</a></li>' for r in subs)
            + "</ul>"
            if subs
            else ""
        )
        main = f"""{self.breadcrumbs(rub, rub.lang, True)}
<main id="contenu">
<h1>{escape(rub.title)}</h1>
{sub_html}
<div class="menu articles">
<a id="pagination_articles"></a>
<ul>
{items}
</ul>
{self.pagination(rub, offset, len(arts))}
</div>
</main>"""
        head = (
            f'<link rel="alternate" type="application/rss+xml" title="{lab["rss"]}"'
            f' href="spip.php?page=backend&amp;id_rubrique={rub.id}">\n'
        )
        footer = arts[0].date if arts else self.modified
        return self.layout(rub.lang, rub.title, "page_rubrique", main, footer, head)

    @staticmethod
    def pagination(rub: Rubrique, offset: int, total: int) -> str:
        if total <= PER_PAGE:
            return ""
        links = []
        for start in range(0, total, PER_PAGE):
            if start <= offset < start + PER_PAGE:
                links.append(f'<strong class="on">{start}</strong>')
            else:
                query = f"?debut_articles={start}" if start else ""
                links.append(
                    f'<a href="{rub.slug}{query}#pagination_articles"'
                    f' class="lien_pagination" rel="nofollow">{start}</a>'
                )
        return (
            '<p class="pagination"><span class="pages">'
            + '<span class="sep"> | </span>'.join(links)
            + "</span></p>"
        )

    def article_page(self, art: Article) -> str:
        lab = LABELS[art.lang]
        rub = self.content.rubriques[art.rubrique]
        head = f'<link rel="canonical" href="{self.abs(art.slug)}">\n'
        if art.trad is not None:
            head += (
                f'<link rel="alternate" hreflang="{art.trad.lang}"'
                f' href="{self.abs(art.trad.slug)}">\n'
            )
        if art.old_style:  # 2014–2018 template: no date at the top, footer date only
            main = f"""{self.breadcrumbs(rub, art.lang, False)}
<div id="contenu" class="article">
<h1>{escape(art.title)}</h1>
<div class="chapo"><p>{escape(art.chapo)}</p></div>
<div class="texte">
{self.spip_text(art.text)}
</div>
</div>"""
            return self.layout(art.lang, art.title, "page_article", main, art.date, head)
        docs = "\n".join(
            f'<li><strong><a href="{escape(d.href)}" title="{lab["download"]}"'
            f' type="application/pdf">{escape(d.title)}</a></strong>'
            f" <small>(<span>PDF &ndash; {size_label(len(d.data), art.lang)}</span>)</small></li>"
            for d in art.documents
        )
        docs_block = (
            (
                f'<div class="menu" id="documents_joints">\n<h2>{lab["docs"]}</h2>\n'
                f"<ul>\n{docs}\n</ul>\n</div>"
            )
            if art.documents
            else ""
        )
        trad = ""
        if art.trad is not None:
            trad = (
                f'<p class="traductions">{lab["other"]} : <a href="{self.abs(art.trad.slug)}"'
                f' hreflang="{art.trad.lang}" rel="alternate">{escape(art.trad.title)}</a></p>'
            )
        main = f"""{self.breadcrumbs(rub, art.lang, False)}
<article class="hentry" id="contenu">
<h1 class="entry-title">{escape(art.title)}</h1>
<p><small><abbr class="published" title="{iso_z(art.date)}">\
{date_text(art.date.date(), art.lang)}</abbr></small></p>
<div class="chapo"><p>{escape(art.chapo)}</p></div>
<div class="texte entry-content">
{self.spip_text(art.text)}
</div>
{docs_block}
{trad}
</article>"""
        return self.layout(art.lang, art.title, "page_article", main, art.date, head)

    def feeds_page(self, rid: str) -> str:
        """What ``spip.php?page=rss&id_rubrique=N`` returns: HTML, not a feed."""
        body = (
            "<h1>Syndication</h1><p>Fils RSS disponibles :</p><ul>"
            f'<li><a href="spip.php?page=backend">Tout le site</a></li>'
            f'<li><a href="spip.php?page=backend&amp;id_rubrique={escape(rid)}">'
            "Cette rubrique</a></li></ul>"
        )
        return html_page("Syndication", body).body.decode()

    # --- RSS ------------------------------------------------------------------------------

    def backend(self, params: dict[str, list[str]]) -> str:
        arts = self.content.articles
        rid, lang = _q(params, "id_rubrique"), _q(params, "lang")
        if rid is not None:
            branch = self.content.branch(int(rid)) if rid.isdigit() else set()
            arts = [a for a in arts if a.rubrique in branch]
        if lang:
            arts = [a for a in arts if a.lang == lang]
        items = "".join(self.rss_item(a) for a in self.content.by_date(arts)[:PER_PAGE])
        channel_lang = lang or self.lang
        return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"
\txmlns:dc="http://purl.org/dc/elements/1.1/"
\txmlns:content="http://purl.org/rss/1.0/modules/content/"
>

<channel xml:lang="{channel_lang}">
\t<title>{escape(self.content.title, quote=False)}</title>
\t<link>{self.base}/</link>
\t<description></description>
\t<language>{channel_lang}</language>
\t<generator>SPIP - www.spip.net</generator>
{items}
</channel>

</rss>
"""

    def rss_item(self, art: Article) -> str:
        rub = self.content.rubriques[art.rubrique]
        url = self.abs(art.slug)
        description = (
            f'{escape(art.chapo, quote=False)}\n\n-\n<a href="{self.abs(rub.slug)}"'
            f' rel="directory">{escape(rub.title, quote=False)}</a>\n'
        )
        subject = (
            "\n\t\t<dc:subject>Traite des êtres humains</dc:subject>"
            if art.issue is not None
            else ""
        )
        enclosures = "".join(
            f'\n\t\t<enclosure url="{escape(self.abs(d.href))}" length="{len(d.data)}"'
            ' type="application/pdf" />'
            for d in art.documents
        )
        return f"""
\t<item xml:lang="{art.lang}">
\t\t<title>{escape(art.title, quote=False)}</title>
\t\t<link>{url}</link>
\t\t<guid isPermaLink="true">{url}</guid>
\t\t<dc:date>{iso_z(art.date)}</dc:date>
\t\t<dc:format>text/html</dc:format>
\t\t<dc:language>{art.lang}</dc:language>{subject}
\t\t<description>{escape(description, quote=False)}</description>{enclosures}
\t</item>
"""
