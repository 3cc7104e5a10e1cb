"""The run_job supervisor: take the job's lease, start the training child, watch it, record how it ended.

    take_lease (queued|retrying → running, job.started)      or drop the delivery: someone else has it,
                                                              or the tenant runs max_running_jobs already
        (on a registered worker: of the job placement names, trainforge/scheduling/placement.py)
    resolve the job's data/model/pretrained for its tenant    (refused now → failed with the reason)
    build the RunSpec (attempt, overrides, resume or not, world size, run folder) and start the child
    with it (own process group)
    heartbeat every settings.heartbeat_interval_s on its own thread (a hung database never stalls
    the watch), and until the child exits, every POLL_S:
        cancel notice on Redis, or status "cancelling" at a heartbeat → SIGTERM the group
        lease lost at a heartbeat                                 → SIGKILL, record nothing
        no heartbeat succeeded for half the lease timeout         → SIGTERM, SIGKILL a quarter later
        past the time limit                                       → SIGTERM the group
        run folder over its disk quota (train.log over its cap: cut it) → SIGTERM the group
        SIGTERM sent more than the grace period ago               → SIGKILL the group
    record: succeeded | failed (trainer's message) | cancelled | retrying (stopped from outside, or
    fenced), failed instead of retrying once the job ran max_attempts times

Fencing: the reaper hands a job on once its heartbeat is `lease_timeout_s` old on the database's
clock; a supervisor that cannot heartbeat stops its child by three quarters of that, on its own
clock, so two runs of one job never train at once. Only the lease holder records an outcome;
every write is one UPDATE guarded by lease owner and attempt, plus its event.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainforge import references
from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.errors import ServiceError
from trainforge.jobs import lease
from trainforge.jobs import limits as job_limits
from trainforge.registry import builtin_trainers, module_allowed
from trainforge.rundir import RunDir
from trainforge.scheduling import placement
from trainforge.settings import Settings, get_settings
from trainforge.tenant_limits import Limits, limits_for
from trainforge.vocab import JobStatus
from worker import inputs, launcher
from worker.cancel_watch import CancelWatch
from worker.outcome import Outcome, clear_outcome, read_outcome
from worker.runspec import RunSpec
from worker.usage import UsageWatch

log = logging.getLogger(__name__)

POLL_S = 0.2
# How often the run folder's size is summed (and train.log measured) while the child trains.
USAGE_CHECK_S = 1.0

# Why the supervisor stopped the child (None: it ended on its own).
CANCEL, TIME, DISK, LOST, ORPHANED, FENCED = "cancel", "time", "disk", "lease lost", "worker gone", "fenced"


def new_owner() -> str:
    """Return a lease-owner id unique to this run: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def orphaned(parent_pid: int | None) -> bool:
    """Return whether the worker's main process `parent_pid` is gone (a pool process outlives it)."""
    return parent_pid is not None and os.getppid() != parent_pid


def time_limit_s(overrides: dict[str, Any], job_limit_s: float | None) -> float | None:
    """Return the wall-clock limit of a run in seconds, or None for no limit.

    The trainer stops itself after `time` hours; the margin on top only catches a hung run.
    The job time limit (`job_time_limit_s`, the operator's or the tenant's) applies too; the lower wins.
    """
    limits = []
    if job_limit_s:
        limits.append(job_limit_s)
    hours = overrides.get("time")
    if hours:
        limits.append(float(hours) * 3600 * 1.1 + 60)
    return min(limits) if limits else None


def refuse_trainer(ref: str, allowed_modules: list[str]) -> str | None:
    """Return why trainer `ref` may no longer run (the operator narrowed the allowed modules), or None."""
    module = ref.partition(":")[0]
    if ref in builtin_trainers().values() or module_allowed(module, allowed_modules):
        return None
    return f"trainer module {module!r} is no longer allowed (see TRAINFORGE_TRAINER_MODULES)"


