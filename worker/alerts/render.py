"""What an alert or a digest says: config/templates/, which the operator may override."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from config.settings import CONFIG_DIR, Settings
from worker.match import marked_html
from worker.signing import manage_link, unsubscribe_link
from worker.storage.models import Alert, Document, Subscription


@dataclass
class Message:
    title: str
    text: str
    html: str
    short: str


LANGUAGES = {"en": "English", "fr": "French"}


def _language(code: str | None) -> str:
    return LANGUAGES.get(code or "", code or "unknown language")


def template_env(settings: Settings) -> Environment:
    loaders = []
    if settings.templates_dir:
        loaders.append(FileSystemLoader(str(settings.templates_dir)))
    loaders.append(FileSystemLoader(str(CONFIG_DIR / "templates")))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
    )
    env.filters["highlight"] = marked_html  # the plain-text part is derived from the HTML
    env.filters["language"] = _language
    return env


def _source_title(settings: Settings, source: str) -> str:
    try:
        return settings.source(source).title or source
    except Exception:  # a source since removed from the configuration
        return source


def _document_url(settings: Settings, document_id: int) -> str:
    return f"{settings.web_base_url.rstrip('/')}/documents/{document_id}"


def alert_context(alert: Alert, settings: Settings) -> dict[str, Any]:
    """What a template knows of one alert: its publication, headed by ``title``, and each
    matching document (``items``) with why it matched. ``document`` and ``explanation`` are
    the first match's, for templates written before publications."""
    matches = [(m.document, m.explanation) for m in alert.matches] or [
        (alert.document, alert.explanation)
    ]
    items = [
        {
            "document": document,
            "explanation": explanation or {"terms": []},
            "archive_url": _document_url(settings, document.id),
        }
        for document, explanation in matches
    ]
    publication = alert.publication
    first: Document = matches[0][0]
    dates = [d.published_at for d, _ in matches if d.published_at]
    published = publication.published_at if publication else None
    return {
        "subscription": alert.subscription,
        "publication": publication,
        "title": (publication.title if publication else None) or first.title or first.canonical_url,
        "published_at": published or (min(dates) if dates else None),
        "issue_number": publication.issue_number if publication else first.issue_number,
        "source_title": _source_title(settings, first.source),
        "items": items,
        "document": first,
        "explanation": items[0]["explanation"],
        "archive_url": items[0]["archive_url"],
    }


def subscriber_links(subscription: Subscription, settings: Settings) -> dict[str, str]:
    """A self-service subscriber's manage and unsubscribe links, for the message's footer."""
    if subscription.channel != "email" or not subscription.owner:
        return {}
    return {
        "manage_url": manage_link(settings, subscription.owner),
        "unsubscribe_url": unsubscribe_link(settings, subscription.id),
    }


def render(alert: Alert, settings: Settings) -> Message:
    context = {**alert_context(alert, settings), **subscriber_links(alert.subscription, settings)}
    return _message(
        template_env(settings),
        context,
        "alert_title.j2",
        "alert.txt.j2",
        "alert.html.j2",
        "alert_short.txt.j2",
    )


def render_digest(subscription: Subscription, alerts: list[Alert], settings: Settings) -> Message:
    """One message for a subscription's alerts since its last digest: a publication each."""
    context: dict[str, Any] = {
        "subscription": subscription,
        "publications": [alert_context(a, settings) for a in alerts],
        **subscriber_links(subscription, settings),
    }
    return _message(
        template_env(settings),
        context,
        "digest_title.j2",
        "digest.txt.j2",
        "digest.html.j2",
        "digest.txt.j2",
    )


def _message(
    env: Environment, context: dict[str, Any], title: str, text: str, html: str, short: str
) -> Message:
    """The four renderings of one message, each from its template; the title on one line."""
    return Message(
        title=" ".join(env.get_template(title).render(context).split()),
        text=env.get_template(text).render(context),
        html=env.get_template(html).render(context),
        short=env.get_template(short).render(context),
    )
