"""Webhook latency and throughput: callback firing → receiver holding the signed POST, and deliveries/s.

1. Latency: a job of the torch-free TickTrainer paced at `--batch-s` per batch (about 30 events/s;
   wrapped by bench.event_latency's LatencyTrainer, which notes when each non-batch callback fires)
   with one inline webhook on a loopback receiver; each
   event's delay is from its callback to the receiver reading the POST (signature checked with
   `standardwebhooks`). The path: bridge → emitter thread → DB commit (outbox row) → Redis → webhooks
   worker → claim → signed HTTP POST. p50 and p99 over `--events` events.
2. Throughput: `--endpoints` tenant endpoints (one receiver each) get every event of a second job;
   deliveries/s from the first to the last delivery received. Beside it, in the same run, the floor:
   one process POSTing a body of the same size to the same receivers in a keep-alive loop (no
   database, broker, signing or address checks), so the ratio shows what the delivery path costs.

Usage: python bench/webhook_latency.py [--events 200] [--endpoints 20] [--hook-workers 4] [--batch-s 0.05]
Environment: BENCH_DATABASE_URL (default SQLite in a temp dir), BENCH_REDIS_URL (default embedded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

OUT = HERE / "out" / "webhook_latency.json"
TRAINER = "bench.event_latency:LatencyTrainer"
PACED = "bench.webhook_latency:PacedTickTrainer"
EVENTS_PER_EPOCH = 5
GOALS = {"p50_ms": 25.0, "p99_ms": 250.0, "deliveries_per_s": 400.0}


def _paced_trainer() -> type:
    """Build TickTrainer with batches of BENCH_WEBHOOK_BATCH_S seconds (only the training child runs this)."""
    from tests.worker.trainers import TickTrainer

    class PacedTickTrainer(TickTrainer):
        """TickTrainer whose epochs take about 3 x BENCH_WEBHOOK_BATCH_S seconds."""

        def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
            super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
            self.batch_s = float(os.environ.get("BENCH_WEBHOOK_BATCH_S", "0.05"))

    return PacedTickTrainer


def __getattr__(name: str) -> Any:
    """Load PacedTickTrainer lazily, so this script itself starts without the engine."""
    if name == "PacedTickTrainer":
        return _paced_trainer()
    raise AttributeError(name)


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def job_body(epochs: int, webhooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return a POST /v1/jobs body for a LatencyTrainer job on TickTrainer."""
    overrides = {"data": "synthetic:classify?classes=2&train=16&val=8&size=16", "epochs": epochs}
    return {"trainer": TRAINER, "task": "classify", "overrides": overrides, "webhooks": webhooks or []}


def pair(fired: list[tuple[str, float]], received: list[tuple[str, int, float]]) -> list[float]:
    """Pair the n-th firing of each type with its n-th delivery (by seq); return delays in firing order."""
    arrivals: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for event_type, seq, at in received:
        arrivals[event_type].append((seq, at))
    for items in arrivals.values():
        items.sort()
    seen: dict[str, int] = defaultdict(int)
    delays = []
    for event_type, at in fired:
        index = seen[event_type]
        seen[event_type] += 1
        if index < len(arrivals[event_type]):
            delays.append(arrivals[event_type][index][1] - at)
    return delays


def start_hook_worker(stack: Any, workdir: Path, concurrency: int) -> Any:
    """Start a webhooks/default worker with the beat (the sweep), in the stack's environment."""
    argv = [sys.executable, "-m", "trainforge.cli", "worker", "--queues", "webhooks,default", "--beat",
            "--concurrency", str(concurrency), "--schedule", str(workdir / "beat-schedule")]  # fmt: skip
    proc = stack._spawn(argv, {**os.environ, "PYTHONPATH": str(HERE.parent)}, "hooks.log")
    stack._wait(lambda: " ready." in (workdir / "hooks.log").read_text(), proc, "webhooks worker ready")
    return proc


def wait_delivered(client: Any, job_id: str, timeout: float = 300.0) -> int:
    """Wait until none of the job's deliveries is pending; return how many there are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = client.get(f"/v1/jobs/{job_id}/deliveries", params={"limit": 1000}).json()["data"]
        if rows and all(row["status"] != "pending" for row in rows):
            return len(rows)
        time.sleep(0.1)
    raise TimeoutError(f"deliveries of job {job_id} still pending")


def measure_latency(stack: Any, workdir: Path, events: int) -> dict[str, float]:
    """Run one job with an inline webhook; return p50/p99/max of callback → receiver in ms."""
    from standardwebhooks.webhooks import Webhook

    from tests.webhooks.receiver import Receiver

    epochs = math.ceil(events / EVENTS_PER_EPOCH) + 2
    with Receiver() as rx, stack.client() as client:
        hooks = [{"url": rx.url + "/hook", "events": ["on_*"]}]
        accepted = client.post("/v1/jobs", json=job_body(epochs, hooks)).raise_for_status().json()
        secret = accepted["webhooks"][0]["secret"]
        job = stack.wait_job(client, accepted["id"])
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job['status']}: {job.get('error')}")
        fired = [tuple(x) for x in json.loads((workdir / "artifacts" / job["id"] / "fired.json").read_text())]
        wait_delivered(client, job["id"])
        waits = queue_waits(client, job["id"])
        received = []
        for req in rx.requests:
            body = Webhook(secret).verify(req.body, req.headers)
            received.append((body["type"], body["data"]["seq"], req.at))
    delays = [d * 1000 for d in pair(fired, received)][:events]
    return {
        "events": len(delays),
        "p50_ms": statistics.median(delays),
        "p99_ms": percentile(delays, 99),
        "max_ms": max(delays),
        "queue_wait_p50_ms": statistics.median(waits),
        "queue_wait_p99_ms": percentile(waits, 99),
    }


def queue_waits(client: Any, job_id: str) -> list[float]:
    """Return, per delivery, ms from its outbox row's commit to its first attempt (broker + worker wait)."""
    from datetime import datetime

    rows = client.get(f"/v1/jobs/{job_id}/deliveries", params={"limit": 1000}).json()["data"]
    waits = []
    for row in rows:
        if row["attempts"]:
            first = datetime.fromisoformat(row["attempts"][0]["started_at"].replace("Z", "+00:00"))
            created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
            waits.append((first - created).total_seconds() * 1000)
    return waits


