"""POST /v1/jobs per second for a tenant whose limits take the locked path vs. one with bounds only.

One uvicorn API (the real app). Tenant "plain" has the operator's bounds only (overrides checked, no
lock); tenant "limited" has max_queued_jobs (the tenant row locked and its waiting jobs counted in
each submit) and post_rate_per_minute (one Redis EVAL per POST), both too high to refuse anything.
Rounds alternate between the two so machine noise hits both alike; prints each round, the medians
and their ratio (limited / plain).

    python bench/submit_limits.py [--database-url URL] [--seconds 3] [--rounds 3] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_status import bench_database, measure_requests, start_server  # noqa: E402

BODY = json.dumps(
    {
        "trainer": "classify",
        "overrides": {"data": "synthetic:classify?train=64&val=16", "epochs": 3, "imgsz": 32},
    }
).encode()


def measure(port: int, token: str, seconds: float, connections: int) -> float:
    """Return accepted POSTs per second for `seconds` of load."""
    request = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    return measure_requests(port, request, seconds, connections, status=b"202")


def prepare(url: str) -> tuple[str, str]:
    """Create the two tenants' tokens and the limited tenant's row; return (plain, limited)."""
    from trainforge.auth import create_token, get_or_create_tenant
    from trainforge.db.session import session_scope
    from trainforge.tenant_limits import set_limits

    with session_scope(url) as s:
        plain = create_token(s, "plain")
        limited = create_token(s, "limited")
        set_limits(
            s,
            get_or_create_tenant(s, "limited").id,
            {"max_queued_jobs": 10**6, "post_rate_per_minute": 10**6},
        )
    return plain, limited


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="trainforge-bench-"))
    with bench_database(args.database_url, tmp) as url:
        return run(args, url, tmp)


def run(args: argparse.Namespace, url: str, tmp: Path) -> int:
    """Measure the two tenants' submit rates on the database at `url`; print the figures."""
    # A Redis database of its own: the run_job messages of the submitted jobs are dropped at the end.
    redis_base = urlsplit(os.environ.get("TRAINFORGE_REDIS_URL", "redis://127.0.0.1:6379"))
    redis_url = urlunsplit(redis_base._replace(path=f"/{random.randint(1, 15)}"))
    env = {
        "TRAINFORGE_DATABASE_URL": url,
        "TRAINFORGE_ARTIFACTS_DIR": str(tmp / "a"),
        "TRAINFORGE_REDIS_URL": redis_url,
    }
    proc = None
    try:
        plain, limited = prepare(url)
        proc, port = start_server("api.main:app", env)
        measure(port, plain, 1.0, args.connections)  # warm up both paths
        measure(port, limited, 1.0, args.connections)
        rates: dict[str, list[float]] = {"plain": [], "limited": []}
        for round_ in range(args.rounds):
            for name, token in (("plain", plain), ("limited", limited))[:: 1 if round_ % 2 == 0 else -1]:
                rates[name].append(measure(port, token, args.seconds, args.connections))
            print(
                f"round {round_ + 1}: plain {rates['plain'][-1]:.0f}/s  limited {rates['limited'][-1]:.0f}/s"
            )
        p, lim = statistics.median(rates["plain"]), statistics.median(rates["limited"])
        print(f"median: plain {p:.0f} POST/s, limited {lim:.0f} POST/s, ratio {lim / p:.2f}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  database: {url.split(':')[0]}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
