"""Celery tasks and beat schedule: ``celery -A tasks worker`` (or ``-A worker``)."""

from tasks import jobs
from tasks.celery_app import app

__all__ = ["app", "jobs"]
