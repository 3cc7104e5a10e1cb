"""Event latency: from a trainer callback firing to an SSE client receiving the event (p50/p99, 200 events).

A trainer subclass (LatencyTrainer below, loaded by the worker as `bench.event_latency:LatencyTrainer`)
records when each non-batch callback fires; its callbacks run just before the service's bridge. An SSE
client connected right after POST /v1/jobs records when each event arrives. Both clocks are this
machine's. The path measured: bridge → emitter thread → DB commit → Redis publish → API → SSE client.

Usage: python bench/event_latency.py [--events 200] [--base module:Class]
(`--base tests.worker.trainers:TickTrainer`, a torch-free trainer, fires events faster than real training.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

EVENTS_PER_EPOCH = 5  # epoch start/end, model save, fit epoch end, params update
OUT = HERE / "out" / "event_latency.json"
FIRED_NAME = "fired.json"
DEFAULT_BASE = "trainer_engine.models.classify:ClassificationTrainer"


def _record(trainer: Any, event: str) -> None:
    """Note that `event` fired now (runs before the bridge's callback for the same event)."""
    trainer.fired.append((event, time.time()))
    if event == "teardown":
        Path(trainer.save_dir, FIRED_NAME).write_text(json.dumps(trainer.fired))


def _latency_trainer() -> type:
    """Build the trainer class on the base named by BENCH_LATENCY_BASE (only the training child runs this)."""
    import importlib

    from trainer_engine.engine.callbacks import BATCH_EVENTS, TRAINER_EVENTS

    module, _, name = os.environ.get("BENCH_LATENCY_BASE", DEFAULT_BASE).partition(":")
    base = getattr(importlib.import_module(module), name)

    class LatencyTrainer(base):  # type: ignore[misc,valid-type]
        """The base trainer, recording when each non-batch callback fires."""

        def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
            super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
            self.fired: list[tuple[str, float]] = []
            for event in TRAINER_EVENTS:
                if event not in BATCH_EVENTS:
                    self.add_callback(event, partial(_record, event=event))

    return LatencyTrainer


def __getattr__(name: str) -> Any:
    """Load LatencyTrainer lazily, so this script itself starts without torch."""
    if name == "LatencyTrainer":
        return _latency_trainer()
    raise AttributeError(name)


def listen(stack: Any, job_id: str, received: list[tuple[str, float]], done: threading.Event) -> None:
    """Read the job's SSE stream until its terminal event, noting when each event arrives."""
    import httpx

    headers = {"Authorization": f"Bearer {stack.token}", "Accept": "text/event-stream"}
    url = f"{stack.base_url}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=None) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                received.append((event["type"], time.time()))
                if event["type"] in ("job.succeeded", "job.failed", "job.cancelled"):
                    break
    done.set()


def latencies(fired: list[tuple[str, float]], received: list[tuple[str, float]]) -> list[float]:
    """Pair the n-th firing of each event type with its n-th arrival; return the delays in order fired.

    Events fired before the client's stream was open (before its first message arrived) are left
    out: those are replays from the database, not live delivery.
    """
    connected_at = received[0][1] if received else math.inf
    arrivals: dict[str, list[float]] = defaultdict(list)
    for event, at in received:
        arrivals[event].append(at)
    seen: dict[str, int] = defaultdict(int)
    delays = []
    for event, at in fired:
        index = seen[event]
        seen[event] += 1
        if index < len(arrivals[event]) and at >= connected_at:
            delays.append(arrivals[event][index] - at)
    return delays


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> int:
    """Run one long-enough job and print p50/p99 of callback → SSE client."""
    from support.stack import Stack, load_average

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--base", default=DEFAULT_BASE, help="trainer class to measure on ('module:Class')")
    args = parser.parse_args()
    epochs = math.ceil(args.events / EVENTS_PER_EPOCH) + 4  # a few more: the first ones may fire before the
    # client is connected
    overrides = {
        "data": "synthetic:classify?classes=2&train=16&val=8&size=16",
        "epochs": epochs,
        "imgsz": 16,
        "batch": 8,
        "workers": 0,
        "plots": False,
    }
    env = {"TRAINFORGE_TRAINER_MODULES": "bench.event_latency", "BENCH_LATENCY_BASE": args.base}
    print(load_average())
    print(f"base trainer: {args.base}")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp, Stack(Path(tmp), env=env) as stack:
        with stack.client() as client:
            body = {
                "trainer": "bench.event_latency:LatencyTrainer",
                "task": "classify",
                "overrides": overrides,
            }
            job_id = client.post("/v1/jobs", json=body).raise_for_status().json()["id"]
            received: list[tuple[str, float]] = []
            done = threading.Event()
            threading.Thread(target=listen, args=(stack, job_id, received, done), daemon=True).start()
            job = stack.wait_job(client, job_id)
            done.wait(30)
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job['status']}: {job.get('error')}")
        fired = json.loads((Path(tmp) / "artifacts" / job_id / FIRED_NAME).read_text())
    delays = latencies([tuple(x) for x in fired], received)[: args.events]
    p50, p99 = statistics.median(delays) * 1000, percentile(delays, 99) * 1000
    print(f"events measured: {len(delays)} (epochs: {epochs})")
    slowest = sorted(range(len(delays)), key=delays.__getitem__)[-5:]
    print("slowest (index in firing order: ms):", ", ".join(f"{i}: {delays[i] * 1000:.0f}" for i in slowest))
    print(f"callback -> SSE client: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(delays) * 1000:.1f} ms")
    print(f"goal p50 <= 20 ms, p99 <= 100 ms: {'met' if p50 <= 20 and p99 <= 100 else 'NOT met'}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"load": load_average(), "base": args.base, "events": len(delays), "p50_ms": p50, "p99_ms": p99}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
