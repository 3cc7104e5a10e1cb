"""Worker start and stop hooks: the warm fork server, registration, the startup reap, a clean shutdown.

A worker that consumes a job queue starts one fork server (worker.zygote) in its main process
when it starts and registers its inventory in the workers table (worker.registration), reaps
stale leases and re-sends waiting jobs once it is ready, and on shutdown asks every training
child to stop at a batch boundary (their jobs are resumed elsewhere from last.pt) and removes
its row.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import signals

from trainforge.db.session import dispose_engines
from trainforge.pubsub import reset_clients
from worker import launcher
from worker.registration import Registration, consumed_queues, job_queues
from worker.zygote import ZygoteClient

log = logging.getLogger(__name__)

# Set to "0" to start every training child as a fresh interpreter (slower; for comparison and debugging).
FORK_SERVER_ENV = "TRAINFORGE_FORK_SERVER"

_main_pid: int | None = None
_registration: Registration | None = None


def pool_parent_pid() -> int | None:
    """Return the worker's main pid when running in a pool process (to notice it dying), else None."""
    if _main_pid is None or _main_pid == os.getpid():
        return None
    return _main_pid


def consumes_jobs(worker: Any) -> bool:
    """Return whether the worker consumes one of the job queues (TRAINFORGE_JOB_QUEUES)."""
    from trainforge.settings import get_settings

    try:
        consumed = worker.app.amqp.queues.consume_from
    except AttributeError:
        return False
    return any(name in consumed for name in get_settings().job_queues)


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """Remember the main pid and start the fork server (the worker is ready once it has preloaded)."""
    global _main_pid, _registration
    _main_pid = os.getpid()
    if not consumes_jobs(sender):
        return
    zygote = None
    if os.environ.get(FORK_SERVER_ENV, "1") != "0":
        zygote = ZygoteClient()
        zygote.start()
    # Registered before the pool starts, so the first run_job already places by the inventory; the
    # device probe runs while the fork server preloads.
    _registration = Registration(
        sender.hostname, job_queues(consumed_queues(sender)), int(sender.concurrency)
    )
    _registration.register()
    if zygote is not None:
        # Take no job before children can start warm: a job waiting on a cold fork server would not
        # heartbeat meanwhile. If the server fails, children start as fresh interpreters instead.
        if zygote.wait_ready(timeout=300):
            launcher.set_zygote(zygote)
            log.info("fork server ready (pid %d)", zygote.process.pid if zygote.process else -1)
        else:
            log.error("fork server did not start; training children start as fresh interpreters")
            zygote.stop()


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Reap stale leases and re-send waiting jobs once, then drop the main process's connections."""
    if not consumes_jobs(sender):
        return
    from worker import reaper

    if _registration is not None:
        _registration.start_heartbeat()
    try:
        reaped = reaper.reap()
        resent = reaper.resend_waiting()
        log.info("startup: %d stale job(s) reaped, %d waiting job(s) re-sent", len(reaped), len(resent))
    except Exception:  # a worker must start even when the database is briefly away
        log.exception("startup reap failed")
    finally:
        # Pool processes forked later must not share these connections.
        dispose_engines()
        reset_clients()


@signals.worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    """Deregister, so no slot takes another job; ask every training child to stop and save last.pt."""
    if _registration is not None and _main_pid == os.getpid():
        _registration.stop()
    zygote = launcher.get_zygote()
    if zygote is not None:
        log.info("shutting down: asking every training child to stop and save last.pt")
        zygote.terminate_children()


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    """Stop the fork server and remove the worker's row."""
    if _main_pid != os.getpid():
        return
    zygote = launcher.get_zygote()
    if zygote is not None:
        zygote.stop()
    if _registration is not None:
        _registration.stop()
