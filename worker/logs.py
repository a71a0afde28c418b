"""Logging: readable lines for people, one JSON object per line for log shippers.

Pipeline code logs with ``extra={"source": ..., "url": ..., "document_id": ...}``; the JSON
format carries those fields so every line can be traced to its source, URL and document. Inside
a Celery task, :class:`TaskContext` adds the task's id and name, and the source, document or
alert the task is about, to every line logged, also by libraries.

Every line the handlers installed here write goes through :func:`worker.redact.redact_log`:
credentials in URLs and the secrets of the notification URLs being delivered are masked, in
TIP Watch's own lines and in those of apprise, urllib3 and every other library alike.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from config.settings import Settings
from worker.redact import redact_log

CONTEXT_FIELDS = ("source", "url", "document_id", "alert_id", "task", "task_id")
# The field named by each task's first argument.
TASK_SUBJECT = {
    "tipwatch.poll_source": "source",
    "tipwatch.extract_document": "document_id",
    "tipwatch.deliver_alert": "alert_id",
}


class TaskContext(logging.Filter):
    """Stamp records logged inside a Celery task with that task's context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "celery" not in sys.modules:
            return True
        from celery._state import get_current_task

        task = get_current_task()
        if task is None or not task.request.id:
            return True
        record.task = task.name
        record.task_id = task.request.id
        subject, args = TASK_SUBJECT.get(task.name), task.request.args
        if subject and args and getattr(record, subject, None) is None:
            setattr(record, subject, args[0])
        return True


class Redact(logging.Filter):
    """Mask secrets in a record before any handler formats it: its message merged with its
    args, its exception and stack text, and its context fields (a URL may carry a password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tipwatch_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what logging would print for it
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact_log(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log(record.stack_info)
        for field in CONTEXT_FIELDS:
            if isinstance(value := getattr(record, field, None), str):
                setattr(record, field, redact_log(value))
        record.tipwatch_redacted = True
        return True


class ConsoleFormatter(logging.Formatter):
    """Readable lines; the whole line is redacted again, whatever a record carried."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_log(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            if (value := getattr(record, field, None)) is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = record.stack_info
        # redacted field by field: a secret is matched before JSON escapes its characters
        for key, value in entry.items():
            if isinstance(value, str):
                entry[key] = redact_log(value)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(settings: Settings) -> logging.Formatter:
    if settings.log_format == "json":
        return JsonFormatter()
    return ConsoleFormatter()


def configure_logging(settings: Settings, handlers: list[logging.Handler] | None = None) -> None:
    """Apply TIPWATCH_LOG_FORMAT and TIPWATCH_LOG_LEVEL to the given (or the root's) handlers."""
    root = logging.getLogger()
    if handlers is None:
        if not root.handlers:
            root.addHandler(logging.StreamHandler())
        handlers = root.handlers
    for handler in handlers:
        handler.setFormatter(formatter(settings))
        if not any(isinstance(f, TaskContext) for f in handler.filters):
            handler.addFilter(TaskContext())
        if not any(isinstance(f, Redact) for f in handler.filters):
            handler.addFilter(Redact())
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
