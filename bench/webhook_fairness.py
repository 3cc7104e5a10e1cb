"""Webhook fairness: tenant B's delivery latency with and without tenant A's tarpit receivers.

Real processes (API, Redis, a webhooks worker of `--hook-workers` processes, SQLite or PostgreSQL)
and real loopback receivers. B has one fast endpoint; A has two endpoints that read the POST and never
answer before the attempt's time limit (a tarpit). Each round:

1. without: B's job emits `--events` events, paced `--gap-s` apart; B's latency per delivery is
   from the event's emit to B's receiver reading the signed POST (p50, p99);
2. with: A's job emits `--tarpit-events` events (far more than A's share of slots), and once A's
   attempts hold their slots, B emits again and is measured the same way;
3. A's endpoints are disabled and its held attempts allowed to time out, so the next arm starts clean.
The two arms alternate in order from round to round.

After `--rounds` rounds with the fairness caps (the settings below), one more "with" round runs with
the caps lifted (every process may go to one tenant): what B would see without the fairness.

Usage: python bench/webhook_fairness.py [--rounds 3] [--events 100] [--hook-workers 4]
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
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

OUT = HERE / "out" / "webhook_fairness.json"
ATTEMPT_LIMIT_S = 6.0
FAIR = {"TRAINFORGE_WEBHOOK_TENANT_IN_FLIGHT": "2", "TRAINFORGE_WEBHOOK_ENDPOINT_IN_FLIGHT": "2"}
UNFAIR = {"TRAINFORGE_WEBHOOK_TENANT_IN_FLIGHT": "1000", "TRAINFORGE_WEBHOOK_ENDPOINT_IN_FLIGHT": "1000"}


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def new_job(tenant: str) -> str:
    """Insert a job of `tenant` (created if missing) for events to be emitted on; return its id."""
    from trainforge.auth import get_or_create_tenant
    from trainforge.db.models import Job
    from trainforge.db.session import session_scope

    with session_scope() as s:
        job = Job(
            id=str(uuid.uuid4()),
            tenant_id=get_or_create_tenant(s, tenant).id,
            trainer="classify",
            trainer_ref="trainer_engine.models.classify:ClassificationTrainer",
            task="classify",
            overrides={},
            resources={"queue": "jobs", "gpus": 0},
            # Ended: the reaper and the placement leave it alone (events may still be recorded on it).
            status="succeeded",
        )
        s.add(job)
        return job.id


def emit(job_id: str, epoch: int) -> float:
    """Record one event as the worker's emitter does (outbox row, then the deliver message); return when."""
    from trainforge.db.session import session_scope
    from trainforge.events import emit as emit_event

    started = time.time()
    with session_scope() as s:
        emit_event(s, job_id, "on_train_epoch_end", {"epoch": epoch})
    return started


def b_latencies(job_id: str, rx: Any, events: int, gap_s: float, first: int, timeout: float) -> list[float]:
    """Emit `events` paced events on B's job; return each one's emit-to-receiver ms (first arrival).

    An event not delivered within `timeout` counts as `timeout` (a lower bound of its latency).
    """
    emitted = {}
    for epoch in range(first, first + events):
        emitted[epoch] = emit(job_id, epoch)
        time.sleep(gap_s)
    deadline = time.monotonic() + timeout
    arrived: dict[int, float] = {}
    while len(arrived) < events and time.monotonic() < deadline:
        for req in list(rx.requests):  # at least once: a duplicate counts once, at its first arrival
            epoch = json.loads(req.body)["data"].get("epoch")
            if epoch in emitted and epoch not in arrived:
                arrived[epoch] = req.at
        time.sleep(0.05)
    return [(arrived.get(epoch, emitted[epoch] + timeout) - emitted[epoch]) * 1000 for epoch in emitted]


