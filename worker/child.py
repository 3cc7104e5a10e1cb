"""The training child: build the run's trainer, bridge its callbacks to events, train, report the outcome.

It learns its run once, from the RunSpec its supervisor built: forked by the warm fork server
(`run_forked(spec)`), or as `python -m worker.child SPEC_FILE` (also under torchrun, one process per
rank). stdout/stderr are the job's train.log. Exit code 0 means train() returned (also after a stop
request); the outcome file tells why it ended and, on an error, "Type: message" for the job's error
field while the full traceback goes to the log.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any

from sqlalchemy import text

from trainer_engine.data.cache import LABEL_CACHE_ENV
from trainforge.db.session import dispose_engines, session_scope
from trainforge.jobs.fence import Fence
from trainforge.pubsub import get_redis, reset_clients
from worker.bridge import EventBridge, plain
from worker.emitter import Emitter
from worker.outcome import Outcome, write_outcome
from worker.resume import reemit_checkpoint_epoch, replay_spools
from worker.runspec import RunSpec
from worker.zygote import orphaned

log = logging.getLogger("trainforge.child")


class TrainerLoadError(RuntimeError):
    """The run's trainer class cannot be imported."""


def load_trainer(ref: str) -> type:
    """Import the trainer class named by "module:Class" (the supervisor checked that it may run)."""
    module_name, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise TrainerLoadError(f"cannot load trainer '{ref}': {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, type):
        raise TrainerLoadError(f"trainer '{ref}' is not a class")
    return obj


def watch_supervisor(pid: int) -> None:
    """Kill this process group once process `pid` is gone (nobody would record or stop this run)."""
    threading.Thread(target=_wait_pid, args=(pid,), name="trainforge-supervisor-watch", daemon=True).start()


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
    orphaned()


def run_forked(spec: dict[str, Any]) -> int:
    """Train the run the fork request describes (the fork server watches the supervisor for us)."""
    return run(RunSpec.from_dict(spec))


def run(spec: RunSpec) -> int:
    """Train the run `spec` describes; return the process exit code."""
    timings = {"child_start": time.time()}
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Connections inherited from the fork server must not be shared with it.
    dispose_engines()
    reset_clients()
    # torchrun numbers its processes; only rank 0 reports.
    rank = int(os.environ.get("RANK", "0"))
    emitter = None
    if rank == 0:
        fence = Fence(spec.lease_owner, spec.attempt)
        emitter = Emitter(spec.job_id, fence, spec.run_dir.spool(spec.attempt))
    bridge = EventBridge(emitter, spec.run_dir, spec.attempt) if emitter else None
    outcome = Outcome()
    try:
        outcome = _train(spec, bridge, timings)
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
    if emitter is not None and emitter.fenced:
        # The job is another attempt's now: its outcome file is that attempt's to write.
        log.warning("job %s: attempt %d lost its lease; it leaves no outcome", spec.job_id, spec.attempt)
    elif rank == 0:
        write_outcome(spec.run_dir, outcome)
    return code


def _train(spec: RunSpec, bridge: EventBridge | None, timings: dict[str, float]) -> Outcome:
    """Build the trainer, attach the bridge, re-emit the checkpoint epoch on resume, train; report."""
    _warm_connections()
    if spec.label_cache_dir:
        os.environ[LABEL_CACHE_ENV] = spec.label_cache_dir
    trainer_cls = load_trainer(spec.trainer_ref)
    log.info("job %s: %s with %s", spec.job_id, spec.trainer_ref, spec.overrides)
    timings["trainer_loaded"] = time.time()
    trainer = trainer_cls(overrides=dict(spec.overrides))
    if bridge is not None:
        bridge.attach(trainer)
        replay_spools(bridge, spec.attempt, spec.run_dir.last if spec.resume else None)
        if spec.resume:
            reemit_checkpoint_epoch(bridge, trainer, spec.run_dir.last)
    timings["trainer_built"] = time.time()
    trainer.train()
    paths = bridge.paths(trainer) if bridge is not None else {}
    metrics = getattr(trainer, "metrics", None)
    return Outcome(
        ok=True,
        stop_reason=getattr(trainer, "stop_reason", None),
        epoch=None if getattr(trainer, "epoch", None) is None else int(trainer.epoch) + 1,
        epochs=getattr(trainer, "epochs", None),
        metrics=plain(dict(metrics)) if metrics else None,
        best=paths.get("best"),
        last=paths.get("last"),
    )


def _warm_connections() -> None:
    """Open the database and Redis connections now, so the first event does not pay for them."""
    # The emitter retries and reports a database that is away; Redis is optional for events.
    with contextlib.suppress(Exception), session_scope() as session:
        session.execute(text("SELECT 1"))
    with contextlib.suppress(Exception):
        get_redis().ping()


def main(argv: list[str] | None = None) -> int:
    """Run the child as a fresh process: `python -m worker.child SPEC_FILE`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m worker.child SPEC_FILE", file=sys.stderr)
        return 2
    spec = RunSpec.read(args[0])
    watch_supervisor(spec.supervisor_pid)
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
