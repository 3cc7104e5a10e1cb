"""Helpers every test area may import as `from shared_helpers import ...` (tests/ is on sys.path).

Import these from here, not with `from conftest import ...`: pytest imports each conftest.py outside a
package as the module `conftest` and drops the previous one, so in a run of the whole suite
`conftest` can be tests/trainer_engine/detect/conftest.py by the time another area imports it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The smallest real classification run: 2 classes of 16x16 images, one batch of 8 per split epoch.
TINY_CLASSIFY = {
    "data": "synthetic:classify?classes=2&train=16&val=8&size=16",
    "imgsz": 16,
    "batch": 8,
    "workers": 0,
    "plots": False,
}


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


def alembic_upgrade(url: str) -> None:
    """Apply every migration to the database at `url` (what `alembic upgrade head` does)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def run_in_threads(*calls: Callable[[], object], timeout: float = 60.0) -> list[object]:
    """Run every call on its own thread at once; return their results in order.

    A thread's exception is only a warning in pytest: collect them and fail here with the first.
    """
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # collected, raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), f"a thread still runs after {timeout} s"
    if errors:
        raise errors[0]
    return results


class EmbeddedRedis:
    """A redis-server child on a fixed port that a test can stop and start again (no persistence)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it listens."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        """Stop the server; every queued message is lost, as in a crash without persistence."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
