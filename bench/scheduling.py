"""Scheduling: placement decisions per second, and slot freeing → next job starting, against plain dispatch.

A backlog of `--jobs` jobs over 3 priorities and 2 queues (shuffled, created in one transaction) is
drained by 4 workers, one slot each: two serve both queues, one each serves a single queue.
Training is instant (InstantTrainer: one batch that does nothing), so what is measured is the
service: for each slot, the time from a job's end (finished_at) to that slot's next job starting
(started_at, when its lease was taken). The same backlog is drained twice in the same run:

- placement: the database names the job (highest priority the worker can run, then oldest);
- plain dispatch (TRAINFORGE_PLACEMENT=0, what the service did before placement): each run_job runs
  the job it carries, in the queue's FIFO order, with one message prefetched per pool process.

Priority inversion is counted from the stored times: a job started while a job of higher priority,
in a queue its worker serves, was still waiting. Placement must have none. bench/dispatch.py's
measurement (POST → lease taken, on an idle worker) is repeated on both stacks for reference.

Then placement decisions per second: `--jobs` waiting jobs drained by 4 threads calling
take_next for 4 registered workers (each decision: lock the worker, pick, lease, job.started).

Usage: python bench/scheduling.py [--jobs 500] [--idle-jobs 5]
Environment: BENCH_DATABASE_URL (default SQLite in a temp dir), BENCH_REDIS_URL (default embedded).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from dispatch import one_job  # noqa: E402
from support.stack import Stack, load_average  # noqa: E402

QUEUES = ("sched-a", "sched-b")
# The first also serves "jobs", where bench/dispatch.py's jobs go (after the backlog has drained).
WORKER_QUEUES = ["sched-a,sched-b,jobs", "sched-a,sched-b", "sched-a", "sched-b"]
PRIORITIES = (0, 1, 2)
INSTANT = "bench.scheduling:InstantTrainer"
OUT = HERE / "out" / "scheduling.json"


def _instant_trainer() -> type:
    """Build TickTrainer with one batch of no time (only the training child runs this)."""
    from tests.worker.trainers import TickTrainer

    class InstantTrainer(TickTrainer):
        """One epoch of one batch that does nothing."""

        def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
            super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
            self.batches, self.batch_s = 1, 0.0
            self.train_loader = range(1)

    return InstantTrainer


def __getattr__(name: str) -> Any:
    """Load InstantTrainer lazily, so this script itself starts without the engine."""
    if name == "InstantTrainer":
        return _instant_trainer()
    raise AttributeError(name)


def backlog(jobs: int, seed: int = 7) -> list[tuple[str, int]]:
    """Return (queue, priority) for each job, shuffled so submission order is not priority order."""
    rng = random.Random(seed)
    items = [(QUEUES[i % len(QUEUES)], PRIORITIES[i % len(PRIORITIES)]) for i in range(jobs)]
    rng.shuffle(items)
    return items


def submit_backlog(items: list[tuple[str, int]]) -> list[str]:
    """Create every job through the service in one transaction (run_job sent after commit)."""
    from trainforge.auth import get_or_create_tenant
    from trainforge.db.session import session_scope
    from trainforge.jobs.service import create_job
    from trainforge.schemas import JobCreate
    from trainforge.settings import get_settings

    settings = get_settings()
    with session_scope() as s:
        tenant = get_or_create_tenant(s, "bench-scheduling")
        return [
            create_job(
                s,
                tenant.id,
                JobCreate(
                    trainer=INSTANT,
                    task="classify",
                    overrides={"epochs": 1},
                    resources={"queue": queue, "gpus": 0},  # type: ignore[arg-type]
                    priority=priority,
                ),
                settings,
            ).job.id
            for queue, priority in items
        ]


def wait_all(job_ids: list[str], timeout: float = 1800.0) -> None:
    """Wait until every job has ended."""
    from sqlalchemy import func, select

    from trainforge.db.models import Job
    from trainforge.db.session import session_scope

    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as s:
            left = s.execute(
                select(func.count()).where(Job.id.in_(job_ids), Job.finished_at.is_(None))
            ).scalar_one()
        if not left:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} jobs still unfinished")
        time.sleep(0.5)


def read_runs(job_ids: list[str]) -> list[dict[str, Any]]:
    """Return each job's queue, priority, times, status and the slot (pool process) that ran it."""
    from sqlalchemy import select

    from trainforge.db.models import Job, JobEvent
    from trainforge.db.session import session_scope

    with session_scope() as s:
        rows = s.execute(
            select(Job.id, Job.queue, Job.priority, Job.started_at, Job.finished_at, Job.status).where(
                Job.id.in_(job_ids)
            )
        ).all()
        owners = dict(
            s.execute(
                select(JobEvent.job_id, JobEvent.data).where(
                    JobEvent.job_id.in_(job_ids), JobEvent.type == "job.started"
                )
            ).all()
        )
    runs = []
    for job_id, queue, priority, started, finished, status in rows:
        owner = str(owners[job_id]["worker"])  # host:pid:run; the pid is the pool process, one slot
        runs.append(
            {
                "id": job_id,
                "queue": queue,
                "priority": priority,
                "started": started.timestamp(),
                "finished": finished.timestamp(),
                "status": status,
                "slot": owner.rsplit(":", 1)[0],
            }
        )
    return runs


