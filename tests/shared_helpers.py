"""Helpers every test area may import as `from shared_helpers import ...` (tests/ is on sys.path).

Import these from here, not with `from conftest import ...`: pytest imports each conftest.py outside a
package as the module `conftest` and drops the previous one, so in a run of the whole suite
`conftest` can be tests/trainer_engine/detect/conftest.py by the time another area imports it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something listens on 127.0.0.1:`port`; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextlib.contextmanager
def private_redis(binary: str, workdir: Path) -> Iterator[str]:
    """Run a redis-server of this test's own on a free port (nothing kept on disk); yield its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def footprint(database_url: str, redis_url: str) -> dict[str, int]:
    """Return what a request could have left behind: the rows of every table and the messages of every queue.

    Compare the footprint before and after a refused request: it must not have changed.
    """
    import redis
    from sqlalchemy import func, select

    from trainforge.db.models import Base
    from trainforge.db.session import get_engine

    counts: dict[str, int] = {}
    with get_engine(database_url).connect() as conn:
        for table in Base.metadata.sorted_tables:
            counts[f"rows:{table.name}"] = int(conn.scalar(select(func.count()).select_from(table)) or 0)
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter():
        if client.type(key) == b"list":  # a Celery queue (kombu keeps its bindings in sets)
            counts[f"queue:{key.decode(errors='replace')}"] = int(client.llen(key))
    return counts


class PrivatePostgres:
    """A PostgreSQL server of one test's own (initdb in a temp folder, a free port) to stop and start.

    Runs as the `postgres` user when the tests run as root (the server refuses to run as root); its
    folder is a fresh one under the system temp dir, which that user can reach (pytest's is root-only).
    """

    def __init__(self) -> None:
        import glob

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise FileNotFoundError("no /usr/lib/postgresql/*/bin/pg_ctl: PostgreSQL server binaries missing")
        self.bin = Path(found[-1]).parent
        self.root: Path | None = None
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        """Return the cluster's folder."""
        assert self.root is not None, "call init() first"
        return self.root / "pgdata"

    def _run(self, tool: str, *args: str) -> None:
        """Run a server tool as the server's user."""
        import os

        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        """Create the cluster (trust auth, no fsync: nothing here needs to survive a crash of the machine)."""
        import os
        import shutil
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="tf-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -F"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop the server at once, as a crash would (clients see their connections drop)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        import contextlib
        import shutil

        if self.root is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
