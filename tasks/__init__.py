"""Celery tasks and beat schedule, on the one app of ``tasks.celery_app``.

Run with ``celery -A tasks.celery_app worker|beat``. Importing any ``tasks.*`` module runs this
package first, and this imports :mod:`tasks.jobs`, which registers every task on that app: a
worker started with ``-A tasks.celery_app`` knows them all.
"""

from tasks import jobs

__all__ = ["jobs"]
