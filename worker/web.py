"""Read-only web UI and JSON API over the archive.

Archived HTML is never rendered as part of our pages: its extracted text is shown escaped,
and originals are served only as downloads (``Content-Disposition: attachment``, ``nosniff``,
a sandboxing CSP), so a hostile page cannot run script on this origin. Our own pages allow
scripts from this origin only (the vendored htmx), never inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, StringConstraints
from sqlalchemy import text
from sqlalchemy.orm import Session

from config.settings import Settings
from worker import web_auth, web_subscriptions
from worker.alerts.deliver import alert_summary
from worker.blobs import BlobStore, open_blob_store
from worker.search import QueryError, search
from worker.status import collect_status
from worker.storage import ALERT_STATUSES
from worker.storage.db import get_engine, session_scope
from worker.storage.documents import document_detail, publication_detail
from worker.storage.filters import DocumentFilter, list_filtered
from worker.storage.models import Document, Publication
from worker.storage.repo import (
    NotFound,
    document_counts,
    document_summary,
    get_document,
    list_alerts,
)
from worker.tags import document_tags, tag_counts

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# An original may be anything a remote site sent: never a page of ours, never a script.
ORIGINAL_CSP = "default-src 'none'; sandbox"


def http_url(value: str | None) -> str | None:
    """Only http(s) URLs become links: a crawled ``javascript:`` URL stays plain text."""
    return value if value and urlsplit(value).scheme in ("http", "https") else None


TEMPLATES.env.filters["http_url"] = http_url

# -- what the API accepts -----------------------------------------------------------------------
#
# Checked here, at the edge, so that no request can reach the database with a value it cannot
# take: ids, issue numbers and offsets fit an INTEGER column (PostgreSQL's 32 bits; SQLite's
# 64 would take more, but both answer alike), and text holds no NUL (PostgreSQL refuses it)
# and is of a sane length. Anything else is a 422 naming the parameter, never a 500.

MAX_INT = 2**31 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


FilterText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]
QueryText = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_nul)]
DocumentId = Annotated[int, PathParam(ge=1, le=MAX_INT)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]


def _optional_int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: not a number: {value!r}") from exc
    if not 1 <= number <= MAX_INT:
        raise HTTPException(422, f"{name}: must be from 1 to {MAX_INT}, got {value}")
    return number


def _optional_date(value: str | None, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: expected YYYY-MM-DD, got {value!r}") from exc


def document_filter(
    source: list[FilterText] = Query([]),
    language: FilterText | None = None,
    kind: FilterText | None = None,
    issue: FilterText | None = None,
    since: FilterText | None = None,
    until: FilterText | None = None,
    publication: FilterText | None = None,
    tag: list[FilterText] = Query([]),
) -> DocumentFilter:
    """Filters from the query string; empty form fields mean "any"."""
    return DocumentFilter(
        sources=[s for s in source if s],
        language=language or None,
        kind=kind or None,
        issue=_optional_int(issue, "issue"),
        since=_optional_date(since, "since"),
        until=_optional_date(until, "until"),
        publication=_optional_int(publication, "publication"),
        tags=[t.strip().casefold() for t in tag if t.strip()],
    )


SortText = Annotated[str, Query(pattern="^(relevance|date)$")]
CursorText = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]


@dataclass
class Results:
    """What a listing or a search shows: rows, and for a search its count and next cursor,
    or the query's mistake (shown to the person, never a 500)."""

    rows: list[dict[str, Any]]
    count: int | None = None
    count_exact: bool = True
    next_cursor: str | None = None
    error: str | None = None


