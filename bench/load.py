"""Load: 1,000 job submissions from 50 concurrent clients; none lost, none duplicated, none stuck.

Half of the submissions share their Idempotency-Key with one other submission (pairs sent at the same
moment by two clients, so they race), the other half have keys of their own: 1,000 POSTs make 750 jobs.
Each job runs `tests.worker.trainers:TickTrainer` (torch-free, one epoch of three 10 ms batches) on
one warm jobs worker running four at once, so what is measured is the service: submit, queue, lease,
child, events, outcome.

Checks: every POST got a 202; both POSTs of a pair got the same job, every other POST its own; the
tenant holds exactly the distinct jobs (none lost, none made twice); every job succeeded on its first
attempt with one job.started and one job.succeeded event (none stuck, none run twice).
Clients retry a 503 after its Retry-After with the same key, as the API asks. Prints submit latency
(first try to 202, retries included) p50/p99, submissions/s, jobs finished/s and the API's RSS before
and after (goal: growth < 20 MB).

Usage: python bench/load.py [--posts 1000] [--clients 50] [--concurrency 4] [--timeout 1800]
                            [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from support.stack import Stack, load_average  # noqa: E402

TRAINER = "tests.worker.trainers:TickTrainer"
BODY = {"trainer": TRAINER, "task": "classify", "overrides": {"epochs": 1}}
RSS_GOAL_MB = 20.0
MAX_TRIES = 20
CLIENT_TIMEOUT_S = 60.0
OUT = HERE / "out" / "load.json"


def submissions(posts: int, seed: int = 13) -> list[str]:
    """Return the Idempotency-Key of each POST, in sending order: half in adjacent pairs, half alone."""
    pairs = posts // 4
    alone = posts - 2 * pairs
    groups = [[f"pair-{i}", f"pair-{i}"] for i in range(pairs)] + [[f"solo-{i}"] for i in range(alone)]
    random.Random(seed).shuffle(groups)
    return [key for group in groups for key in group]


def rss_mb(pid: int) -> float:
    """Return a process's resident set size in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def submit_all(base_url: str, token: str, keys: list[str], clients: int) -> list[dict[str, Any]]:
    """Send one POST per key from `clients` concurrent clients; return each answer with its latency."""
    todo: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for index, key in enumerate(keys):
        todo.put_nowait((index, key))
    results: list[dict[str, Any]] = [{} for _ in keys]

    async def client_loop() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=CLIENT_TIMEOUT_S) as client:
            while not todo.empty():
                index, key = todo.get_nowait()
                start = time.perf_counter()
                # A client does what the API asks of it: a 503 says when to retry, and after a timeout
                # it cannot know whether the job was made. The same Idempotency-Key makes both safe.
                timeouts = 0
                for tries in range(1, MAX_TRIES + 1):
                    try:
                        response = await client.post("/v1/jobs", json=BODY, headers={"Idempotency-Key": key})
                    except httpx.TimeoutException:
                        timeouts += 1
                        continue
                    if response.status_code != 503 or tries == MAX_TRIES:
                        break
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                else:
                    raise AssertionError(f"POST with key {key!r} timed out {timeouts} times")
                results[index] = {
                    "key": key,
                    "status": response.status_code,
                    "id": response.json().get("id"),
                    "tries": tries,
                    "timeouts": timeouts,
                    "latency_s": time.perf_counter() - start,
                }

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return results


def job_counts(client: httpx.Client) -> dict[str, int]:
    """Return the number of jobs by status, read from /metrics."""
    counts = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("trainforge_jobs{"):
            status = line.split('"')[1]
            counts[status] = int(float(line.rsplit(" ", 1)[1]))
    return counts


def wait_all_done(client: httpx.Client, jobs: int, timeout: float) -> float:
    """Wait until `jobs` jobs have ended; return when the last one did (monotonic); fail if any is stuck."""
    deadline = time.monotonic() + timeout
    while True:
        counts = job_counts(client)
        ended = sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
        if ended >= jobs:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"stuck: after {timeout:.0f} s only {ended} of {jobs} jobs ended ({counts})")
        time.sleep(0.5)


def list_all(client: httpx.Client) -> list[dict[str, Any]]:
    """Return every job of the tenant, following the cursor."""
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params).json()
        jobs += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return jobs


def check(results: list[dict[str, Any]], client: httpx.Client, warm_ids: set[str]) -> int:
    """Assert none lost, none duplicated, none stuck; return the number of distinct jobs."""
    refused = [r for r in results if r["status"] != 202]
    assert not refused, f"{len(refused)} POSTs were not accepted, e.g. {refused[:3]}"
    by_key: dict[str, set[str]] = {}
    for r in results:
        by_key.setdefault(r["key"], set()).add(r["id"])
    split = {k: ids for k, ids in by_key.items() if len(ids) != 1}
    assert not split, f"{len(split)} Idempotency-Keys made more than one job, e.g. {list(split.items())[:3]}"
    ids = [next(iter(v)) for v in by_key.values()]
    assert len(set(ids)) == len(ids), "two Idempotency-Keys answered with the same job"
    listed = [j for j in list_all(client) if j["id"] not in warm_ids]
    assert sorted(j["id"] for j in listed) == sorted(ids), (
        f"the tenant holds {len(listed)} jobs, the POSTs made {len(ids)}"
    )
    bad = [j for j in listed if j["status"] != "succeeded" or j["attempt"] != 1]
    assert not bad, f"{len(bad)} jobs did not succeed on their first attempt, e.g. {bad[:2]}"
    for job_id in ids:
        types = Counter(e["type"] for e in client.get(f"/v1/jobs/{job_id}/events").json()["data"])
        once = {t: types[t] for t in ("job.queued", "job.started", "job.succeeded")}
        assert once == dict.fromkeys(once, 1), f"job {job_id} lifecycle events {dict(types)}"
    return len(ids)


