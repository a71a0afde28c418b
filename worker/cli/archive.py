"""``tipwatch archive …``: list, search, show, open, export, verify, tag and reindex archived
documents."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from worker.cli.common import (
    JsonOpt,
    archive_app,
    console,
    engine,
    err,
    fail,
    load_settings,
    print_json,
)

if TYPE_CHECKING:
    from worker.storage.filters import DocumentFilter

# -- filters shared by list, search and export ------------------------------------------------

SourceOpt = Annotated[
    list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable).")
]
LanguageOpt = Annotated[str | None, typer.Option("--language", "-l", help="Only 'en' or 'fr'.")]
KindOpt = Annotated[str | None, typer.Option(help="Only 'pdf' or 'html'.")]
IssueOpt = Annotated[int | None, typer.Option(help="Only this newsletter issue number.")]
PublicationOpt = Annotated[
    int | None, typer.Option(help="Only the documents of this publication (its id).")
]
SinceOpt = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="Published (else fetched) on or after this date."),
]
UntilOpt = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="Published (else fetched) on or before this date."),
]
TagOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        "-t",
        help="Only documents with this concept tag (repeatable: all).",
    ),
]
CountryOpt = Annotated[
    list[str] | None,
    typer.Option("--country", help="Only documents that mention this country (a country tag)."),
]


def _filters(
    source: list[str] | None,
    language: str | None,
    kind: str | None,
    issue: int | None,
    since: datetime | None,
    until: datetime | None,
    publication: int | None = None,
    tag: list[str] | None = None,
    country: list[str] | None = None,
) -> DocumentFilter:
    from worker.storage.filters import DocumentFilter
    from worker.tags import check_tags

    try:
        tags = check_tags(tag or []) + check_tags(country or [], kind="country")
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    return DocumentFilter(
        tags=tags,
        sources=list(source or []),
        language=language,
        kind=kind,
        issue=issue,
        since=since.date() if since else None,
        until=until.date() if until else None,
        publication=publication,
    )


def _documents_table(title: str, rows: list[dict[str, Any]], snippets: bool = False) -> Table:
    table = Table(title=title)
    for column in ("id", "pub", "source", "kind", "lang", "n°", "published", "title"):
        table.add_column(column)
    if snippets:
        table.add_column("matched")
        table.add_column("snippet")
    for row in rows:
        cells = [
            str(row["id"]),
            str(row["publication_id"] or ""),
            row["source"],
            row["kind"],
            row["language"] or "",
            str(row["issue_number"] or ""),
            (row["published_at"] or "")[:10],
            (row["title"] or row["url"])[:70],
        ]
        if snippets:
            cells.append(_matched(row["explanation"], row["kind"]))
            cells.append(row.get("snippet", ""))
        table.add_row(*cells)
    return table


@archive_app.command("list")
def archive_list(
    source: SourceOpt = None,
    language: LanguageOpt = None,
    kind: KindOpt = None,
    issue: IssueOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    publication: PublicationOpt = None,
    tag: TagOpt = None,
    country: CountryOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many documents.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many (for paging).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List archived documents, newest first (``pub``: the publication each belongs to)."""
    from worker.storage.db import session_scope
    from worker.storage.filters import list_filtered
    from worker.storage.repo import document_summary

    settings = load_settings()
    filters = _filters(source, language, kind, issue, since, until, publication, tag, country)
    with session_scope(engine(settings)) as session:
        rows = [document_summary(d) for d in list_filtered(session, filters, limit, offset)]
    if as_json:
        print_json(rows)
    else:
        console.print(_documents_table(f"Archive ({len(rows)} shown)", rows))


SortOpt = Annotated[str, typer.Option(help="relevance (best first) or date (newest first).")]
ThesaurusOpt = Annotated[
    bool, typer.Option("--thesaurus", help="Also find EN↔FR equivalents of known terms.")
]


def _hit_row(session: Any, hit: Any) -> dict[str, Any]:
    from worker.storage.repo import document_summary, get_document

    row = document_summary(get_document(session, hit.document_id))
    return {
        **row,
        "score": round(hit.score, 6),
        "snippet": hit.snippet,
        "explanation": hit.explanation,
        "cursor": hit.cursor,
    }


def _matched(explanation: dict[str, Any], kind: str) -> str:
    """The matched terms of an explanation, one line each: ``term ×count p. 1,3``."""
    lines = []
    for term in explanation["terms"]:
        pages = term.get("pages") or []
        where = f" p. {','.join(map(str, pages[:5]))}" if kind == "pdf" and pages else ""
        lines.append(f"{term['term']} ×{term['count']}{where}")
    return "\n".join(lines) + ("\n(in the title)" if explanation.get("in") == "title" else "")


