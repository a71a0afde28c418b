"""The ``tipwatch`` command: poll, manage subscriptions, inspect the archive.

Every listing prints a table for people and, with ``--json``, JSON for scripts. Each module
registers its commands on the shared Typer app; ``--help`` lists them in import order.
"""

# isort: skip_file
from worker.cli import poll, subscriptions, alerts, archive, admin, status, bot
from worker.cli.common import app

__all__ = ["admin", "alerts", "app", "archive", "bot", "poll", "status", "subscriptions"]