def describe_exit(code: int) -> str:
    """Say in words how the training process ended, for a job that left no error of its own."""
    if code == launcher.UNKNOWN_EXIT:
        return "the training process ended without reporting an exit status (see the job's log)"
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"the training process was killed by {name}{hint}"
    return f"the training process exited with code {code} (see the job's log)"


@dataclass(frozen=True)
class Verdict:
    """The status a run ends in and the error recorded with it."""

    status: JobStatus
    error: str | None = None


def decide(
    code: int, outcome: Outcome, reason: str | None, limit_s: float | None = None, why: str | None = None
) -> Verdict:
    """Decide how a run ended from the child's exit code, its outcome file and why we stopped it.

    `why` is the supervisor's own account of a stop for exceeding a limit (the disk quota).
    """
    if code == launcher.UNKNOWN_EXIT and outcome.ok:
        code = 0  # the fork server vanished, but the child reported that train() returned
    finished = code == 0 and outcome.ok and outcome.stop_reason != "signal"
    if reason == CANCEL:
        # Training that completed before it noticed the cancel keeps its result.
        completed = finished and outcome.stop_reason is None
        return Verdict(JobStatus.SUCCEEDED) if completed else Verdict(JobStatus.CANCELLED)
    if reason == FENCED:
        # The database stayed away too long to keep the lease: resume elsewhere from last.pt.
        completed = finished and outcome.stop_reason is None
        return Verdict(JobStatus.SUCCEEDED) if completed else Verdict(JobStatus.RETRYING)
    if reason == TIME:
        if finished and outcome.stop_reason is None:
            return Verdict(JobStatus.SUCCEEDED)
        limit = f" of {limit_s:g} s" if limit_s else ""
        return Verdict(JobStatus.FAILED, f"the job ran past its time limit{limit} and was stopped")
    if reason == DISK:
        if finished and outcome.stop_reason is None:
            return Verdict(JobStatus.SUCCEEDED)
        return Verdict(JobStatus.FAILED, why or "the job went over its disk quota and was stopped")
    # Stopped by a SIGTERM nobody here sent (the worker is shutting down): resume it elsewhere. A child
    # still setting up has no handler yet, so the signal ends it outright.
    if (code == 0 and outcome.ok and outcome.stop_reason == "signal") or code == -signal.SIGTERM:
        return Verdict(JobStatus.RETRYING)
    if code == 0 and outcome.ok:
        return Verdict(JobStatus.SUCCEEDED)
    return Verdict(JobStatus.FAILED, outcome.error or describe_exit(code))


class Heartbeat:
    """Renew one run's lease every interval on a thread of its own; the watch loop reads the result."""

    def __init__(self, job_id: str, owner: str, attempt: int, interval_s: float, taken_at: float) -> None:
        self.job_id, self.owner, self.attempt, self.interval_s = job_id, owner, attempt, interval_s
        # When the last successful beat was sent (monotonic); at first, when the lease was taken.
        self.ok_at = taken_at
        self.status: str | None = JobStatus.RUNNING.value
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trainforge-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        """Beat at once (a cancel may predate our subscription), then every interval, until lost or closed."""
        while not self._stop.is_set():
            sent = time.monotonic()  # counted from before the UPDATE: the lease can be no newer
            try:
                with session_scope() as session:
                    status = lease.heartbeat(session, self.job_id, self.owner, self.attempt)
            except Exception as exc:  # the database is away; the watch loop fences if it stays away
                log.warning("job %s: heartbeat failed: %s", self.job_id, exc)
            else:
                if status is None:
                    self.lost = True
                    return
                self.status, self.ok_at = status, sent
            self._stop.wait(self.interval_s)

    def close(self) -> None:
        """Stop beating."""
        self._stop.set()


