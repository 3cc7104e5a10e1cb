"""Dispatch latency: from POST /v1/jobs returning to the job's first training batch starting.

A warm worker (already running, fork server preloaded, data set cached) gets 20 small jobs one after
another; the training child records when it started, when its trainer was built and when the first
batch began (worker/outcome.py timings), so the p50 splits into: queue + lease, process start, trainer
construction, and train() setup. The same is then measured with every child started as a fresh
interpreter (TRAINFORGE_FORK_SERVER=0), which is what the fork server saves: process start and imports.

Usage: python bench/dispatch.py [--jobs 20] [--cold-jobs 5] [--trainer classify]
(`--trainer tests.worker.trainers:TickTrainer`, a torch-free trainer, isolates the service's own part.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from support.stack import Stack, load_average  # noqa: E402

OVERRIDES = {
    "data": "synthetic:classify?classes=2&train=16&val=8&size=16",
    "epochs": 1,
    "imgsz": 16,
    "batch": 8,
    "workers": 0,
    "plots": False,
}
OUT = HERE / "out" / "dispatch.json"


def parse_time(value: str) -> float:
    """Return an ISO timestamp as epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def one_job(stack: Stack, client, artifacts: Path, trainer: str) -> dict[str, float]:
    """Submit one job, wait for it, and return its timeline relative to the POST returning."""
    body = {"trainer": trainer, "overrides": OVERRIDES}
    if trainer != "classify":
        body["task"] = "classify"
    response = client.post("/v1/jobs", json=body)
    posted = time.time()
    response.raise_for_status()
    job_id = response.json()["id"]
    job = stack.wait_job(client, job_id)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
    events = client.get(f"/v1/jobs/{job_id}/events").json()["data"]
    started = next(parse_time(e["created_at"]) for e in events if e["type"] == "job.started")
    timings = json.loads((artifacts / job_id / ".outcome.json").read_text())["timings"]
    return {
        "lease_taken": started - posted,
        "child_started": timings["child_start"] - posted,
        "trainer_built": timings["trainer_built"] - posted,
        "first_batch": timings["first_batch"] - posted,
    }


def measure(jobs: int, fork_server: bool, trainer: str) -> list[dict[str, float]]:
    """Start a stack (fork server on or off), warm it with one job, then time `jobs` jobs."""
    env = {"TRAINFORGE_FORK_SERVER": "1" if fork_server else "0"}
    if ":" in trainer:
        env["TRAINFORGE_TRAINER_MODULES"] = trainer.split(":")[0]
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp, Stack(Path(tmp), env=env) as stack:
        artifacts = Path(tmp) / "artifacts"
        with stack.client() as client:
            one_job(stack, client, artifacts, trainer)  # warm: data set generated, fork server preloaded
            return [one_job(stack, client, artifacts, trainer) for _ in range(jobs)]


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Return the median of each stage and of each stage's own duration."""
    med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    return {
        "p50_first_batch_s": med["first_batch"],
        "p90_first_batch_s": sorted(r["first_batch"] for r in rows)[int(0.9 * (len(rows) - 1))],
        "queue_and_lease_s": med["lease_taken"],
        "process_start_s": statistics.median(r["child_started"] - r["lease_taken"] for r in rows),
        "trainer_build_s": statistics.median(r["trainer_built"] - r["child_started"] for r in rows),
        "train_setup_to_first_batch_s": statistics.median(
            r["first_batch"] - r["trainer_built"] for r in rows
        ),
    }


def main() -> int:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--cold-jobs", type=int, default=5, help="jobs without the fork server (0: skip)")
    parser.add_argument("--trainer", default="classify", help="trainer name or allowed 'module:Class'")
    args = parser.parse_args()
    print(load_average())
    print(f"trainer: {args.trainer}")
    results = {"warm_fork_server": summary(measure(args.jobs, True, args.trainer))}
    if args.cold_jobs:
        results["fresh_interpreter"] = summary(measure(args.cold_jobs, False, args.trainer))
    for name, figures in results.items():
        print(f"{name}:")
        for key, value in figures.items():
            print(f"  {key:32s} {value * 1000:8.0f} ms")
    p50 = results["warm_fork_server"]["p50_first_batch_s"]
    print(f"goal p50 <= 1.5 s: {'met' if p50 <= 1.5 else 'NOT met'} ({p50:.2f} s)")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load": load_average(), "trainer": args.trainer, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
