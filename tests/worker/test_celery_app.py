"""The worker's Celery app: importing it registers every task by its explicit name, without torch."""

from __future__ import annotations

import subprocess
import sys

from trainforge import queue


def test_importing_the_app_registers_every_task_and_loads_no_torch():
    code = (
        "import sys; from worker.celery_app import app; "
        "print(sorted(t for t in app.tasks if t.startswith('trainforge.'))); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names = [
        queue.RUN_JOB,
        queue.REAP_JOBS,
        queue.DELIVER_WEBHOOK,
        queue.DELIVER_WEBHOOKS,
        queue.SWEEP_WEBHOOKS,
    ]
    expected = sorted([*names, queue.VALIDATE_DATASET, queue.VALIDATE_MODEL])
    assert out.splitlines() == [str(expected), "False"]


def test_the_schedule_runs_the_reaper_and_the_webhook_sweep():
    from worker.celery_app import app

    schedule = app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {queue.REAP_JOBS, queue.SWEEP_WEBHOOKS}
    assert app.conf.task_routes[queue.REAP_JOBS] == {"queue": queue.DEFAULT_QUEUE}
