"""Email self-service on the web page: subscribe, confirm, manage, unsubscribe.

The rules of a subscription are :mod:`worker.subscriptions`' (the same query errors, with the
same pointer, as ``tipwatch subscribe``); this router adds what a public form needs: double
opt-in, signed links, CSRF protection (a double-submit cookie), rate limits per client and per
address, size limits, and answers that never say whether an address is already subscribed.
Unsubscribe and manage links keep working when the operator switches the form off.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from config.settings import Settings
from worker import subscriptions
from worker.email_channel import (
    TokenProblem,
    confirmations_sent,
    issue_confirm_token,
    send_confirmation,
    use_confirm_token,
)
from worker.match import marked_html
from worker.signing import (
    MANAGE,
    UNSUBSCRIBE,
    BadSignature,
    Expired,
    keyed_hash,
    manage_link,
    verify,
)
from worker.storage.db import session_scope
from worker.storage.models import SignupAttempt, Subscription
from worker.storage.repo import document_counts
from worker.subscriptions import SubscriptionError, SubscriptionRequest
from worker.web_auth import trusted_proxy

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
TEMPLATES.env.filters["highlight"] = lambda s: marked_html(s, keep_quotes=False)

CSRF_COOKIE = "tipwatch_csrf"
MAX_FORM_BYTES = 16 * 1024  # a subscribe or manage form is far smaller
MAX_QUERY = 1000
MAX_ADDRESS = 254  # RFC 5321's limit on a forward path
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$")
LANGUAGES = ("en", "fr")

REASONS = {
    "expired": (
        "This link has expired",
        "Confirmation links work for a limited time. Subscribe again on the subscribe page:"
        " a new link will be emailed.",
    ),
    "used": (
        "This link was already used",
        "A confirmation link works once. If you pressed Confirm, your subscription is active;"
        " the manage link in any alert lets you change it.",
    ),
    "unknown": ("This link is not valid", "Check that the whole link was copied from the email."),
}


class FormError(Exception):
    """A refused form, answered by a page with ``status`` (never a stack trace)."""

    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(title)
        self.status, self.title, self.text = status, title, text


def normal_address(value: str) -> str | None:
    """The address as stored (domain lower-cased), or None when it is not one."""
    value = value.strip()
    found = ADDRESS.match(value) if len(value) <= MAX_ADDRESS else None
    if not found:
        return None
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def domain_allowed(settings: Settings, address: str) -> bool:
    domains = settings.email_domains
    return not domains or address.rsplit("@", 1)[1] in domains


def client_of(request: Request, settings: Settings) -> str:
    """The client's IP address; behind a trusted proxy, the one it forwarded for."""
    host = request.client.host if request.client else "unknown"
    if trusted_proxy(host, settings):
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        return forwarded or host
    return host


async def limited_body(request: Request) -> bytes:
    """The request's body, refused (413) past MAX_FORM_BYTES before more of it is read."""
    too_large = FormError(413, "Too large", "The form is larger than any subscription.")
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise too_large
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise too_large
    return body


def install(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """Add the self-service pages to the web app; a refused form becomes its own page."""
    routes, message = router(settings, engine)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormError)
        return message(request, exc.status, exc.title, exc.text)

    app.add_exception_handler(FormError, refused)
    app.include_router(routes)