def slot_gaps(runs: list[dict[str, Any]]) -> list[float]:
    """Return, for every slot, the time from each job's end to the slot's next job starting."""
    by_slot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_slot[run["slot"]].append(run)
    gaps = []
    for jobs in by_slot.values():
        jobs.sort(key=lambda r: r["started"])
        gaps += [b["started"] - a["finished"] for a, b in itertools.pairwise(jobs)]
    return gaps


def inversions(runs: list[dict[str, Any]], slot_queues: dict[str, set[str]]) -> int:
    """Count jobs started while a higher-priority job in a queue their worker serves still waited."""
    found = 0
    for run in runs:
        served = slot_queues[run["slot"]]
        found += any(
            other["priority"] > run["priority"]
            and other["queue"] in served
            and other["started"] > run["started"]
            for other in runs
        )
    return found


def slot_queues_of(runs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Return the backlog queues each slot serves, as seen from what it ran (one queue or both)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        seen[run["slot"]].add(run["queue"])
    return seen


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def stack_env(placement: bool) -> dict[str, str]:
    """Return the environment of a stack with placement on or off."""
    return {
        "TRAINFORGE_PLACEMENT": "1" if placement else "0",
        "TRAINFORGE_TRAINER_MODULES": "bench.,tests.",
        "TRAINFORGE_WORKER_DEVICES": "cpu",
        "TRAINFORGE_JOB_QUEUES": ",".join(["jobs", *QUEUES]),
    }


def use(stack: Stack) -> None:
    """Point this process's settings and engines at `stack` (two stacks run side by side)."""
    from trainforge.db.session import dispose_engines
    from trainforge.settings import get_settings

    os.environ.update(stack.env)
    get_settings.cache_clear()
    dispose_engines()


def drain(stack: Stack, name: str, jobs: int, idle_jobs: int, seed: int) -> dict[str, Any]:
    """Drain a fresh backlog on `stack`, then time idle dispatches; return the figures."""
    use(stack)
    job_ids = submit_backlog(backlog(jobs, seed))
    began = time.monotonic()
    wait_all(job_ids)
    elapsed = time.monotonic() - began
    print(f"  {name}: drained {len(job_ids)} jobs in {elapsed:.1f} s", file=sys.stderr)
    runs = read_runs(job_ids)
    idle = []
    if idle_jobs:
        with stack.client() as client:
            artifacts = Path(stack.env["TRAINFORGE_ARTIFACTS_DIR"])
            idle = [one_job(stack, client, artifacts, INSTANT)["lease_taken"] for _ in range(idle_jobs)]
    gaps = slot_gaps(runs)
    return {
        "jobs": len(runs),
        "succeeded": sum(r["status"] == "succeeded" for r in runs),
        "jobs_per_s": len(runs) / elapsed,
        "gap_p50_ms": percentile(gaps, 0.5) * 1000,
        "gap_p99_ms": percentile(gaps, 0.99) * 1000,
        "inversions": inversions(runs, slot_queues_of(runs)),
        "idle_dispatch_p50_ms": statistics.median(idle) * 1000 if idle else None,
    }


def decisions_per_s(jobs: int) -> float:
    """Drain `jobs` waiting rows with 4 threads of take_next (4 registered workers); return decisions/s."""
    from trainforge.auth import get_or_create_tenant
    from trainforge.db.models import Job
    from trainforge.db.session import session_scope
    from trainforge.db.types import utcnow
    from trainforge.scheduling import placement, registry
    from trainforge.scheduling.inventory import Inventory

    with tempfile.TemporaryDirectory(prefix="bench-place-") as tmp:
        from trainforge.cli.server import migrate
        from trainforge.db.session import dispose_engines
        from trainforge.settings import get_settings

        os.environ["TRAINFORGE_DATABASE_URL"] = os.environ.get(
            "BENCH_DATABASE_URL", f"sqlite:///{Path(tmp) / 'place.db'}"
        )
        get_settings.cache_clear()
        dispose_engines()
        migrate("head")
        run = uuid.uuid4().hex[:6]
        workers = [f"decide-{run}-{i}@bench" for i in range(len(WORKER_QUEUES))]
        with session_scope() as s:
            tenant = get_or_create_tenant(s, "bench-decisions")
            for worker_id, queues in zip(workers, WORKER_QUEUES, strict=True):
                info = registry.WorkerInfo(
                    worker_id, "bench", 0, queues.split(","), 1, Inventory.cpu("declared")
                )
                registry.register(s, info)
            for queue, priority in backlog(jobs):
                s.add(
                    Job(
                        tenant_id=tenant.id, trainer="bench", trainer_ref=INSTANT, queue=f"{queue}",
                        resources={"queue": queue}, priority=priority, status="queued", created_at=utcnow(),
                    )
                )  # fmt: skip
        made = [0]
        lock = threading.Lock()

        def decide(worker_id: str) -> None:
            while True:
                with session_scope() as s:
                    if placement.take_next(s, worker_id, f"{worker_id}:bench") is None:
                        return
                with lock:
                    made[0] += 1

        threads = [threading.Thread(target=decide, args=(w,)) for w in workers]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = made[0] / (time.monotonic() - began)
        dispose_engines()
        return rate


def main() -> int:
    """Start both stacks, drain a backlog on each per round, then measure decisions/s; print it all."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-jobs", type=int, default=5, help="bench/dispatch.py jobs per round (0: skip)")
    args = parser.parse_args()
    print(load_average())
    rounds: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stacks:
        tmp = Path(stacks.enter_context(tempfile.TemporaryDirectory(prefix="bench-sched-")))
        started = {
            name: stacks.enter_context(Stack(tmp / name, env=stack_env(on), worker_queues=WORKER_QUEUES))
            for name, on in (("plain_dispatch", False), ("placement", True))
        }
        print("  both stacks up", file=sys.stderr)
        for index in range(args.rounds):
            figures = {
                name: drain(stack, name, args.jobs, args.idle_jobs, seed=index)
                for name, stack in started.items()
            }
            figures["placement"]["decisions_per_s"] = decisions_per_s(args.jobs)
            figures["ratio_p50"] = figures["placement"]["gap_p50_ms"] / max(
                figures["plain_dispatch"]["gap_p50_ms"], 1e-6
            )
            figures["load"] = load_average()
            rounds.append(figures)
            report(index, figures)
    ok = all(r["placement"]["inversions"] == 0 and r["placement"]["succeeded"] == args.jobs for r in rounds)
    ratios = ", ".join(f"{r['ratio_p50']:.2f}" for r in rounds)
    print(f"slot freed → next start, p50 placement / plain dispatch per round: {ratios} (goal <= 2)")
    print(f"priority inversions with placement: {'none' if ok else 'FOUND (or jobs failed)'}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"jobs": args.jobs, "rounds": rounds}, indent=2))
    return 0 if ok else 1


def report(index: int, figures: dict[str, Any]) -> None:
    """Print one round's figures."""
    print(f"round {index + 1} ({figures['load']}):")
    for name in ("plain_dispatch", "placement"):
        values = figures[name]
        text = "  ".join(
            f"{k} {v if v is None or isinstance(v, int) else round(v, 1)}" for k, v in values.items()
        )
        print(f"  {name:15s} {text}")
    print(f"  ratio p50 {figures['ratio_p50']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