def _results(
    session: Session,
    q: str,
    filters: DocumentFilter,
    limit: int,
    offset: int,
    after: str | None = None,
    sort: str = "relevance",
    thesaurus: bool = False,
) -> Results:
    """Newest documents (no query), or a search with the subscription query language."""
    if not q.strip():
        return Results(
            [document_summary(d) for d in list_filtered(session, filters, limit, offset)]
        )
    try:
        page = search(
            session,
            q,
            filters=filters,
            thesaurus=thesaurus,
            limit=limit,
            cursor=after,
            sort=sort,
        )
    except QueryError as exc:
        return Results([], error=f"invalid query: {exc}")
    except ValueError as exc:  # a cursor that is not ours
        return Results([], error=str(exc))
    rows = []
    for hit in page.hits:
        row = document_summary(get_document(session, hit.document_id))
        rows.append(
            {
                **row,
                "score": hit.score,
                "snippet": hit.snippet,
                "snippet_html": hit.snippet_html,
                "explanation": hit.explanation,
                "cursor": hit.cursor,
            }
        )
    return Results(rows, page.count, page.count_exact, page.next_cursor)


FACETS = 30  # tags shown beside the results


def _facet_url(request: Request, tag: str, selected: list[str]) -> str:
    """This listing narrowed to ``tag`` too (or widened, when it is selected already): a link
    on this site."""
    tags = [t for t in selected if t != tag] if tag in selected else [*selected, tag]
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("tag", "after")]
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in [*params, *(("tag", t) for t in tags)])
    return f"{request.url.path}?{query}"


