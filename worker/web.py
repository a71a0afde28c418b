"""Read-only web UI and JSON API over the archive.

Archived HTML is never rendered as part of our pages: originals are served as downloads with
``Content-Disposition: attachment`` and ``nosniff``, so a hostile page cannot run script here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from config.settings import Settings
from worker.archive import BlobStore
from worker.storage.db import get_engine, session_scope
from worker.storage.repo import (
    NotFound,
    alerts_for_document,
    document_summary,
    get_document,
    list_documents,
)
from worker.storage.search import search

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
}


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="TIP Watch", docs_url="/api/docs", openapi_url="/api/openapi.json")
    engine = get_engine(settings.resolved_database_url)
    blobs = BlobStore(settings.resolved_archive_dir)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for key, value in SAFE_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with session_scope(engine) as session:
            session.execute(__import__("sqlalchemy").text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/api/documents")
    def api_documents(limit: int = Query(50, le=500), source: str | None = None) -> list[dict]:
        with session_scope(engine) as session:
            return [
                document_summary(d) for d in list_documents(session, source=source, limit=limit)
            ]

    @app.get("/api/search")
    def api_search(q: str, limit: int = Query(20, le=200)) -> list[dict]:
        with session_scope(engine) as session:
            return [
                {**document_summary(get_document(session, h.document_id)), "snippet": h.snippet}
                for h in search(session, q, limit)
            ]

    @app.get("/api/documents/{document_id}")
    def api_document(document_id: int) -> dict[str, Any]:
        with session_scope(engine) as session:
            try:
                d = get_document(session, document_id)
            except NotFound as exc:
                raise HTTPException(404, str(exc)) from exc
            return {
                **document_summary(d),
                "keywords": d.keywords,
                "pages_text": [p.text for p in d.pages],
                "alerts": [
                    {
                        "subscription": a.subscription.name,
                        "status": a.status,
                        "explanation": a.explanation,
                    }
                    for a in alerts_for_document(session, document_id)
                ],
            }

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, q: str | None = None) -> Any:
        with session_scope(engine) as session:
            if q:
                rows = [
                    {**document_summary(get_document(session, h.document_id)), "snippet": h.snippet}
                    for h in search(session, q, 50)
                ]
            else:
                rows = [document_summary(d) for d in list_documents(session, limit=100)]
        return TEMPLATES.TemplateResponse(request, "index.html", {"rows": rows, "q": q or ""})

    @app.get("/documents/{document_id}", response_class=HTMLResponse)
    def document_page(request: Request, document_id: int) -> Any:
        with session_scope(engine) as session:
            try:
                d = get_document(session, document_id)
            except NotFound as exc:
                raise HTTPException(404, str(exc)) from exc
            context = {
                "doc": document_summary(d),
                "keywords": d.keywords,
                "pages": [p.text for p in d.pages],
                "alerts": [
                    (a.subscription.name, a.status, a.explanation)
                    for a in alerts_for_document(session, document_id)
                ],
            }
        return TEMPLATES.TemplateResponse(request, "document.html", context)

    @app.get("/documents/{document_id}/original")
    def original(document_id: int) -> FileResponse:
        with session_scope(engine) as session:
            try:
                d = get_document(session, document_id)
            except NotFound as exc:
                raise HTTPException(404, str(exc)) from exc
            sha, kind = d.content_sha256, d.kind
        path = blobs.path(sha)
        if not path.is_file():
            raise HTTPException(410, "the original is missing from the archive")
        media = "application/pdf" if kind == "pdf" else "application/octet-stream"
        return FileResponse(
            path,
            media_type=media,
            filename=f"tipwatch-{document_id}-{sha[:12]}.{'pdf' if kind == 'pdf' else 'html.txt'}",
            content_disposition_type="attachment",
        )

    return app
