"""Service overhead: the same 3-epoch job through the service vs trainer.train() in a plain process.

Service: POST /v1/jobs → job.succeeded seen on the job's event stream (no polling), on a warm worker.
Plain: a fresh `python` that imports the engine and runs ClassificationTrainer(overrides).train();
both its whole wall time and the time of those two calls (building the trainer checks the data set,
training) are reported. Runs alternate (service, plain, ...) so machine load hits both alike.

Both sides train with the same number of torch threads (`--threads`, default 1, set as OMP_NUM_THREADS
for the plain process and for the worker, whose fork server hands it to each training child). Left to
its default (one per core), OpenMP's threads fight whatever else runs on a small shared machine, and
the wall times measure that fight: on 2 busy cores one epoch took 1.8 s with 1 thread, 7-12 s with 2.

Usage: python bench/service_overhead.py [--runs 3] [--threads 1]   (--threads 0: torch's default)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from support.stack import ROOT, Stack, load_average  # noqa: E402

OVERRIDES = {
    "data": "synthetic:classify?classes=4&train=512&val=128&size=32",
    "epochs": 3,
    "imgsz": 32,
    "batch": 32,
    "workers": 0,
    "plots": False,
}
OUT = HERE / "out" / "service_overhead.json"
PLAIN = """
import json, sys, time
from trainer_engine.models.classify import ClassificationTrainer
overrides = json.loads(sys.argv[1])
start = time.perf_counter()
ClassificationTrainer(overrides=overrides).train()  # what a user runs: build (checks the data) and train
print("TRAIN_S", time.perf_counter() - start)
"""


def thread_env(threads: int) -> dict[str, str]:
    """Return the environment that gives torch `threads` intra-op threads (none: torch's default)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads > 0 else {}


def plain_run(workdir: Path, index: int, data_dir: str, threads: int) -> tuple[float, float]:
    """Train in a fresh process; return (whole process wall time, train() time)."""
    overrides = {**OVERRIDES, "project": str(workdir / "plain"), "name": str(index), "exist_ok": True}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PLAIN, json.dumps(overrides)],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "TRAINER_ENGINE_DATA_DIR": data_dir,
            "PYTHONPATH": str(ROOT),
            **thread_env(threads),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    train_s = float(
        next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("TRAIN_S"))
    )
    return wall, train_s


def service_run(stack: Stack, client) -> float:
    """Submit the job and return the time from POST to seeing it succeeded."""
    start = time.perf_counter()
    job_id = client.post("/v1/jobs", json={"trainer": "classify", "overrides": OVERRIDES}).raise_for_status()
    job = stack.wait_job_streaming(job_id.json()["id"])
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['status']}: {job.get('error')}")
    return time.perf_counter() - start


def main() -> int:
    """Alternate service and plain runs; print medians and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (0: default)")
    args = parser.parse_args()
    print(load_average(), f"; torch threads: {args.threads or 'default'}")
    service, plain_wall, plain_train = [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        Stack(Path(tmp), env=thread_env(args.threads)) as stack,
    ):
        data_dir = str(Path(tmp) / "datasets")
        with stack.client() as client:
            service_run(stack, client)  # warm: data set generated and cached for both sides
            for i in range(args.runs):
                service.append(service_run(stack, client))
                wall, train_s = plain_run(Path(tmp), i, data_dir, args.threads)
                plain_wall.append(wall)
                plain_train.append(train_s)
    med = {
        "service_s": statistics.median(service),
        "plain_process_s": statistics.median(plain_wall),
        "plain_train_s": statistics.median(plain_train),
    }
    ratio_train = med["service_s"] / med["plain_train_s"]
    ratio_process = med["service_s"] / med["plain_process_s"]
    for key, value in med.items():
        print(f"  {key:18s} {value:7.2f} s")
    print(f"service / plain train(): {ratio_train:.3f}x   service / plain process: {ratio_process:.3f}x")
    # The service's own cost is about fixed per job (dispatch, fork, final bookkeeping): in seconds it
    # says more than a ratio over a job of a few seconds.
    print(f"service - plain train(): {med['service_s'] - med['plain_train_s']:+.2f} s per job")
    print(f"goal <= 1.10x (vs train()): {'met' if ratio_train <= 1.10 else 'NOT met'}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load": load_average(), **med, "ratio_vs_train": ratio_train,
                               "ratio_vs_process": ratio_process, "runs": args.runs,
                               "threads": args.threads}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
