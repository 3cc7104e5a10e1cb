"""Bounds on what a tenant submits and runs: queues, job counts, GPUs and the amount of work asked.

    at submit (create_job):  queue in the tenant's queues, gpus <= max_gpus_per_job, every bounded
                             override (the trainer's defaults included), synthetic set sizes, then
                             the tenant's row locked and its waiting jobs counted (max_queued_jobs)
    at take (supervisor):    the tenant's row locked and its running jobs counted (max_running_jobs);
                             a job over the limit stays queued and is sent again when a run ends
    at run time:             job_time_limit_s, job_disk_quota_bytes, job_log_max_bytes (worker/)

Every refusal is an Invalid (422) naming the bound, the value and what to do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainer_engine.cfg import ConfigError, TrainArgs, get_cfg
from trainforge.db.models import Job
from trainforge.errors import Invalid
from trainforge.jobs.lease import send_run_job
from trainforge.schemas import JobCreate
from trainforge.settings import Settings
from trainforge.tenant_limits import Limits, count_jobs, limits_for, lock_tenant
from trainforge.vocab import LEASED, WAITING

# The engine's synthetic sets and their defaults (tests check them against the engine's specs).
SYNTHETIC_DEFAULTS: dict[str, dict[str, int]] = {
    "synthetic:classify": {"train": 512, "val": 128, "size": 32},
    "synthetic:shapes": {"train": 1000, "val": 200, "size": 128},
}
# Override key -> the limit that bounds it from above.
UPPER_BOUNDS = {
    "epochs": "max_epochs",
    "imgsz": "max_imgsz",
    "batch": "max_batch",
    "time": "max_time_h",
    "world_size": "max_world_size",
}


def check_submission(
    session: Session, tenant_id: str, body: JobCreate, task: str | None, settings: Settings
) -> None:
    """Refuse a job that breaks one of the tenant's limits (Invalid); lock the tenant for the insert.

    Call after the overrides were validated and right before inserting the job: the tenant's row
    stays locked until the request commits, so concurrent submits count each other's jobs.
    """
    limits = limits_for(session, tenant_id, settings)
    check_resources(body, limits)
    check_overrides(body.overrides, task, limits)
    if limits.max_queued_jobs is not None:
        lock_tenant(session, tenant_id)
        waiting = count_jobs(session, tenant_id, WAITING)
        if waiting >= limits.max_queued_jobs:
            raise Invalid(
                f"tenant limit: {waiting} jobs waiting (max_queued_jobs {limits.max_queued_jobs}); "
                "wait for some to start or cancel one",
                key="max_queued_jobs",
            )


def check_resources(body: JobCreate, limits: Limits) -> None:
    """Refuse a queue the tenant may not use and more GPUs than a job may have."""
    queue = body.resources.queue
    if not limits.queues:
        raise Invalid(
            f"resources.queue {queue!r}: no job queue is open to you (your queues are no longer in "
            "TRAINFORGE_JOB_QUEUES); ask the operator to set yours with `trainforge tenant set`",
            key="resources.queue",
        )
    if queue not in limits.queues:
        raise Invalid(
            f"resources.queue {queue!r} is not a job queue you may use; "
            f"use one of: {', '.join(limits.queues)}",
            key="resources.queue",
        )
    gpus = body.resources.gpus
    if limits.max_gpus_per_job is not None and gpus > limits.max_gpus_per_job:
        raise Invalid(
            f"resources.gpus={gpus} is over the limit max_gpus_per_job={limits.max_gpus_per_job}; "
            "ask for fewer",
            key="resources.gpus",
        )


def check_overrides(overrides: dict[str, Any], task: str | None, limits: Limits) -> None:
    """Refuse overrides (or the defaults they leave) that ask for more work than the limits allow."""
    try:
        cfg = get_cfg(overrides=overrides, task=task)
    except (ConfigError, TypeError, ValueError):
        return  # validate_overrides has refused these already, with its own message
    for key, limit in UPPER_BOUNDS.items():
        value, bound = getattr(cfg, key), getattr(limits, limit)
        if value is not None and bound is not None and value > bound:
            raise Invalid(
                f"overrides.{key}={_num(value)}{_given(key, overrides)} is over the limit "
                f"{limit}={_num(bound)}; lower it",
                key=key,
            )
    period = cfg.save_period
    if limits.min_save_period is not None and 0 < period < limits.min_save_period:
        raise Invalid(
            f"overrides.save_period={period} is under the limit min_save_period={limits.min_save_period}; "
            f"save every {limits.min_save_period} epochs or more, or -1 for last.pt and best.pt only",
            key="save_period",
        )
    check_synthetic(cfg, limits)


def _num(value: float) -> str:
    """Write a number as users typed it: 1000000000, not 1e+09; 0.5, not 0.500000."""
    return str(value) if isinstance(value, int) else f"{value:.10g}"


def _given(key: str, overrides: dict[str, Any]) -> str:
    """Say when a bounded value is the trainer's default rather than the user's."""
    return "" if key in overrides else " (the default)"


def check_synthetic(cfg: TrainArgs, limits: Limits) -> None:
    """Refuse a synthetic data set larger than max_synthetic_images or max_synthetic_size."""
    data = cfg.data
    if not isinstance(data, str):
        return
    name, _, query = data.partition("?")
    defaults = SYNTHETIC_DEFAULTS.get(name)
    if defaults is None:
        return
    values = dict(defaults)
    for key, raw in parse_qsl(query, keep_blank_values=True):
        if key in values:
            try:
                values[key] = int(raw)
            except ValueError:
                raise Invalid(
                    f"overrides.data: {name} option {key}={raw!r} must be an integer", key="data"
                ) from None
    images = values["train"] + values["val"]
    if limits.max_synthetic_images is not None and images > limits.max_synthetic_images:
        raise Invalid(
            f"overrides.data: {name} train+val={images} images is over the limit "
            f"max_synthetic_images={limits.max_synthetic_images}; ask for fewer",
            key="data",
        )
    if limits.max_synthetic_size is not None and values["size"] > limits.max_synthetic_size:
        raise Invalid(
            f"overrides.data: {name} size={values['size']} is over the limit "
            f"max_synthetic_size={limits.max_synthetic_size}; ask for smaller images",
            key="data",
        )


def running_refusal(session: Session, tenant_id: str, limits: Limits) -> str | None:
    """Return why the tenant may not start another run now (max_running_jobs), or None.

    Locks the tenant's row when there is a limit, so two workers cannot both take the last slot;
    call it in the transaction that takes the lease.
    """
    bound = limits.max_running_jobs
    if bound is None:
        return None
    lock_tenant(session, tenant_id)
    running = count_jobs(session, tenant_id, LEASED)
    if running >= bound:
        return f"tenant limit: {running} jobs running (max {bound})"
    return None


def wake_waiting(session: Session, tenant_id: str, settings: Settings) -> list[str]:
    """Send run_job again for the tenant's oldest waiting jobs that a free running slot can take.

    A job refused for max_running_jobs stays queued without a message; the end of one of the
    tenant's runs is what frees a slot, so that is when its next jobs are sent.
    """
    bound = limits_for(session, tenant_id, settings).max_running_jobs
    if bound is None:
        return []
    free = max(bound - count_jobs(session, tenant_id, LEASED), 0)
    rows = session.execute(
        select(Job.id, Job.resources)
        .where(Job.tenant_id == tenant_id, Job.status.in_([s.value for s in WAITING]))
        .order_by(Job.priority.desc(), Job.created_at)
        .limit(free)
    ).all()
    for job_id, resources in rows:
        send_run_job(session, job_id, resources)
    return [job_id for job_id, _ in rows]