def figures(latencies: list[float]) -> dict[str, float]:
    """Return p50 and p99 in ms."""
    return {"p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 99)}


def tarpit_round(
    tenant_a: str, client: Any, tarpit: Any, b_job: str, b_rx: Any, args: Any, first: int
) -> dict[str, float]:
    """Give A tarpit endpoints and a backlog, measure B, then disable A's endpoints and let them drain."""
    ids = [
        client.post("/v1/webhooks", json={"url": f"{tarpit.url}/a{n}", "events": ["on_train_epoch_end"]})
        .raise_for_status()
        .json()["id"]
        for n in range(2)
    ]
    a_job = new_job(tenant_a)
    held_before = len(tarpit.requests)
    for epoch in range(args.tarpit_events):
        emit(a_job, epoch)
    # A's attempts have taken what they may of the processes once the tarpit holds a first one.
    tarpit.wait_for(held_before + 1, timeout=30)
    time.sleep(0.5)
    held = len(tarpit.requests) - held_before
    latencies = b_latencies(b_job, b_rx, args.events, args.gap_s, first, args.timeout_s)
    for endpoint_id in ids:  # A's waiting deliveries now fail at once (endpoint disabled)
        client.post(f"/v1/webhooks/{endpoint_id}/disable").raise_for_status()
    time.sleep(ATTEMPT_LIMIT_S + 1.0)  # A's attempts still running end at their time limit
    late = sum(ms >= args.timeout_s * 1000 for ms in latencies)
    return {**figures(latencies), "a_attempts_held": held, "b_not_delivered_in_time": late}


def main() -> int:
    """Start the stack and a webhooks worker, run the rounds, print and save the figures."""
    from support.stack import Stack, load_average
    from webhook_latency import start_hook_worker

    from tests.webhooks.receiver import Receiver, Reply
    from trainforge.auth import create_token
    from trainforge.cli.server import _terminate
    from trainforge.db.session import session_scope

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100, help="B's events per measurement")
    parser.add_argument("--gap-s", type=float, default=0.02, help="seconds between B's events")
    parser.add_argument("--tarpit-events", type=int, default=40, help="A's events to its tarpits per round")
    parser.add_argument("--hook-workers", type=int, default=4, help="processes of the webhooks worker")
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="B's events later than this count as it"
    )
    args = parser.parse_args()
    env = {
        "TRAINFORGE_WEBHOOK_ALLOW": "127.0.0.0/8",
        "TRAINFORGE_WEBHOOK_TIMEOUT_S": str(ATTEMPT_LIMIT_S),
        "TRAINFORGE_FORK_SERVER": "0",
        **FAIR,
    }
    load_before = load_average()
    print(load_before)
    rounds, unfair = [], {}
    tarpit_reply = Reply(200, delay_s=3 * ATTEMPT_LIMIT_S)
    with (
        tempfile.TemporaryDirectory(prefix="bench-fairness-") as tmp,
        Stack(Path(tmp), env=env) as stack,
        ExitStack() as receivers,
    ):
        hooks = start_hook_worker(stack, Path(tmp), args.hook_workers)
        tenant_a = "bench-tenant-a"
        b_rx = receivers.enter_context(Receiver())
        tarpit = receivers.enter_context(Receiver(lambda _r, _n: tarpit_reply))
        with session_scope() as s:
            a_token = create_token(s, tenant_a)
        with stack.client() as b_client:
            b_client.post(
                "/v1/webhooks", json={"url": f"{b_rx.url}/b", "events": ["on_train_epoch_end"]}
            ).raise_for_status()
        b_job = new_job("bench")  # the stack's token is tenant "bench": B
        a_client = stack.client()
        a_client.headers["Authorization"] = f"Bearer {a_token}"
        with a_client:
            for n in range(args.rounds):
                # Alternate which arm goes first, so neither always runs on a just-idled system.
                arms = ["without", "with"] if n % 2 == 0 else ["with", "without"]
                for arm in arms:
                    if arm == "without":
                        without = figures(
                            b_latencies(b_job, b_rx, args.events, args.gap_s, 10_000 * n, args.timeout_s)
                        )
                    else:
                        with_tarpit = tarpit_round(
                            tenant_a, a_client, tarpit, b_job, b_rx, args, 10_000 * n + 5_000
                        )
                rounds.append({"without": without, "with": with_tarpit})
                print(
                    f"round {n + 1}: B p50/p99 without A's tarpit "
                    f"{without['p50_ms']:.1f}/{without['p99_ms']:.1f} ms, "
                    f"with {with_tarpit['p50_ms']:.1f}/{with_tarpit['p99_ms']:.1f} ms "
                    f"(A held {with_tarpit['a_attempts_held']} attempts at the tarpit)"
                )
            _terminate([hooks], 30)
            stack.procs.remove(hooks)
            os.environ.update(UNFAIR)
            hooks = start_hook_worker(stack, Path(tmp), args.hook_workers)
            unfair = tarpit_round(tenant_a, a_client, tarpit, b_job, b_rx, args, 90_000)
            print(
                f"caps lifted (one tenant may take every process): B p50/p99 with A's tarpit "
                f"{unfair['p50_ms']:.1f}/{unfair['p99_ms']:.1f} ms (A held {unfair['a_attempts_held']}; "
                f"{unfair['b_not_delivered_in_time']} of B's {args.events} not delivered "
                f"within {args.timeout_s:g} s)"
            )
    p99_with = [r["with"]["p99_ms"] for r in rounds]
    p99_without = [r["without"]["p99_ms"] for r in rounds]
    ratio = [w / max(wo, 1e-9) for w, wo in zip(p99_with, p99_without, strict=True)]
    print(f"database: {os.environ.get('BENCH_DATABASE_URL', 'sqlite (temp file)').split('@')[-1]}")
    print(
        f"B p99 with / without A's tarpit over {len(rounds)} rounds: "
        + ", ".join(f"{r:.2f}x" for r in ratio)
        + f" (median {statistics.median(ratio):.2f}x)"
    )
    load_after = load_average()
    print(load_after)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"load_before": load_before, "load_after": load_after, "rounds": rounds, "caps_lifted": unfair},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
