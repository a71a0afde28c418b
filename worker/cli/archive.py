"""``tipwatch archive …``: list, search and show archived documents."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from worker.cli.common import (
    JsonOpt,
    archive_app,
    console,
    engine,
    fail,
    load_settings,
    print_json,
)

# -- archive ----------------------------------------------------------------------------------


def _documents_table(title: str, rows: list[dict[str, Any]], extra: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("id", "source", "kind", "lang", "n°", "published", "title"):
        table.add_column(column)
    if extra:
        table.add_column(extra)
    for row in rows:
        cells = [
            str(row["id"]),
            row["source"],
            row["kind"],
            row["language"] or "",
            str(row["issue_number"] or ""),
            (row["published_at"] or "")[:10],
            (row["title"] or row["url"])[:70],
        ]
        if extra:
            cells.append(row.get(extra.lower(), ""))
        table.add_row(*cells)
    return table


@archive_app.command("list")
def archive_list(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many documents.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List archived documents, newest first."""
    from worker.storage.db import session_scope
    from worker.storage.repo import document_summary, list_documents

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        rows = [document_summary(d) for d in list_documents(session, source=source, limit=limit)]
    if as_json:
        print_json(rows)
    else:
        console.print(_documents_table(f"Archive ({len(rows)} shown)", rows))


@archive_app.command("search")
def archive_search(
    query: str,
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Full-text search over titles and text (accent- and case-insensitive)."""
    from worker.storage.db import session_scope
    from worker.storage.repo import document_summary, get_document
    from worker.storage.search import search

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        rows = []
        for hit in search(session, query, limit):
            row = document_summary(get_document(session, hit.document_id))
            row["snippet"] = hit.snippet
            rows.append(row)
    if as_json:
        print_json(rows)
    else:
        console.print(_documents_table(f"Search: {query} ({len(rows)} found)", rows, "Snippet"))


@archive_app.command("show")
def archive_show(
    document_id: int,
    text: Annotated[bool, typer.Option("--text", help="Also print the extracted text.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show one document: metadata, keywords, where it was found, alerts."""
    from worker.newsletter import same_issue
    from worker.storage.db import session_scope
    from worker.storage.repo import (
        NotFound,
        alerts_for_document,
        document_summary,
        get_document,
    )

    settings = load_settings()
    with session_scope(engine(settings)) as session:
        try:
            document = get_document(session, document_id)
        except NotFound as exc:
            raise fail(str(exc)) from exc
        row = document_summary(document)
        row["keywords"] = document.keywords
        row["found_on"] = sorted({link.found_on or "" for link in document.links} - {""})
        row["urls"] = sorted({link.url for link in document.links})
        row["series"] = document.series
        row["same_issue"] = [
            {"id": other.id, "kind": other.kind, "language": other.language, "title": other.title}
            for other in same_issue(session, document)
        ]
        row["alerts"] = [
            {
                "subscription": a.subscription.name,
                "status": a.status,
                "terms": [t["term"] for t in a.explanation.get("terms", [])],
            }
            for a in alerts_for_document(session, document_id)
        ]
        if text:
            row["text_pages"] = [p.text for p in document.pages]
    if as_json:
        print_json(row)
        return
    table = Table(show_header=False, title=f"Document {document_id}")
    table.add_column(style="bold")
    table.add_column()
    for key in (
        "title",
        "source",
        "kind",
        "language",
        "issue_number",
        "published_at",
        "archived_at",
        "url",
        "canonical_url",
        "size_bytes",
        "pages",
        "version",
        "content_sha256",
        "extract_error",
    ):
        if row.get(key) not in (None, ""):
            table.add_row(key, str(row[key]))
    table.add_row("keywords", ", ".join(row["keywords"]))
    table.add_row("found on", "\n".join(row["found_on"]))
    if row["same_issue"]:
        table.add_row(
            "same issue",
            "\n".join(
                f"{o['id']}: {o['kind']} {o['language'] or '?'} — {o['title'] or ''}"
                for o in row["same_issue"]
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
            console.print(page, markup=False, highlight=False)
