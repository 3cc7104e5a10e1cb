"""The Celery app of the workers: Redis broker from settings, explicit task names, three queues.

`celery -A worker.celery_app worker -Q jobs` runs training jobs (one at a time per process,
acknowledged on receipt); `-Q webhooks,default` runs deliveries, sweeps and the reaper; `-B` or
`celery beat` runs the schedule. This module never imports torch.
"""

from __future__ import annotations

import os
import tempfile

from celery import Celery
from kombu import Queue

from trainforge import queue
from trainforge.settings import get_settings
from worker.registration import placement_enabled


def beat_schedule(reap_interval_s: float, sweep_interval_s: float) -> dict[str, dict]:
    """Return the periodic tasks: the job reaper (it also re-sends stuck jobs) and the webhook sweep."""
    return {
        "reap-stale-jobs": {"task": queue.REAP_JOBS, "schedule": reap_interval_s},
        "sweep-webhooks": {"task": queue.SWEEP_WEBHOOKS, "schedule": sweep_interval_s},
    }


def create_app() -> Celery:
    """Build the worker app from settings."""
    settings = get_settings()
    app = Celery("trainforge")
    app.conf.update(queue.celery_config(settings.redis_url))
    app.conf.update(
        task_queues=[
            Queue(name)
            for name in dict.fromkeys([*settings.job_queues, queue.WEBHOOKS_QUEUE, queue.DEFAULT_QUEUE])
        ],
        task_routes={**app.conf.task_routes, queue.REAP_JOBS: {"queue": queue.DEFAULT_QUEUE}},
        # A training run outlives any broker visibility timeout: acknowledge on receipt and let the
        # job's lease (not a redelivered message) decide who runs it.
        task_acks_late=False,
        # One task at a time per process: a GPU worker must not reserve a second job it cannot start,
        # and a busy worker fetches no message at all (a run_job waits in Redis for a free worker).
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=placement_enabled(),
        # Each node also consumes its own queue, where placement wakes it (scheduling/placement.py).
        worker_direct=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule=beat_schedule(settings.reap_interval_s, settings.webhook_sweep_interval_s),
        # Interval schedules need no state across restarts; `trainforge worker --beat` may pass another.
        beat_schedule_filename=os.path.join(tempfile.gettempdir(), f"trainforge-beat-{os.getuid()}"),
    )
    return app


app = create_app()

# The tasks register on `app` when imported, the worker's start/stop hooks (fork server, startup
# reap) on Celery's signals; they import `app` from here, so they come after it.
from worker import lifecycle, tasks, webhook_tasks  # noqa: E402,F401