def router(settings: Settings, engine: Engine) -> tuple[APIRouter, Callable[..., Response]]:
    routes = APIRouter()

    # -- helpers ----------------------------------------------------------------------------

    def page(
        request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        context = {"csrf": token, "self_service": settings.self_service_email, **context}
        response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=settings.web_base_url.startswith("https://"),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def message(request: Request, status: int, title: str, text: str, **extra: Any) -> Response:
        return page(request, "message.html", {"title": title, "text": text, **extra}, status)

    def need_self_service() -> None:
        if not settings.self_service_email:
            raise FormError(404, "Not found", "Subscribing on this site is switched off.")
        need_keys(mail=True)

    def need_keys(mail: bool = False) -> None:
        if not settings.secret_key or (mail and not settings.mail_url):
            raise FormError(
                503,
                "Not configured",
                "The operator has not set TIPWATCH_SECRET_KEY and TIPWATCH_MAIL_URL.",
            )

    async def form(request: Request) -> dict[str, list[str]]:
        """The posted form, after its size and CSRF token are checked."""
        body = await limited_body(request)
        kind = request.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != "application/x-www-form-urlencoded":
            raise FormError(415, "Unsupported form", "Send the form from the page.")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormError(400, "Bad form", "The form could not be read.") from exc
        cookie = request.cookies.get(CSRF_COOKIE, "")
        given = (fields.get("csrf") or [""])[0]
        if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
            raise FormError(
                403,
                "This form has expired",
                "Reload the page and send the form again (it must come from this site).",
            )
        return fields

    def first(fields: dict[str, list[str]], key: str, default: str = "") -> str:
        return (fields.get(key) or [default])[0]

    def request_of(values: dict[str, list[str]]) -> SubscriptionRequest:
        def many(key: str) -> tuple[str, ...]:
            return tuple(v for v in values.get(key, []) if v)[:20]

        return SubscriptionRequest(
            query=first(values, "query")[: MAX_QUERY + 1],
            sources=many("source"),
            languages=many("language"),
            kinds=many("kind"),
            thesaurus=first(values, "thesaurus") in ("true", "on", "1"),
            delivery=first(values, "delivery", "immediate"),
        )

    def form_context(session: Session, values: dict[str, list[str]]) -> dict[str, Any]:
        return {
            "sources": sorted(document_counts(session)),
            "languages": LANGUAGES,
            "kinds": subscriptions.KINDS,
            "modes": subscriptions.DELIVERY_MODES,
            "values": values,
            "first": first,
        }

    def owner_of(signed: str) -> str:
        need_keys()
        try:
            return str(verify(settings, MANAGE, signed))
        except Expired as exc:
            raise FormError(410, *REASONS["expired"][:1], "Use the link of a newer alert.") from exc
        except BadSignature as exc:
            raise FormError(404, *REASONS["unknown"]) from exc

    # -- subscribe ----------------------------------------------------------------------------

    @routes.get("/subscribe", response_class=HTMLResponse)
    async def subscribe_page(request: Request) -> Response:
        need_self_service()
        values = {k: request.query_params.getlist(k) for k in request.query_params}
        with session_scope(engine) as session:
            context = form_context(session, values)
        return page(request, "subscribe.html", context)

    @routes.get("/subscribe/preview", response_class=HTMLResponse)
    async def subscribe_preview(request: Request) -> Response:
        """What the archive already holds that the query matches, explained as an alert."""
        need_self_service()
        values = {k: request.query_params.getlist(k) for k in request.query_params}
        wanted = request_of(values)
        error, found = None, []
        if len(wanted.query) > MAX_QUERY:
            error = f"the query is longer than {MAX_QUERY} characters"
        elif wanted.query.strip():
            try:
                with session_scope(engine) as session:
                    found = [
                        {"document": d.id, "title": d.title or d.canonical_url, "kind": d.kind,
                         "language": d.language, "explanation": e}
                        for d, e in subscriptions.preview(session, wanted, limit=10)
                    ]  # fmt: skip
            except SubscriptionError as exc:
                error = str(exc)
        return page(request, "_preview.html", {"error": error, "found": found, "wanted": wanted})

    @routes.post("/subscribe", response_class=HTMLResponse)
    async def subscribe_post(request: Request) -> Response:
        need_self_service()
        values = await form(request)
        assert settings.secret_key
        client = keyed_hash(settings.secret_key, client_of(request, settings))
        now = datetime.now(UTC)
        with session_scope(engine) as session:
            recent = session.scalar(
                select(func.count()).where(
                    SignupAttempt.client == client,
                    SignupAttempt.created_at >= now - timedelta(hours=1),
                )
            )
            if (recent or 0) >= settings.subscribe_per_client_hour:
                raise FormError(
                    429, "Too many requests", "Too many subscriptions from here: try again later."
                )
            session.add(SignupAttempt(client=client, created_at=now))
            # what no limit counts any more goes
            session.execute(
                delete(SignupAttempt).where(SignupAttempt.created_at < now - timedelta(days=1))
            )

        def refuse(field: str, text: str) -> Response:
            with session_scope(engine) as session:
                context = form_context(session, values)
            return page(request, "subscribe.html", {**context, "errors": {field: text}}, 422)

        wanted = request_of(values)
        if len(wanted.query) > MAX_QUERY:
            return refuse("query", f"the query is longer than {MAX_QUERY} characters")
        try:
            subscriptions.check(wanted)
        except SubscriptionError as exc:
            return refuse(exc.field or "query", str(exc))
        address = normal_address(first(values, "email"))
        if address is None:
            return refuse("email", "not an email address")
        if not domain_allowed(settings, address):
            allowed = ", ".join(settings.email_domains)
            return refuse("email", f"only addresses at {allowed} may subscribe here")
        outgoing = None
        with session_scope(engine) as session:
            since = now - timedelta(days=1)
            owned = subscriptions.owned_by(session, "email", address)
            if confirmations_sent(session, address, since) >= settings.subscribe_per_address_day:
                log.info("subscribe: confirmation limit reached for an address")
            elif len(owned) >= settings.max_subscriptions_per_address:
                log.info("subscribe: subscription limit reached for an address")
            else:
                subscription, _ = subscriptions.create(
                    session,
                    free_name(session),
                    wanted,
                    channel="email",
                    owner=address,
                    confirmed=False,
                )
                token = issue_confirm_token(session, settings, subscription)
                outgoing = subscription.id, token
        if outgoing is not None:
            with session_scope(engine) as session:
                stored = session.get(Subscription, outgoing[0])
                assert stored is not None
                base = settings.web_base_url.rstrip("/")
                send_confirmation(
                    settings,
                    stored,
                    f"{base}/confirm/{outgoing[1]}",
                    manage_link(settings, address),
                )
        # The same answer whether the address is new, subscribed or over a limit.
        return message(
            request,
            200,
            "Check your email",
            f"If {address} can subscribe, a confirmation link is on its way to it. Nothing"
            " will be sent to this address until that link is opened and confirmed.",
        )

    # -- confirm ------------------------------------------------------------------------------

    def confirm_problem(exc: TokenProblem) -> FormError:
        title, text = REASONS[exc.reason]
        return FormError(410 if exc.reason != "unknown" else 404, title, text)

    @routes.get("/confirm/{token}", response_class=HTMLResponse)
    async def confirm_page(request: Request, token: str) -> Response:
        """A page with a button: a mail scanner opening the link confirms nothing."""
        need_self_service()
        with session_scope(engine) as session:
            try:
                subscription = use_confirm_token(session, token[:100], spend=False)
            except TokenProblem as exc:
                raise confirm_problem(exc) from exc
            context = {"subscription": subscriptions.describe(subscription), "token": token}
        return page(request, "confirm.html", context)

    @routes.post("/confirm/{token}", response_class=HTMLResponse)
    async def confirm_post(request: Request, token: str) -> Response:
        need_self_service()
        await form(request)
        with session_scope(engine) as session:
            try:
                subscription = use_confirm_token(session, token[:100], spend=True)
            except TokenProblem as exc:
                raise confirm_problem(exc) from exc
            subscriptions.confirm(session, subscription)
            owner = subscription.owner or ""
            context = {"subscription": subscriptions.describe(subscription)}
        return page(
            request, "confirmed.html", {**context, "manage_url": manage_link(settings, owner)}
        )

    # -- manage -------------------------------------------------------------------------------

    @routes.get("/manage/{signed}", response_class=HTMLResponse)
    async def manage_page(request: Request, signed: str) -> Response:
        owner = owner_of(signed)
        with session_scope(engine) as session:
            rows = [
                subscriptions.describe(s) for s in subscriptions.owned_by(session, "email", owner)
            ]
        context = {
            "rows": rows,
            "owner": owner,
            "signed": signed,
            "modes": subscriptions.DELIVERY_MODES,
        }
        return page(request, "manage.html", context)

    @routes.post("/manage/{signed}/{subscription_id}", response_class=HTMLResponse)
    async def manage_post(request: Request, signed: str, subscription_id: int) -> Response:
        owner = owner_of(signed)
        values = await form(request)
        action = first(values, "action")
        with session_scope(engine) as session:
            subscription = session.get(Subscription, subscription_id)
            if subscription is None or (subscription.channel, subscription.owner) != (
                "email",
                owner,
            ):
                raise FormError(404, "No such subscription", "It may have been removed already.")
            if action == "save":
                query, delivery = first(values, "query"), first(values, "delivery")
                wanted = SubscriptionRequest(
                    query=query[: MAX_QUERY + 1], delivery=delivery, **_filters(subscription)
                )
                error = None
                if len(wanted.query) > MAX_QUERY:
                    error = f"the query is longer than {MAX_QUERY} characters"
                else:
                    try:
                        subscriptions.check(wanted)
                    except SubscriptionError as exc:
                        error = str(exc) if exc.field == "query" else f"{exc.field}: {exc}"
                if error:
                    rows = [
                        subscriptions.describe(s)
                        for s in subscriptions.owned_by(session, "email", owner)
                    ]
                    context = {"rows": rows, "owner": owner, "signed": signed,
                               "modes": subscriptions.DELIVERY_MODES,
                               "errors": {subscription_id: error}}  # fmt: skip
                    return page(request, "manage.html", context, 422)
                subscription.query, subscription.delivery = wanted.query, wanted.delivery
            elif action in ("pause", "resume"):
                subscriptions.set_active(session, subscription, action == "resume")
            elif action == "delete":
                subscriptions.remove(session, subscription)
            else:
                raise FormError(400, "Unknown action", "Use the buttons on the page.")
        return RedirectResponse(f"/manage/{signed}", status_code=303)

    # -- unsubscribe --------------------------------------------------------------------------

    def subscription_of(signed: str) -> int:
        need_keys()
        try:
            return int(verify(settings, UNSUBSCRIBE, signed))
        except Expired as exc:
            raise FormError(410, REASONS["expired"][0], "Use the link of a newer alert.") from exc
        except (BadSignature, TypeError, ValueError) as exc:
            raise FormError(404, *REASONS["unknown"]) from exc

    @routes.get("/unsubscribe/{signed}", response_class=HTMLResponse)
    async def unsubscribe_page(request: Request, signed: str) -> Response:
        subscription_id = subscription_of(signed)
        with session_scope(engine) as session:
            subscription = session.get(Subscription, subscription_id)
            row = subscriptions.describe(subscription) if subscription else None
        if row is None:
            return message(request, 200, "Unsubscribed", "This subscription no longer exists.")
        return page(request, "unsubscribe.html", {"subscription": row, "signed": signed})

    @routes.post("/unsubscribe/{signed}", response_class=HTMLResponse)
    async def unsubscribe_post(request: Request, signed: str) -> Response:
        """RFC 8058 one-click: a POST from a mail client, no cookie, no CSRF token (the signed
        link is the proof); the page's own button posts here too."""
        subscription_id = subscription_of(signed)
        await limited_body(request)
        with session_scope(engine) as session:
            subscription = session.get(Subscription, subscription_id)
            if subscription is not None and subscription.channel == "email":
                subscriptions.remove(session, subscription)
        return message(request, 200, "Unsubscribed", "No more alerts will be sent for it.")

    return routes, message


def _filters(subscription: Subscription) -> dict[str, Any]:
    given = subscription.filters or {}
    return {
        "sources": tuple(given.get("sources", ())),
        "languages": tuple(given.get("languages", ())),
        "kinds": tuple(given.get("kinds", ())),
        "thesaurus": bool(subscription.thesaurus),
    }


def free_name(session: Session) -> str:
    """A free name for a self-service subscription (names say nothing of the address)."""
    while True:
        candidates = [f"email-{secrets.token_hex(4)}" for _ in range(5)]
        taken = subscriptions.names_in_use(session, candidates)
        for name in candidates:
            if name not in taken:
                return name
