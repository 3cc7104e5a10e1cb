"""Celery tasks for webhooks: thin wrappers that take a delivery id (or nothing) and call the dispatcher."""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from trainforge import queue
from trainforge.webhooks import dispatch
from worker.celery_app import app

log = logging.getLogger(__name__)


@signals.worker_process_init.connect
def warm_pool_process(**_: Any) -> None:
    """Warm each pool process at start: its first delivery otherwise paid ~0.5 s (DB connect, compiles)."""
    try:
        dispatch.warm()
    except Exception as exc:  # a database that is away now is retried by the first delivery itself
        log.warning("could not warm the webhook dispatcher: %s", exc)


@app.task(name=queue.DELIVER_WEBHOOK, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """Attempt one delivery now if it is due, not claimed and its receiver and tenant have a free slot."""
    return dispatch.deliver(delivery_id)


@app.task(name=queue.DELIVER_WEBHOOKS, ignore_result=True)
def deliver_webhooks(delivery_ids: list[str]) -> list[str]:
    """Attempt an event's deliveries together: one claim transaction, the POSTs at once, one record."""
    return dispatch.deliver_many(delivery_ids)


@app.task(name=queue.SWEEP_WEBHOOKS, ignore_result=True)
def sweep_webhooks() -> int:
    """Re-send every due delivery whose message may be lost; return how many were sent."""
    return dispatch.sweep()