def measure_throughput(stack: Any, endpoints: int, epochs: int) -> dict[str, float]:
    """Send every event of one job to `endpoints` tenant endpoints; return deliveries/s received."""
    from contextlib import ExitStack

    from tests.webhooks.receiver import Receiver

    with ExitStack() as receivers, stack.client() as client:
        rxs = [receivers.enter_context(Receiver()) for _ in range(endpoints)]
        ids = [
            client.post("/v1/webhooks", json={"url": rx.url}).raise_for_status().json()["id"] for rx in rxs
        ]
        accepted = client.post("/v1/jobs", json=job_body(epochs)).raise_for_status().json()
        stack.wait_job(client, accepted["id"])
        total = len(client.get(f"/v1/jobs/{accepted['id']}/events", params={"limit": 1000}).json()["data"])
        deadline = time.monotonic() + 300
        while sum(len(rx.requests) for rx in rxs) < total * endpoints and time.monotonic() < deadline:
            time.sleep(0.05)
        times = sorted(req.at for rx in rxs for req in rx.requests)
        for endpoint_id in ids:
            client.delete(f"/v1/webhooks/{endpoint_id}")
        body = rxs[0].requests[0].body
        floor = bare_post_loop([rx.url for rx in rxs], body, len(times))
    span = times[-1] - times[0]
    return {
        "deliveries": len(times),
        "expected": total * endpoints,
        "seconds": span,
        "per_s": len(times) / span,
        "floor_per_s": floor,
    }


def bare_post_loop(urls: list[str], body: bytes, count: int) -> float:
    """POST `body` `count` times round-robin over `urls` on keep-alive connections; return POSTs/s."""
    import socket

    import httpx

    # TCP_NODELAY: without it a keep-alive POST (headers, then body) waits ~40 ms for a delayed ACK.
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    with httpx.Client(transport=httpx.HTTPTransport(socket_options=nodelay), trust_env=False) as client:
        for url in urls:  # open every connection first, as a warm worker has
            client.post(url, content=body).raise_for_status()
        start = time.monotonic()
        for i in range(count):
            client.post(urls[i % len(urls)], content=body).raise_for_status()
        return count / (time.monotonic() - start)


def main() -> int:
    """Start the stack with a webhooks worker, measure, print and save the figures."""
    from support.stack import Stack, load_average

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the throughput job")
    parser.add_argument(
        "--hook-workers", type=int, default=4, help="processes of the webhooks worker (docs/operations.md: 4)"
    )
    parser.add_argument(
        "--batch-s",
        type=float,
        default=0.05,
        help="seconds per batch of the latency job (3 batches an epoch)",
    )
    args = parser.parse_args()
    env = {
        "TRAINFORGE_TRAINER_MODULES": "bench.event_latency",
        "BENCH_LATENCY_BASE": PACED,
        "BENCH_WEBHOOK_BATCH_S": str(args.batch_s),
        "TRAINFORGE_WEBHOOK_ALLOW": "127.0.0.0/8",
        "TRAINFORGE_FORK_SERVER": "0",
    }
    print(load_average())
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp, Stack(Path(tmp), env=env) as stack:
        start_hook_worker(stack, Path(tmp), args.hook_workers)
        latency = measure_latency(stack, Path(tmp), args.events)
        throughput = measure_throughput(stack, args.endpoints, args.epochs)
    print(f"database: {os.environ.get('BENCH_DATABASE_URL', 'sqlite (temp file)').split('@')[-1]}")
    print(f"events measured: {latency['events']}")
    lat, thr = latency, throughput
    print(
        f"callback -> receiver (signed POST): p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
        f"max {lat['max_ms']:.1f} ms"
    )
    print(
        f"  of which outbox row -> first attempt (broker and worker wait): "
        f"p50 {lat['queue_wait_p50_ms']:.1f} ms, p99 {lat['queue_wait_p99_ms']:.1f} ms"
    )
    print(
        f"throughput to {args.endpoints} endpoints: {thr['deliveries']}/{thr['expected']} deliveries "
        f"in {thr['seconds']:.2f} s = {thr['per_s']:.0f} deliveries/s"
    )
    print(
        f"floor, one keep-alive POST loop to the same receivers: {thr['floor_per_s']:.0f} POSTs/s "
        f"(deliveries reach {thr['per_s'] / thr['floor_per_s']:.2f}x of it)"
    )
    met = (
        latency["p50_ms"] <= GOALS["p50_ms"]
        and latency["p99_ms"] <= GOALS["p99_ms"]
        and throughput["per_s"] >= GOALS["deliveries_per_s"]
    )
    print(f"goal p50 <= 25 ms, p99 <= 250 ms, >= 400 deliveries/s: {'met' if met else 'NOT met'}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load": load_average(), **latency, **throughput}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
