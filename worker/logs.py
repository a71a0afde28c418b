"""Logging: readable lines for people, one JSON object per line for log shippers.

Pipeline code logs with ``extra={"source": ..., "url": ..., "document_id": ...}``; the JSON
format carries those fields so every line can be traced to its source, URL and document. Inside
a Celery task, :class:`TaskContext` adds the task's id and name, and the source, document or
alert the task is about, to every line logged, also by libraries.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from config.settings import Settings

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
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(settings: Settings) -> logging.Formatter:
    if settings.log_format == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


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
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
