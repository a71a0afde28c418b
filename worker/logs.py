"""Logging: readable lines for people, one JSON object per line for log shippers.

Pipeline code logs with ``extra={"source": ..., "url": ..., "document_id": ...}``; the JSON
format carries those fields so every line can be traced to its source, URL and document.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from config.settings import Settings

CONTEXT_FIELDS = ("source", "url", "document_id", "alert_id", "task_id")


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
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
