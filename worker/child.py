"""The training child: build the job's trainer, bridge its callbacks to events, train, report the outcome.

Runs forked from the warm fork server (`run(job_id)`) or as `python -m worker.child JOB_ID` (torchrun
for several GPUs). stdout/stderr are the job's train.log. Exit code 0 means train() returned (also
after a stop request); the outcome file tells why it ended and, on an error, "Type: message" for the
job's error field while the full traceback goes to the log.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select

from trainforge.db.models import Job
from trainforge.db.session import dispose_engines, session_scope
from trainforge.pubsub import get_redis, reset_clients
from trainforge.registry import builtin_trainers, module_allowed
from trainforge.settings import get_settings
from worker.bridge import EventBridge
from worker.emitter import Emitter
from worker.outcome import Outcome, write_outcome
from worker.resume import checkpoint_summary, reemit_checkpoint_epoch

log = logging.getLogger("trainforge.child")


class TrainerLoadError(RuntimeError):
    """The job's trainer class cannot be imported or is not allowed."""


def load_trainer(ref: str, allowed_modules: list[str]) -> type:
    """Import the trainer class named by "module:Class" (built-ins, or modules under an allowed prefix)."""
    module_name, _, qualname = ref.partition(":")
    if ref not in builtin_trainers().values() and not module_allowed(module_name, allowed_modules):
        raise TrainerLoadError(
            f"trainer module {module_name!r} is no longer allowed (see TRAINFORGE_TRAINER_MODULES)"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise TrainerLoadError(f"cannot load trainer '{ref}': {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, type):
        raise TrainerLoadError(f"trainer '{ref}' is not a class")
    return obj


def run_overrides(overrides: dict[str, Any], artifacts_dir: Path, job_id: str) -> tuple[dict[str, Any], bool]:
    """Return the overrides the trainer gets (run dir <artifacts_dir>/<job_id>) and whether it resumes."""
    # The supervisor decides once for every rank (a rank must not see a last.pt another rank just wrote).
    decided = os.environ.get("TRAINFORGE_RESUME")
    resume = (
        decided == "1" if decided is not None else (artifacts_dir / job_id / "weights" / "last.pt").is_file()
    )
    full = {**overrides, "project": str(artifacts_dir), "name": job_id, "exist_ok": True}
    if resume:
        full["resume"] = True
    return full, resume


def watch_supervisor() -> None:
    """Kill this process group if the supervisor goes away (nobody would record or stop this run)."""
    fd = os.environ.get("TRAINFORGE_SUPERVISOR_FD")
    pid = os.environ.get("TRAINFORGE_SUPERVISOR_PID")
    if fd:
        watch: Callable[[], None] = partial(_wait_eof, socket.socket(fileno=int(fd)))
    elif pid:
        watch = partial(_wait_pid, int(pid))
    else:
        return
    threading.Thread(target=watch, name="trainforge-supervisor-watch", daemon=True).start()


def _wait_eof(conn: socket.socket) -> None:
    """Block until the supervisor's end of the connection closes, then kill the group."""
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass
    _orphaned()


def _wait_pid(pid: int) -> None:
    """Poll until the supervisor process is gone, then kill the group."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        time.sleep(1.0)
    _orphaned()


def _orphaned() -> None:
    """Log and kill the whole group at once; the job is resumed from last.pt by another worker."""
    print("trainforge: the supervising worker is gone; stopping this run", file=sys.stderr, flush=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def run(job_id: str) -> int:
    """Train job `job_id`; return the process exit code."""
    timings = {"child_start": time.time()}
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Connections inherited from the fork server must not be shared with it.
    dispose_engines()
    reset_clients()
    watch_supervisor()
    settings = get_settings()
    artifacts_dir = Path(settings.artifacts_dir)
    run_dir = artifacts_dir / job_id
    rank = int(os.environ.get("RANK", "0"))
    attempt = int(os.environ.get("TRAINFORGE_ATTEMPT", "1"))
    emitter = Emitter(job_id) if rank == 0 else None
    bridge = EventBridge(emitter, run_dir, attempt) if emitter else None
    outcome = Outcome()
    try:
        outcome = _train(job_id, settings.trainer_modules, artifacts_dir, bridge, timings)
        code = 0
    except BaseException as exc:  # also KeyboardInterrupt/SystemExit: the job must learn why it ended
        traceback.print_exc()
        outcome = Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
        code = 1
    finally:
        if emitter is not None:
            emitter.close()
    if bridge is not None and bridge.first_batch_at is not None:
        timings["first_batch"] = bridge.first_batch_at
    outcome.timings = timings
    if rank == 0:
        write_outcome(run_dir, outcome)
    return code


def _train(
    job_id: str,
    allowed_modules: list[str],
    artifacts_dir: Path,
    bridge: EventBridge | None,
    timings: dict[str, float],
) -> Outcome:
    """Build the trainer, attach the bridge, resume if a checkpoint exists, train; return the outcome."""
    with session_scope() as session:
        row = session.execute(select(Job.trainer_ref, Job.overrides).where(Job.id == job_id)).one()
    _warm_redis()
    trainer_cls = load_trainer(row.trainer_ref, allowed_modules)
    overrides, resume = run_overrides(dict(row.overrides or {}), artifacts_dir, job_id)
    log.info("job %s: %s with %s", job_id, row.trainer_ref, overrides)
    timings["trainer_loaded"] = time.time()
    if resume:
        done = _finished_before(artifacts_dir / job_id, bridge)
        if done is not None:
            return done
    trainer = trainer_cls(overrides=overrides)
    if bridge is not None:
        bridge.attach(trainer)
        if resume:
            reemit_checkpoint_epoch(bridge, trainer, artifacts_dir / job_id / "weights" / "last.pt")
    timings["trainer_built"] = time.time()
    trainer.train()
    paths = bridge.paths(trainer) if bridge is not None else {}
    return Outcome(
        ok=True,
        stop_reason=getattr(trainer, "stop_reason", None),
        epoch=None if getattr(trainer, "epoch", None) is None else int(trainer.epoch) + 1,
        epochs=getattr(trainer, "epochs", None),
        metrics=_plain_metrics(getattr(trainer, "metrics", None)),
        best=paths.get("best"),
        last=paths.get("last"),
    )


def _finished_before(run_dir: Path, bridge: EventBridge | None) -> Outcome | None:
    """Return the outcome of a run whose every epoch was saved before its worker died, else None.

    Resuming it would have nothing left to train (the engine refuses that), yet the job is done:
    re-emit its last epoch's events (deduplicated) and report success.
    """
    from types import SimpleNamespace

    last = run_dir / "weights" / "last.pt"
    summary = checkpoint_summary(last)
    if not summary or not summary.get("epochs") or summary["epoch"] < summary["epochs"]:
        return None
    log.info("%s holds all %d epochs: nothing to resume, the run is complete", last, summary["epochs"])
    finished = SimpleNamespace(best=last.with_name("best.pt"), last=last, epochs=summary["epochs"])
    paths = {}
    if bridge is not None:
        reemit_checkpoint_epoch(bridge, finished, last)
        paths = bridge.paths(finished)
    return Outcome(
        ok=True,
        epoch=summary["epoch"],
        epochs=summary["epochs"],
        metrics=summary.get("metrics"),
        best=paths.get("best"),
        last=paths.get("last"),
    )


def _warm_redis() -> None:
    """Open the Redis connection now, so the first event does not pay for it."""
    with contextlib.suppress(Exception):  # events still go to the DB without Redis
        get_redis().ping()


def _plain_metrics(metrics: Any) -> dict[str, Any] | None:
    """Return the trainer's metrics as plain JSON-able values."""
    from worker.bridge import plain

    return plain(dict(metrics)) if metrics else None


def main(argv: list[str] | None = None) -> int:
    """Run the child as a fresh process: `python -m worker.child JOB_ID`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m worker.child JOB_ID", file=sys.stderr)
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