class Supervisor:
    """Run one job's training child to its end and record the outcome."""

    def __init__(
        self,
        job_id: str | None,
        settings: Settings | None = None,
        *,
        worker_id: str | None = None,
        parent_pid: int | None = None,
        time_limit_s: float | None = None,
        stop_grace_s: float | None = None,
    ) -> None:
        # The job the message named; a registered worker runs the one placement gives it instead.
        self.job_id = job_id or ""
        self.worker_id = worker_id
        self.settings = settings or get_settings()
        self.owner = new_owner()
        self.parent_pid = parent_pid
        self.limit_s = time_limit_s
        self.grace_s = stop_grace_s or self.settings.stop_grace_s
        self.run_dir = RunDir.of(self.settings.artifacts_dir, self.job_id)
        self.reason: str | None = None
        self.why: str | None = None
        self.tenant_id: str | None = None
        self.limits: Limits | None = None
        # Why the tenant's limits keep the job waiting (max_running_jobs), when they do.
        self.held: str | None = None
        self.attempt = 0
        self._term_at: float | None = None
        self._kill_after_s = self.grace_s
        self._taken_at = time.monotonic()

    def run(self) -> str:
        """Supervise the job; return its final status, or why nothing was recorded."""
        spec = self._take()
        if spec is None and self.held is not None:
            log.info("job %s stays queued: %s", self.job_id, self.held)
            return "held"
        if spec is None:
            log.info("job %s not taken: it is not waiting or another worker holds its lease", self.job_id)
            return "dropped"
        if isinstance(spec, Verdict):
            return self._record_verdict(spec, Outcome(), None)
        if self.limit_s is None:
            self.limit_s = time_limit_s(spec.overrides, self.limits.job_time_limit_s if self.limits else None)
        refusal = refuse_trainer(spec.trainer_ref, self.settings.trainer_modules)
        if refusal is not None:
            return self._record_verdict(Verdict(JobStatus.FAILED, refusal), Outcome(), None)
        try:
            prepared = inputs.prepare(self.job_id, spec.overrides, self.settings)
        except inputs.InputError as exc:
            return self._record_verdict(Verdict(JobStatus.FAILED, str(exc)), Outcome(), None)
        try:
            return self._run_child(self._with_inputs(spec, prepared))
        finally:
            prepared.release()

    def _with_inputs(self, spec: RunSpec, prepared: inputs.Prepared) -> RunSpec:
        """Return the spec with local dataset/model paths; note in the job's log what was used."""
        if prepared.lines:
            self.run_dir.path.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir.log, "a") as log_file:
                log_file.writelines(f"trainforge: {line}\n" for line in prepared.lines)
        label_dir = str(inputs.worker_cache(self.settings).label_dir)
        return replace(spec, overrides=prepared.overrides, label_cache_dir=label_dir)

    def _run_child(self, spec: RunSpec) -> str:
        """Start the training child, watch it to its end and record the outcome."""
        clear_outcome(self.run_dir)
        try:
            child = launcher.start_child(spec)
        except Exception as exc:
            log.exception("job %s: starting the training process failed", self.job_id)
            return self._record_verdict(
                Verdict(JobStatus.FAILED, f"could not start the training process: {exc}"), Outcome(), None
            )
        log.info("job %s: attempt %d, training child pid %d", self.job_id, spec.attempt, child.pid)
        try:
            code = self._watch(child)
        finally:
            child.close()
        with contextlib.suppress(OSError):  # what the child wrote after the last check
            self._usage().cut_log()
        return self._record(code)

    def _take(self) -> RunSpec | Verdict | None:
        """Take the lease and describe the run it allows, or return None when the job is not ours.

        The child gets the job's file references as resolved here, for the job's tenant, never the
        values the tenant wrote; a reference that no longer resolves fails the job with the reason.
        """
        self._taken_at = time.monotonic()  # the lease can be no newer than this
        with session_scope() as session:
            job_id = self._claim(session)
            if job_id is None:
                return None
            self.job_id, self.run_dir = job_id, RunDir.of(self.settings.artifacts_dir, job_id)
            columns = (Job.trainer_ref, Job.overrides, Job.resources, Job.attempt, Job.tenant_id, Job.task)
            row = session.execute(select(*columns).where(Job.id == self.job_id)).one()
            self.attempt = int(row.attempt)  # every write of this run is fenced by it
            ctx = references.Context(session, row.tenant_id, self.settings, row.task)
            # dataset:/model: names are pinned to the versions recorded at submit before resolving.
            pinned = inputs.pin(session, self.job_id, dict(row.overrides or {}))
            try:
                overrides = references.resolve_overrides(ctx, pinned)
            except ServiceError as exc:
                return Verdict(JobStatus.FAILED, exc.detail)
        return RunSpec.build(
            job_id=self.job_id,
            attempt=int(row.attempt),
            lease_owner=self.owner,
            trainer_ref=row.trainer_ref,
            overrides=overrides,
            gpus=int((row.resources or {}).get("gpus") or 0),
            run_dir=self.run_dir,
        )

    def _claim(self, session: Session) -> str | None:
        """Take a lease: of the best job for this worker when it is registered, else of the named job."""
        if self.worker_id is not None and placement.is_registered(session, self.worker_id):
            return placement.take_next(session, self.worker_id, self.owner, admit=self._admit)
        if (
            self.job_id
            and self._admit(session, self.job_id)
            and lease.take_lease(session, self.job_id, self.owner)
        ):
            return self.job_id
        return None

    def _admit(self, session: Session, job_id: str) -> bool:
        """Return whether the job's tenant may start another run now; remember why not in `held`."""
        tenant_id = session.execute(select(Job.tenant_id).where(Job.id == job_id)).scalar()
        if tenant_id is None:
            return False
        limits = limits_for(session, tenant_id, self.settings)
        held = job_limits.running_refusal(session, tenant_id, limits)
        if held is not None:
            self.held = held
            return False
        self.tenant_id, self.limits = tenant_id, limits
        return True

    def _watch(self, child: launcher.Child) -> int:
        """Heartbeat and watch until the child exits; return its exit code."""
        cancel = CancelWatch(self.job_id)
        beats = Heartbeat(
            self.job_id, self.owner, self.attempt, self.settings.heartbeat_interval_s, self._taken_at
        )
        fence_s = self.settings.lease_timeout_s / 2
        usage = self._usage()
        started = time.monotonic()
        next_usage = started + USAGE_CHECK_S
        try:
            while True:
                code = child.wait(POLL_S)
                if code is not None:
                    return code
                now = time.monotonic()
                if beats.lost:
                    self._kill(child, LOST)
                elif now - beats.ok_at > fence_s:
                    # Another worker may get the job at the lease timeout: be gone well before then.
                    self._stop(
                        child, FENCED, kill_after_s=min(self.grace_s, self.settings.lease_timeout_s / 4)
                    )
                elif cancel.requested() or beats.status == JobStatus.CANCELLING:
                    self._stop(child, CANCEL)
                if self.limit_s is not None and now - started > self.limit_s:
                    self._stop(child, TIME)
                if now >= next_usage:
                    next_usage = now + USAGE_CHECK_S
                    self._check_usage(child, usage)
                if orphaned(self.parent_pid):
                    self._kill(child, ORPHANED)
                if self._term_at is not None and now - self._term_at > self._kill_after_s:
                    log.warning(
                        "job %s: no exit %.1f s after SIGTERM; sending SIGKILL",
                        self.job_id,
                        self._kill_after_s,
                    )
                    child.signal_group(signal.SIGKILL)
                    self._term_at = None
        finally:
            beats.close()
            cancel.close()

    def _usage(self) -> UsageWatch:
        """Return the watch of this run's disk quota and log cap."""
        limits = self.limits
        return UsageWatch(
            self.run_dir,
            disk_quota_bytes=limits.job_disk_quota_bytes if limits else None,
            log_max_bytes=limits.job_log_max_bytes if limits else None,
        )

    def _check_usage(self, child: launcher.Child, usage: UsageWatch) -> None:
        """Cut an over-long log; stop the child when its files are over the disk quota."""
        try:
            over = usage.check()
        except OSError as exc:  # a run folder on a flaky volume must not kill the supervisor
            log.warning("job %s: measuring the run folder failed: %s", self.job_id, exc)
            return
        if over is not None and self.reason is None:
            self.why = over
            self._stop(child, DISK)

    def _stop(self, child: launcher.Child, reason: str, kill_after_s: float | None = None) -> None:
        """Ask the child to stop at a batch boundary (SIGTERM to its group), once; SIGKILL after the grace."""
        if self.reason is None:
            self.reason = reason
            self._term_at = time.monotonic()
            self._kill_after_s = kill_after_s or self.grace_s
            log.warning("job %s: stopping the training child (%s)", self.job_id, reason)
            child.signal_group(signal.SIGTERM)

    def _kill(self, child: launcher.Child, reason: str) -> None:
        """Kill the child's group at once: someone else owns the job now, or nobody is listening."""
        if self.reason not in (LOST, ORPHANED):
            self.reason = reason
            log.warning("job %s: killing the training child (%s)", self.job_id, reason)
            child.signal_group(signal.SIGKILL)

    def _record(self, code: int) -> str:
        """Record the outcome of the run (unless the lease was lost) and return the status."""
        if self.reason in (LOST, ORPHANED):
            return self.reason
        outcome = read_outcome(self.run_dir) or Outcome()
        verdict = decide(code, outcome, self.reason, self.limit_s, self.why)
        log.info("job %s: child exited with %d → %s", self.job_id, code, verdict.status)
        return self._record_verdict(verdict, outcome, code)

    def _record_verdict(self, verdict: Verdict, outcome: Outcome, code: int | None) -> str:
        """Move the job to the verdict's status with its event (and re-send it when retrying)."""
        if verdict.status is JobStatus.RETRYING and self.attempt >= self.settings.max_attempts:
            verdict = Verdict(
                JobStatus.FAILED,
                f"the run was stopped from outside ({_stop_reason(self.reason) or 'signal'}) and the job "
                f"already ran {self.attempt} times (TRAINFORGE_MAX_ATTEMPTS={self.settings.max_attempts})",
            )
        # A stop for a limit is the supervisor's, though the child saw only a signal.
        ours = _stop_reason(self.reason) if self.reason in (TIME, DISK) else None
        values: dict[str, Any] = {"stop_reason": ours or outcome.stop_reason or _stop_reason(self.reason)}
        values.update({k: v for k, v in _progress_values(outcome).items() if v is not None})
        data: dict[str, Any] = {
            "exit_code": code,
            "stop_reason": values["stop_reason"],
            "epoch": outcome.epoch,
            "epochs": outcome.epochs,
            "metrics": outcome.metrics,
            "best": outcome.best,
            "last": outcome.last,
        }
        if verdict.error:
            values["error"] = data["error"] = verdict.error
        try:
            with session_scope() as session:
                moved = lease.release_lease(
                    session,
                    self.job_id,
                    self.owner,
                    verdict.status,
                    values=values,
                    data=data,
                    attempt=self.attempt,
                )
                if moved and verdict.status is JobStatus.RETRYING:
                    resources = session.execute(select(Job.resources).where(Job.id == self.job_id)).scalar()
                    lease.send_run_job(session, self.job_id, resources)
                if moved and self.tenant_id is not None:
                    job_limits.wake_waiting(session, self.tenant_id, self.settings)
        except Exception:
            if self.reason != FENCED:
                raise
            # The database is still away: the reaper hands the job on once the lease is stale.
            log.warning("job %s: fenced, and the outcome could not be recorded; the reaper will", self.job_id)
            return FENCED
        if not moved:
            log.warning("job %s: lease lost before recording %s", self.job_id, verdict.status)
            return LOST
        return str(verdict.status)


def _stop_reason(reason: str | None) -> str | None:
    """Return the stop_reason recorded when the child left none."""
    return {CANCEL: "cancelled", TIME: "time limit", DISK: "disk quota", FENCED: "lease fenced"}.get(
        reason or ""
    )


def _progress_values(outcome: Outcome) -> dict[str, Any]:
    """Return the job columns the final outcome updates."""
    return {
        "epoch": outcome.epoch,
        "epochs": outcome.epochs,
        "metrics": outcome.metrics,
        "best_path": outcome.best,
        "last_path": outcome.last,
    }
