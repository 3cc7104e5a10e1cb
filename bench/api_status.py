"""Requests/s of GET /v1/jobs/{id} (token auth + a DB read) vs a bare FastAPI endpoint of the same size.

Both run as uvicorn subprocesses with the same settings; the load alternates between them in short
rounds so machine noise hits both alike. Prints both rates and their ratio (goal >= 0.5), and each
server's CPU time per request (Linux /proc), which other load on the machine does not skew.

    python bench/api_status.py [--database-url URL] [--seconds 3] [--rounds 4] [--connections 16]

The default database is a fresh SQLite file (what `trainforge up` uses); pass a PostgreSQL URL to
measure that instead (a fresh database is created and dropped next to the one named).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UVICORN_ARGS = ["--workers", "1", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log"]  # fmt: skip


def bare_app_factory():  # type: ignore[no-untyped-def]
    """Return a FastAPI app whose one endpoint returns the constant in BENCH_BARE_BODY."""
    from fastapi import FastAPI

    body = json.loads(os.environ["BENCH_BARE_BODY"])
    app = FastAPI()

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str) -> dict:
        """Return the constant body."""
        return body

    return app


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(target: str, env: dict[str, str], factory: bool = False) -> tuple[subprocess.Popen, int]:
    """Start uvicorn serving `target`; return the process and port once it listens."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), *UVICORN_ARGS]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None:
            raise RuntimeError(f"{target} exited with {proc.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"{target} did not start")


async def _client(port: int, request: bytes, stop_at: float, counts: list[int], status: bytes) -> None:
    """Send `request` over one keep-alive connection until `stop_at`, counting `status` answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
            )
            await reader.readexactly(length)
            counts[0 if head.startswith(b"HTTP/1.1 " + status) else 1] += 1
    finally:
        writer.close()


def measure_requests(
    port: int, request: bytes, seconds: float, connections: int, status: bytes = b"200"
) -> float:
    """Return `status`-answers per second for `seconds` of `request` over `connections` connections."""
    counts = [0, 0]

    async def run() -> None:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(port, request, stop_at, counts, status) for _ in range(connections)))

    start = time.monotonic()
    asyncio.run(run())
    if counts[1]:
        raise RuntimeError(f"{counts[1]} requests did not answer {status.decode()}: {request[:60]!r}")
    return counts[0] / (time.monotonic() - start)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system, all threads) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_with_cpu(
    proc: subprocess.Popen, port: int, path: str, token: str, seconds: float, connections: int
) -> tuple[float, float]:
    """Return (requests/s, server CPU microseconds per request) for `seconds` of load on `path`."""
    cpu_before, start = cpu_seconds(proc.pid), time.monotonic()
    rate = measure(port, path, token, seconds, connections)
    requests = rate * (time.monotonic() - start)
    return rate, (cpu_seconds(proc.pid) - cpu_before) / requests * 1e6


def measure(port: int, path: str, token: str, seconds: float, connections: int) -> float:
    """Return 200-answers per second for `seconds` of load on `path`."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    return measure_requests(port, request, seconds, connections)


@contextlib.contextmanager
def bench_database(url: str | None, tmp: Path) -> Iterator[str]:
    """Yield the URL of a migrated database of the benchmark's own; drop it after (PostgreSQL).

    `url` None is a SQLite file in `tmp`; a PostgreSQL URL names the server, where a fresh database
    is created for the run.
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from trainforge.db.session import dispose_engines

    url = url or f"sqlite:///{tmp / 'bench.db'}"
    pg_admin, pg_name = None, f"tf_bench_{uuid.uuid4().hex[:8]}"
    if url.startswith("postgresql"):
        pg_admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with pg_admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = make_url(url).set(database=pg_name).render_as_string(hide_password=False)
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        cfg.attributes["configure_logger"] = False
        command.upgrade(cfg, "head")
        yield url
    finally:
        dispose_engines()
        if pg_admin is not None:
            with pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            pg_admin.dispose()


def prepare_database(url: str) -> tuple[str, str]:
    """Create a token and a job with metrics in the (migrated) database; return (token, job_id)."""
    from trainforge.auth import create_token
    from trainforge.db.models import Job
    from trainforge.db.session import session_scope
    from trainforge.db.types import utcnow

    with session_scope(url) as s:
        token = create_token(s, "bench")
        from trainforge.auth import resolve_token

        tenant_id = resolve_token(s, token).tenant_id  # type: ignore[union-attr]
        job = Job(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            trainer="classify",
            trainer_ref="trainer_engine.models.classify:ClassificationTrainer",
            overrides={"data": "synthetic:classify", "epochs": 10, "imgsz": 32},
            resources={"queue": "jobs", "gpus": 0},
            tags=["bench"],
            status="running",
            started_at=utcnow(),
            epoch=3,
            epochs=10,
            metrics={"metrics/accuracy_top1": 0.61, "metrics/accuracy_top5": 0.97, "val/loss": 1.04},
        )
        s.add(job)
    return token, job.id


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="trainforge-bench-"))
    with bench_database(args.database_url, tmp) as url:
        return run(args, url, tmp)


def run(args: argparse.Namespace, url: str, tmp: Path) -> int:
    """Measure the API and the bare app on the database at `url`; print the figures."""
    env = {
        "TRAINFORGE_DATABASE_URL": url,
        "TRAINFORGE_ARTIFACTS_DIR": str(tmp / "artifacts"),
        "TRAINFORGE_REDIS_URL": os.environ.get("TRAINFORGE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    procs = []
    try:
        token, job_id = prepare_database(url)
        api_proc, api_port = start_server("api.main:app", env)
        procs.append(api_proc)
        import httpx

        real = httpx.get(
            f"http://127.0.0.1:{api_port}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}
        )
        real.raise_for_status()
        bare_proc, bare_port = start_server(
            "bench.api_status:bare_app_factory", {**env, "BENCH_BARE_BODY": real.text}, factory=True
        )
        procs.append(bare_proc)
        path = f"/v1/jobs/{job_id}"
        bare_body = httpx.get(f"http://127.0.0.1:{bare_port}{path}").content
        measure(api_port, path, token, 1.0, args.connections)  # warm both up
        measure(bare_port, path, token, 1.0, args.connections)
        api_rates, bare_rates, api_cpu, bare_cpu = [], [], [], []
        for _ in range(args.rounds):
            rate, cpu = measure_with_cpu(bare_proc, bare_port, path, token, args.seconds, args.connections)
            bare_rates.append(rate)
            bare_cpu.append(cpu)
            rate, cpu = measure_with_cpu(api_proc, api_port, path, token, args.seconds, args.connections)
            api_rates.append(rate)
            api_cpu.append(cpu)
        api_rps, bare_rps = sum(api_rates) / len(api_rates), sum(bare_rates) / len(bare_rates)
        api_us, bare_us = sum(api_cpu) / len(api_cpu), sum(bare_cpu) / len(bare_cpu)
        db = "postgresql" if url.startswith("postgresql") else "sqlite"
        print(f"response bytes: api {len(real.content)}, bare {len(bare_body)}; database: {db}")
        print(f"uvicorn {' '.join(UVICORN_ARGS)}; {args.connections} connections, {args.rounds} rounds")
        print(f"GET /v1/jobs/{{id}} (auth + DB read): {api_rps:8.0f} req/s  {[round(r) for r in api_rates]}")
        print(f"bare FastAPI constant:               {bare_rps:8.0f} req/s  {[round(r) for r in bare_rates]}")
        print(f"ratio: {api_rps / bare_rps:.2f} (goal >= 0.5)")
        # On a busy machine req/s also measures how the scheduler shares the CPUs (the bare app's
        # thread-pool endpoint has two runnable threads, the API's event loop one); CPU time per
        # request is what each server costs, whatever else runs.
        print(f"server CPU per request: api {api_us:.0f} us, bare {bare_us:.0f} us; "
              f"cost ratio bare/api {bare_us / api_us:.2f}; {os.getloadavg()[0]:.1f} load on "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        return 0
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
