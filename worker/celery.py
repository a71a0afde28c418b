"""Lets ``celery -A worker worker|beat`` find the application defined in ``tasks``."""

from tasks import app

__all__ = ["app"]
