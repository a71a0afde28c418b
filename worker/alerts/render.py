"""What an alert or a digest says: config/templates/, which the operator may override."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from config.settings import CONFIG_DIR, Settings
from worker.storage.models import Alert, Subscription


@dataclass
class Message:
    title: str
    text: str
    html: str
    short: str


def _highlight(text: str) -> Markup:
    """Turn the matcher's «term» marks into <mark> tags, escaping everything else."""
    return Markup(re.sub(r"«(.*?)»", r"<mark>\1</mark>", str(escape(text))))


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
    env.filters["highlight"] = _highlight
    return env


def render(alert: Alert, settings: Settings) -> Message:
    env = template_env(settings)
    try:
        source_title = settings.source(alert.document.source).title or alert.document.source
    except Exception:
        source_title = alert.document.source
    context: dict[str, Any] = {
        "subscription": alert.subscription,
        "document": alert.document,
        "explanation": alert.explanation or {"terms": []},
        "source_title": source_title,
        "archive_url": f"{settings.web_base_url.rstrip('/')}/documents/{alert.document_id}",
    }
    return _message(
        env, context, "alert_title.j2", "alert.txt.j2", "alert.html.j2", "alert_short.txt.j2"
    )


def render_digest(subscription: Subscription, alerts: list[Alert], settings: Settings) -> Message:
    env = template_env(settings)
    base = settings.web_base_url.rstrip("/")
    context: dict[str, Any] = {
        "subscription": subscription,
        "items": [
            {
                "document": a.document,
                "explanation": a.explanation or {"terms": []},
                "archive_url": f"{base}/documents/{a.document_id}",
            }
            for a in alerts
        ],
    }
    return _message(
        env, context, "digest_title.j2", "digest.txt.j2", "digest.html.j2", "digest.txt.j2"
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