def quantile(values: list[float], q: float) -> float:
    """Return the q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(posts: int, clients: int, timeout: float, concurrency: int) -> dict[str, Any]:
    """Start a stack, warm it, submit, wait, check; return the figures."""
    env = {"TRAINFORGE_TRAINER_MODULES": "tests.worker"}
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
        Stack(Path(tmp), env=env, worker_concurrency=concurrency) as stack,
    ):
        api_pid = stack.procs[0].pid
        with stack.client() as client:
            # Warm up: data paths, the fork server, the clients' connections; these jobs are not counted.
            warm_keys = [f"warm-{i}" for i in range(clients)]
            warm = asyncio.run(submit_all(stack.base_url, stack.token, warm_keys, clients))
            assert all(r["status"] == 202 for r in warm), [r for r in warm if r["status"] != 202][:3]
            warm_ids = {r["id"] for r in warm}
            wait_all_done(client, len(warm_ids), timeout)
            rss_before = rss_mb(api_pid)
            keys = submissions(posts)
            started = time.monotonic()
            results = asyncio.run(submit_all(stack.base_url, stack.token, keys, clients))
            submitted = time.monotonic()
            finished = wait_all_done(client, len(warm_ids) + len(set(keys)), timeout)
            rss_after = rss_mb(api_pid)
            jobs = check(results, client, warm_ids)
    latencies = [r["latency_s"] for r in results]
    return {
        "database": "postgresql" if os.environ.get("BENCH_DATABASE_URL") else "sqlite",
        "retried_503": sum(r["tries"] - 1 - r["timeouts"] for r in results),
        "retried_timeout": sum(r["timeouts"] for r in results),
        "posts": posts,
        "clients": clients,
        "worker_concurrency": concurrency,
        "jobs": jobs,
        "submit_p50_ms": statistics.median(latencies) * 1000,
        "submit_p99_ms": quantile(latencies, 0.99) * 1000,
        "submit_max_ms": max(latencies) * 1000,
        "posts_per_s": posts / (submitted - started),
        "jobs_done_per_s": jobs / (finished - started),
        "api_rss_before_mb": rss_before,
        "api_rss_after_mb": rss_after,
        "api_rss_growth_mb": rss_after - rss_before,
    }


@contextlib.contextmanager
def fresh_database(admin_url: str | None) -> Iterator[None]:
    """Point the stack at a new PostgreSQL database for the run (dropped after), or leave it on SQLite."""
    if admin_url is None:
        yield
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tf_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    os.environ["BENCH_DATABASE_URL"] = make_url(admin_url).set(database=name).render_as_string(False)
    try:
        yield
    finally:
        os.environ.pop("BENCH_DATABASE_URL")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    """Run the load, print the figures, and fail if a check or the RSS goal does."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for every job to end")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs the worker runs at once")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="run on a fresh database of this PostgreSQL server (default: a SQLite file)",
    )
    args = parser.parse_args()
    print(load_average())
    with fresh_database(args.postgres):
        figures = run(args.posts, args.clients, args.timeout, args.concurrency)
    print(f"load after: {load_average()}")
    print(
        f"{figures['posts']} POSTs from {figures['clients']} clients made {figures['jobs']} jobs: none lost,"
    )
    print(" none duplicated, none stuck (all succeeded on attempt 1, one job.started/succeeded each)")
    print(
        f"  database {figures['database']}; retries after a 503: {figures['retried_503']}, "
        f"after a {CLIENT_TIMEOUT_S:.0f} s client timeout: {figures['retried_timeout']}"
    )
    print(f"  submit latency max {figures['submit_max_ms']:.0f} ms")
    print(f"  submit latency p50 {figures['submit_p50_ms']:.0f} ms, p99 {figures['submit_p99_ms']:.0f} ms")
    print(f"  {figures['posts_per_s']:.0f} POSTs/s; {figures['jobs_done_per_s']:.1f} jobs finished/s")
    growth = figures["api_rss_growth_mb"]
    print(
        f"  API RSS {figures['api_rss_before_mb']:.0f} -> {figures['api_rss_after_mb']:.0f} MB "
        f"(+{growth:.1f} MB; goal < {RSS_GOAL_MB:.0f} MB: {'met' if growth < RSS_GOAL_MB else 'NOT met'})"
    )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load": load_average(), **figures}, indent=2))
    return 0 if growth < RSS_GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