def _load(session: Session, document_id: int) -> Document:
    try:
        return get_document(session, document_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc


def create_app(settings: Settings, blobs: BlobStore | None = None) -> FastAPI:
    app = FastAPI(title="TIP Watch", docs_url="/api/docs", openapi_url="/api/openapi.json")
    engine = get_engine(settings.resolved_database_url)
    store = blobs or open_blob_store(settings)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for key, value in SAFE_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with session_scope(engine) as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    # -- JSON API ---------------------------------------------------------------------------

    @app.get("/api/documents")
    def api_documents(
        filters: DocumentFilter = Depends(document_filter),
        limit: int = Query(50, ge=1, le=500),
        offset: Offset = 0,
    ) -> list[dict[str, Any]]:
        with session_scope(engine) as session:
            return [document_summary(d) for d in list_filtered(session, filters, limit, offset)]

    @app.get("/api/search")
    def api_search(
        request: Request,
        response: Response,
        q: QueryText,
        filters: DocumentFilter = Depends(document_filter),
        limit: int = Query(20, ge=1, le=200),
        after: CursorText | None = None,
        sort: SortText = "relevance",
        thesaurus: bool = False,
    ) -> list[dict[str, Any]]:
        """The documents a subscription to ``q`` would match, with the alert's explanation.
        ``X-Total-Count`` (``X-Total-Count-Exact``: false for an upper bound) and a
        ``Link: <…>; rel="next"`` header continue the listing."""
        with session_scope(engine) as session:
            results = _results(session, q, filters, limit, 0, after, sort, thesaurus)
        if results.error is not None:
            raise HTTPException(422, results.error)
        response.headers["X-Total-Count"] = str(results.count)
        response.headers["X-Total-Count-Exact"] = "true" if results.count_exact else "false"
        if results.next_cursor:
            following = request.url.include_query_params(after=results.next_cursor)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return [{k: v for k, v in r.items() if k != "snippet_html"} for r in results.rows]

    @app.get("/api/tags")
    def api_tags(
        filters: DocumentFilter = Depends(document_filter),
        tag_kind: str | None = Query(None, pattern="^[a-z]+$"),
    ) -> list[dict[str, Any]]:
        """Tag facets: each concept tag of the (filtered) archive, with how many documents
        mention it and how many times, most documents first; ``tag_kind``: only tags of this
        kind (form, victim, response, actor, country, region, topic)."""
        with session_scope(engine) as session:
            return tag_counts(session, filters, tag_kind)

    @app.get("/api/documents/{document_id}")
    def api_document(document_id: DocumentId) -> dict[str, Any]:
        with session_scope(engine) as session:
            document = _load(session, document_id)
            return {
                **document_detail(session, document, explanations=True),
                "tags": document_tags(document),
            }

    @app.get("/api/publications/{publication_id}")
    def api_publication(publication_id: DocumentId) -> dict[str, Any]:
        """One publication (an issue in all its languages and files, or an article with its
        files) and its documents; ``/?publication=N`` lists them on the web page."""
        with session_scope(engine) as session:
            publication = session.get(Publication, publication_id)
            if publication is None:
                raise HTTPException(404, f"no publication with id {publication_id}")
            return publication_detail(publication)

    # -- HTML -------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def index(
        request: Request,
        q: QueryText = "",
        filters: DocumentFilter = Depends(document_filter),
        limit: int = Query(50, ge=1, le=500),
        offset: Offset = 0,
        after: CursorText | None = None,
        sort: SortText = "relevance",
        thesaurus: bool = False,
    ) -> Any:
        with session_scope(engine) as session:
            results = _results(session, q, filters, limit, offset, after, sort, thesaurus)
            sources = sorted(document_counts(session))
            facets = tag_counts(session, filters)[:FACETS]
        following = None
        if results.next_cursor:
            url = request.url.include_query_params(after=results.next_cursor)
            following = f"{url.path}?{url.query}"  # a link on this site, not to a host
        context = {
            "rows": results.rows,
            "results": results,
            "q": q,
            "filters": filters,
            "sources": sources,
            "limit": limit,
            "offset": offset,
            "sort": sort,
            "thesaurus": thesaurus,
            "next_url": following,
            "query_string": str(request.query_params),
            "facets": [{**f, "url": _facet_url(request, f["tag"], filters.tags)} for f in facets],
        }
        # htmx asks for the results only, to swap them in place as the user types.
        template = "_results.html" if request.headers.get("HX-Request") else "index.html"
        return TEMPLATES.TemplateResponse(request, template, context)

    def require_operator(request: Request) -> str:
        return web_auth.operator(request, settings)

    operator_only = [Depends(require_operator)]

    @app.get("/api/alerts", dependencies=operator_only)
    def api_alerts(
        status: str | None = Query(None, pattern="^(pending|sending|sent|dead)$"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        with session_scope(engine) as session:
            return [alert_summary(a) for a in list_alerts(session, status=status, limit=limit)]

    @app.get("/alerts", response_class=HTMLResponse, dependencies=operator_only)
    def alerts_page(
        request: Request,
        status: str | None = Query(None, pattern="^(pending|sending|sent|dead)$"),
    ) -> Any:
        rows = api_alerts(status=status, limit=200)
        context = {"rows": rows, "status": status or "", "statuses": ALERT_STATUSES}
        return TEMPLATES.TemplateResponse(request, "alerts.html", context)

    @app.get("/api/status", dependencies=operator_only)
    def api_status() -> dict[str, Any]:
        return collect_status(engine, settings)

    @app.get("/status", response_class=HTMLResponse, dependencies=operator_only)
    def status_page(request: Request) -> Any:
        return TEMPLATES.TemplateResponse(request, "status.html", {"status": api_status()})

    @app.get("/documents/{document_id}", response_class=HTMLResponse)
    def document_page(request: Request, document_id: DocumentId) -> Any:
        with session_scope(engine) as session:
            document = _load(session, document_id)
            detail = document_detail(session, document, explanations=True)
            detail["tags"] = document_tags(document)
        return TEMPLATES.TemplateResponse(request, "document.html", {"doc": detail})

    @app.get("/documents/{document_id}/original")
    def original(document_id: DocumentId) -> Response:
        with session_scope(engine) as session:
            document = _load(session, document_id)
            sha, kind = document.content_sha256, document.kind
        if not store.exists(sha):
            raise HTTPException(410, "the original is missing from the archive")
        is_pdf = kind == "pdf"
        filename = f"tipwatch-{document_id}-{sha[:12]}.{'pdf' if is_pdf else 'html.txt'}"
        headers = {
            "Content-Security-Policy": ORIGINAL_CSP,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
        media = "application/pdf" if is_pdf else "application/octet-stream"
        path = store.local_path(sha)
        if path is not None:
            return FileResponse(path, media_type=media, headers=headers)
        return StreamingResponse(store.iter_chunks(sha), media_type=media, headers=headers)

    web_subscriptions.install(app, settings, engine)  # /subscribe, /confirm, /manage, …
    return app
