"""Beat schedule: each source at its own interval; entries expire before the next run."""

from __future__ import annotations

from typing import Any

from config.settings import Settings

SWEEP_SECONDS = 300
DIGEST_SECONDS = 600  # digests are due on the hour; checking every 10 minutes is plenty


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {}
    for source in settings.source_list:
        if not source.enabled:
            continue
        interval = source.interval_minutes * 60
        schedule[f"poll-{source.name}"] = {
            "task": "tipwatch.poll_source",
            "schedule": float(interval),
            "args": (source.name,),
            # A poll still queued when the next one is due is dropped, so polls never pile up.
            "options": {"expires": interval * 0.9},
        }
    schedule["send-digests"] = {
        "task": "tipwatch.send_digests",
        "schedule": float(DIGEST_SECONDS),
        "options": {"expires": DIGEST_SECONDS * 0.9},
    }
    schedule["sweep-alerts"] = {
        "task": "tipwatch.sweep_alerts",
        "schedule": float(SWEEP_SECONDS),
        "options": {"expires": SWEEP_SECONDS * 0.9},
    }
    return schedule