@archive_app.command("search")
def archive_search(
    query: Annotated[
        str,
        typer.Argument(
            help='A subscription query: words, "a phrase", prefix*, AND/OR/NOT, NEAR/n, '
            "source:/lang:/kind:/tag: (see README)."
        ),
    ],
    source: SourceOpt = None,
    language: LanguageOpt = None,
    kind: KindOpt = None,
    issue: IssueOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    tag: TagOpt = None,
    country: CountryOpt = None,
    thesaurus: ThesaurusOpt = False,
    sort: SortOpt = "relevance",
    after: Annotated[
        str | None, typer.Option(help="Continue after this cursor (the last result's).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many results.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search the archive with the subscription query language: the documents returned are
    exactly those a subscription to QUERY would match, each with the words, pages and
    snippets an alert would give."""
    from worker.search import QueryError, search
    from worker.storage.db import session_scope

    settings = load_settings()
    filters = _filters(source, language, kind, issue, since, until, None, tag, country)
    try:
        with session_scope(engine(settings)) as session:
            page = search(
                session,
                query,
                filters=filters,
                thesaurus=thesaurus,
                limit=limit,
                cursor=after,
                sort=sort,
                count=not as_json,
            )
            rows = [_hit_row(session, hit) for hit in page.hits]
    except QueryError as exc:
        raise fail(f"invalid query: {exc}", 2) from exc
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    if as_json:
        print_json(rows)
        return
    shown = "" if page.count_exact else "at most "
    table = _documents_table(f"Search: {query} ({shown}{page.count} found)", rows, True)
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --after {page.next_cursor}", highlight=False)


@archive_app.command("count")
def archive_count(
    query: Annotated[str, typer.Argument(help="A subscription query (see archive search).")],
    source: SourceOpt = None,
    language: LanguageOpt = None,
    kind: KindOpt = None,
    issue: IssueOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    tag: TagOpt = None,
    country: CountryOpt = None,
    thesaurus: ThesaurusOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """How many archived documents QUERY matches (exact, or an upper bound when the index
    cannot tell and too many candidates would need reading)."""
    from worker.search import QueryError, match_count, prepare
    from worker.storage.db import session_scope

    settings = load_settings()
    filters = _filters(source, language, kind, issue, since, until, None, tag, country)
    try:
        with session_scope(engine(settings)) as session:
            count, exact = match_count(session, prepare(session, query, thesaurus), filters)
    except QueryError as exc:
        raise fail(f"invalid query: {exc}", 2) from exc
    if as_json:
        print_json({"query": query, "count": count, "exact": exact})
    else:
        console.print(f"{'' if exact else 'at most '}{count}", highlight=False)


@archive_app.command("show")
def archive_show(
    document_id: int,
    text: Annotated[bool, typer.Option("--text", help="Also print the extracted text.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show one document: metadata, keywords, where it was found, versions, alerts."""
    from worker.storage.db import session_scope
    from worker.storage.documents import document_detail
    from worker.storage.repo import NotFound, get_document

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        try:
            document = get_document(session, document_id)
        except NotFound as exc:
            raise fail(str(exc)) from exc
        row = document_detail(session, document, text=text)
    if as_json:
        print_json(row)
        return
    table = Table(show_header=False, title=f"Document {document_id}")
    table.add_column(style="bold")
    table.add_column()
    for key in SHOW_FIELDS:
        if row.get(key) not in (None, ""):
            table.add_row(key, str(row[key]))
    table.add_row("keywords", ", ".join(row["keywords"]))
    table.add_row("tags", ", ".join(f"{t['tag']} ×{t['count']}" for t in row["tags"]))
    table.add_row("found on", "\n".join(row["found_on"]))
    if len(row["versions"]) > 1:
        table.add_row(
            "versions",
            "\n".join(f"v{v['version']}: {v['id']} ({v['archived_at']})" for v in row["versions"]),
        )
    if row["publication"]:
        pub = row["publication"]
        table.add_row(
            "publication",
            "\n".join(
                [f"{pub['id']}: {pub['title'] or ''}" + (" (baseline)" if pub["baseline"] else "")]
                + [
                    f"  {o['id']}: {o['kind']} {o['language'] or '?'} — {o['title'] or ''}"
                    for o in pub["documents"]
                ]
            ),
        )
    table.add_row(
        "alerts",
        "\n".join(
            f"{a['subscription']}: {a['status']} ({', '.join(a['terms'])})" for a in row["alerts"]
        ),
    )
    console.print(table)
    if text:
        for number, page in enumerate(row["text_pages"], start=1):
            console.rule(f"page {number}")
            console.print(page, highlight=False)


# -- the originals ----------------------------------------------------------------------------


@archive_app.command("open")
def archive_open(
    document_id: int,
    path_only: Annotated[
        bool, typer.Option("--path", help="Print the original's file path; open nothing.")
    ] = False,
) -> None:
    """Open a document's original with the system viewer (or print its path when there is
    no desktop, e.g. over SSH)."""
    from worker.blobs import BlobMissing, open_blob_store
    from worker.cli.viewer import open_with_viewer, viewable_copy
    from worker.storage.db import session_scope
    from worker.storage.repo import NotFound, get_document

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        try:
            document = get_document(session, document_id)
        except NotFound as exc:
            raise fail(str(exc)) from exc
        sha, kind = document.content_sha256, document.kind
    store = open_blob_store(settings)
    try:
        path = viewable_copy(store, settings.resolved_archive_dir, document_id, sha, kind)
    except BlobMissing as exc:
        missing = f"the original of document {document_id} is missing from {store.location}"
        raise fail(missing) from exc
    if path_only or not open_with_viewer(path):
        sys.stdout.write(f"{path}\n")


EXPORT_FIELDS = (
    "id",
    "source",
    "kind",
    "title",
    "language",
    "issue_number",
    "series",
    "published_at",
    "fetched_at",
    "archived_at",
    "url",
    "canonical_url",
    "content_sha256",
    "size_bytes",
    "pages",
    "version",
    "previous_id",
    "extract_status",
    "extract_error",
    "keywords",
    "tags",
    "text",
)
# ``archive show`` prints keywords, links and text its own way below the metadata.
SHOW_FIELDS = tuple(
    f for f in EXPORT_FIELDS if f not in ("id", "previous_id", "keywords", "tags", "text")
)


@archive_app.command("export")
def archive_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    source: SourceOpt = None,
    language: LanguageOpt = None,
    kind: KindOpt = None,
    issue: IssueOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    tag: TagOpt = None,
    country: CountryOpt = None,
) -> None:
    """Export documents with their text, keywords and tags, one row at a time (any archive
    size)."""
    from worker.storage.db import session_scope
    from worker.storage.filters import iter_filtered
    from worker.storage.repo import document_summary

    if fmt not in ("jsonl", "csv"):
        raise fail(f"unknown format {fmt!r}: use jsonl or csv", 2)
    settings = load_settings()
    filters = _filters(source, language, kind, issue, since, until, None, tag, country)
    stream: IO[str] = (
        open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        if output
        else sys.stdout
    )
    writer = csv.DictWriter(stream, EXPORT_FIELDS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    try:
        with session_scope(engine(settings)) as session:
            for document in iter_filtered(session, filters):
                row = document_summary(document)
                row["fetched_at"] = document.fetched_at.isoformat()
                row["keywords"] = list(document.keywords or [])
                row["tags"] = [t.tag for t in sorted(document.tags, key=lambda t: -t.count)]
                row["text"] = document.text
                row = {key: row.get(key) for key in EXPORT_FIELDS}
                if writer:
                    writer.writerow(
                        {
                            **row,
                            "keywords": "; ".join(row["keywords"]),
                            "tags": "; ".join(row["tags"]),
                        }
                    )
                else:
                    stream.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
                session.expunge(document)  # keep memory flat however many rows
    finally:
        if output:
            stream.close()
    err.print(f"exported {count} documents" + (f" to {output}" if output else ""))


@archive_app.command("verify")
def archive_verify(as_json: JsonOpt = False) -> None:
    """Re-hash every stored original; report missing and corrupt ones (exit status 1 if any)."""
    from worker.blobs import open_blob_store
    from worker.cli.verify import verify_archive

    settings = load_settings()
    store = open_blob_store(settings)
    report = verify_archive(engine(settings), store, show_progress=not as_json)
    if as_json:
        print_json(report.as_dict())
    else:
        table = Table(title=f"Archive check: {store.location}")
        for column in ("problem", "sha256", "documents"):
            table.add_column(column)
        for problem, sha, ids in report.problems():
            table.add_row(problem, sha, ", ".join(map(str, ids)))
        if report.problems():
            console.print(table)
        console.print(
            f"{report.checked} blobs checked, {report.bytes_read:,} bytes read: "
            f"{len(report.missing)} missing, {len(report.corrupt)} corrupt"
        )
    if not report.ok:
        raise typer.Exit(1)


# -- tags -------------------------------------------------------------------------------------


@archive_app.command("tags")
def archive_tags(
    tag_kind: Annotated[
        str | None,
        typer.Option(help="Only tags of this kind: form, victim, response, actor, country…"),
    ] = None,
    source: SourceOpt = None,
    language: LanguageOpt = None,
    kind: KindOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The concept tags of the archive (config/taxonomy.yaml), with how many documents mention
    each, most first."""
    from worker.storage.db import session_scope
    from worker.tags import tag_counts

    settings = load_settings()
    filters = _filters(source, language, kind, None, None, None)
    with session_scope(engine(settings)) as session:
        rows = tag_counts(session, filters, tag_kind)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Tags ({len(rows)})")
    for column in ("tag", "kind", "label", "documents", "mentions"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["tag"], row["kind"] or "", row["label"], str(row["documents"]), str(row["mentions"])
        )
    console.print(table)


@archive_app.command("reindex")
def archive_reindex(as_json: JsonOpt = False) -> None:
    """Recompute the keyphrases and concept tags of every archived document (after the
    extractor or config/taxonomy.yaml changes), with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from worker.extract.reindex import reindex_archive

    settings = load_settings()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json,
    ) as bar:
        task = bar.add_task("reindexing", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = reindex_archive(engine(settings), advance)
    if as_json:
        print_json(report.as_dict())
    else:
        console.print(
            f"{report.documents} documents reindexed: {report.tagged} tagged, "
            f"{report.changed_keywords} with new keywords",
            highlight=False,
        )
