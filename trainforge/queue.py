"""The Celery producer: task names, queues, and sending by name after commit.

The API never imports worker/ (nor torch): it only knows the task names (trainforge.vocab) and sends them
through a producer-only Celery app configured from settings.redis_url.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from trainforge.db.session import after_commit
from trainforge.settings import get_settings
from trainforge.vocab import (
    DEFAULT_QUEUE,
    DELIVER_WEBHOOK,
    DELIVER_WEBHOOKS,
    JOBS_QUEUE,
    REAP_JOBS,
    RUN_JOB,
    SWEEP_WEBHOOKS,
    VALIDATE_DATASET,
    VALIDATE_MODEL,
    WEBHOOKS_QUEUE,
)

log = logging.getLogger(__name__)

# The task and queue names live in trainforge.vocab; they are re-exported for the worker's `queue.X`.
__all__ = [
    "DEFAULT_QUEUE",
    "DELIVER_WEBHOOK",
    "DELIVER_WEBHOOKS",
    "JOBS_QUEUE",
    "REAP_JOBS",
    "RUN_JOB",
    "SWEEP_WEBHOOKS",
    "VALIDATE_DATASET",
    "VALIDATE_MODEL",
    "WEBHOOKS_QUEUE",
    "celery_config",
    "get_producer",
    "send",
    "send_after_commit",
]

TASK_QUEUES = {
    RUN_JOB: JOBS_QUEUE,
    DELIVER_WEBHOOK: WEBHOOKS_QUEUE,
    DELIVER_WEBHOOKS: WEBHOOKS_QUEUE,
    SWEEP_WEBHOOKS: WEBHOOKS_QUEUE,
    VALIDATE_DATASET: DEFAULT_QUEUE,
    VALIDATE_MODEL: DEFAULT_QUEUE,
}

_producers: dict[str, Celery] = {}
_lock = threading.Lock()


def celery_config(redis_url: str) -> dict[str, Any]:
    """Return the Celery settings shared by the producer and the worker app."""
    return {
        "broker_url": redis_url,
        "result_backend": None,
        "task_default_queue": DEFAULT_QUEUE,
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"socket_connect_timeout": 2},
        "task_ignore_result": True,
        # Fail fast when Redis is down: the job row is committed and the reaper re-sends run_job.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    }


def get_producer(redis_url: str | None = None) -> Celery:
    """Return the producer-only Celery app for `redis_url` (default: settings.redis_url)."""
    url = redis_url or get_settings().redis_url
    with _lock:
        app = _producers.get(url)
        if app is None:
            app = Celery("trainforge-producer", set_as_current=False)
            app.conf.update(celery_config(url))
            _producers[url] = app
        return app


def send(task_name: str, args: list[Any], queue: str | None = None) -> None:
    """Send `task_name` now; log and swallow broker errors (periodic sweeps recover lost sends)."""
    try:
        get_producer().send_task(task_name, args=args, queue=queue or TASK_QUEUES.get(task_name))
    except Exception as exc:  # kombu raises many types; the DB state lets sweeps resend
        log.warning("sending %s%r failed: %s", task_name, args, exc)


def send_after_commit(session: Session, task_name: str, args: list[Any], queue: str | None = None) -> None:
    """Send `task_name` with `args` once the session's transaction has committed."""
    after_commit(session, lambda: send(task_name, args, queue))
