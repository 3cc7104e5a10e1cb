"""Private PostgreSQL servers a test can stop and start (import as `from private_postgres import ...`).

`running_postgres()` initdb's a server of a test's own. The chaos trials, which need one each, initdb
once into a template (`make_template`, migrated by `trainforge migrate`, what the compose `migrate`
service runs) and copy it per trial (`copy_template`), which is several times faster.

`initdb` and `pg_ctl` come from the system's PostgreSQL (`/usr/lib/postgresql/*/bin`, or the PATH). The
server refuses to run as root, so when the tests run as root every server command runs as the
`postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
# Surviving a power cut costs time and proves nothing here: a server is thrown away with its folder.
# Commits still reach the OS before they return (synchronous_commit stays on), so a server killed
# as a crash would be (`stop("immediate")`) keeps every committed row, as a real one does.
FAST_SERVER = ["-c", "fsync=off", "-c", "full_page_writes=off"]


def find_bin(name: str) -> str | None:
    """Return the path of PostgreSQL's `name` program (the newest installed version), or None."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    return found[-1] if found else shutil.which(name)


def _version(path: str) -> float:
    """Return the major version in /usr/lib/postgresql/<version>/bin/..."""
    try:
        return float(Path(path).parts[-3])
    except (IndexError, ValueError):
        return 0.0


def server_user() -> str | None:
    """Return the user the server must run as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return "postgres"


def _run(args: list[str], timeout: float = 60.0) -> None:
    """Run a server command as the server user; fail with its output."""
    result = subprocess.run(
        args, user=server_user(), capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _give_to_server_user(path: Path) -> None:
    """Make `path` belong to the server user (only needed when we are root)."""
    user = server_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


class Postgres:
    """One PostgreSQL server in its own data folder, on its own port."""

    def __init__(self, datadir: Path, port: int | None = None) -> None:
        self.datadir = datadir
        self.port = port or free_port()
        self.pg_ctl = find_bin("pg_ctl") or "pg_ctl"

    @property
    def url(self) -> str:
        """Return the SQLAlchemy URL of the server's `postgres` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(
            ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c",
             f"unix_socket_directories={self.datadir}", *FAST_SERVER]
        )  # fmt: skip
        log = self.datadir / "server.log"
        _run([self.pg_ctl, "start", "-w", "-t", "30", "-D", str(self.datadir), "-l", str(log), "-o", options])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` disconnects every client at once, `immediate` is a crash."""
        _run([self.pg_ctl, "stop", "-w", "-t", "30", "-D", str(self.datadir), "-m", mode])

    def running(self) -> bool:
        """Return whether the server is up."""
        return (self.datadir / "postmaster.pid").exists()


def _initdb(datadir: Path) -> Postgres:
    """initdb a data folder at `datadir` (its parent must exist) and return its server, not started."""
    initdb = find_bin("initdb")
    if initdb is None:
        raise FileNotFoundError("initdb not found (install PostgreSQL's server package)")
    datadir.parent.chmod(0o755)  # the server user must reach its folders under ours
    _give_to_server_user(datadir.parent)
    _run([initdb, "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], 120)
    return Postgres(datadir)


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Yield a started, empty server of the caller's own; stop it and remove its folder after.

    Skips the test where PostgreSQL's server programs are not installed.
    """
    if find_bin("initdb") is None or find_bin("pg_ctl") is None:
        pytest.skip("this test needs PostgreSQL's initdb and pg_ctl (the postgresql server package)")
    base = Path(tempfile.mkdtemp(prefix="tf-pg-"))
    server: Postgres | None = None
    try:
        server = _initdb(base / "data")
        server.start()
        yield server
    finally:
        if server is not None and server.running():
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def make_template(base: Path) -> Path:
    """initdb a data folder under `base`, migrate it to head, stop it; return the folder."""
    template = base / "template"
    server = _initdb(template)
    server.start()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINFORGE_DATABASE_URL": server.url}
        migrated = subprocess.run(
            [sys.executable, "-m", "trainforge.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        if migrated.returncode != 0:
            raise RuntimeError(f"trainforge migrate failed on the template:\n{migrated.stderr[-2000:]}")
    finally:
        server.stop()
    return template


def copy_template(template: Path, datadir: Path) -> Postgres:
    """Copy the migrated template to `datadir` (a fresh server of the same schema) and return it."""
    datadir.parent.chmod(0o755)
    # `cp -a` keeps the owner and the 0700 mode the server insists on (as root too).
    subprocess.run(["cp", "-a", str(template), str(datadir)], check=True, timeout=60)
    return Postgres(datadir)
