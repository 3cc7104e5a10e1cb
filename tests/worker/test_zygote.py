"""The warm fork server: children in their own session, exit codes, signals, supervisor loss, shutdown."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from worker.launcher import ForkedChild
from worker.zygote import ZygoteClient

ENTRIES = "tests.worker.entries"


@pytest.fixture(scope="module")
def zygote():
    """Yield a running fork server that preloads only the test entries."""
    server = ZygoteClient(preload=(ENTRIES,))
    server.start()
    assert server.wait_ready(30)
    yield server
    server.stop()


def spawn(zygote: ZygoteClient, tmp_path: Path, entry: str, arg: Path) -> ForkedChild:
    """Fork `entry(arg)` with its output in tmp_path/out.log."""
    conn, pid = zygote.spawn(str(arg), str(tmp_path / "out.log"), os.getcwd(), entry=f"{ENTRIES}:{entry}")
    return ForkedChild(conn, pid)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll `predicate` until true or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def gone(pid: int) -> bool:
    """Return whether no process `pid` exists (the server reaps its children)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_child_leads_its_own_session_and_reports_its_exit_code(zygote, tmp_path):
    child = spawn(zygote, tmp_path, "report", tmp_path / "ids")
    assert child.wait(10) == 3
    pid, pgid, sid = map(int, (tmp_path / "ids").read_text().split())
    assert pid == pgid == sid == child.pid
    assert "hello from the child" in (tmp_path / "out.log").read_text()
    child.close()


def test_an_exception_in_the_child_is_exit_code_1_with_the_message_in_the_log(zygote, tmp_path):
    child = spawn(zygote, tmp_path, "raise_error", tmp_path / "unused")
    assert child.wait(10) == 1
    assert "RuntimeError: boom" in (tmp_path / "out.log").read_text()
    child.close()


def test_signal_to_the_group_is_reported_as_negative_code(zygote, tmp_path):
    child = spawn(zygote, tmp_path, "sleep_watched", tmp_path / "pid")
    assert wait_for((tmp_path / "pid").exists)
    assert child.wait(0.1) is None
    child.signal_group(signal.SIGTERM)
    assert child.wait(10) == -signal.SIGTERM
    child.close()


def test_child_kills_itself_when_its_supervisor_goes_away(zygote, tmp_path):
    child = spawn(zygote, tmp_path, "sleep_watched", tmp_path / "pid")
    assert wait_for((tmp_path / "pid").exists)
    child.close()  # what the kernel does when the supervisor process dies
    assert wait_for(lambda: gone(child.pid))
    assert "supervising worker is gone" in (tmp_path / "out.log").read_text()


def test_terminate_children_stops_every_child(zygote, tmp_path):
    children = [spawn(zygote, tmp_path, "sleep_watched", tmp_path / f"pid{i}") for i in range(2)]
    assert wait_for(lambda: all((tmp_path / f"pid{i}").exists() for i in range(2)))
    zygote.terminate_children()
    assert [c.wait(10) for c in children] == [-signal.SIGTERM] * 2
    for c in children:
        c.close()


def test_server_exits_when_its_stdin_closes():
    server = ZygoteClient(preload=())
    server.start()
    assert server.wait_ready(30)
    assert server.alive()
    server.stop(timeout=10)
    assert server.process is not None and server.process.returncode == 0
    assert not os.path.exists(server.sock_path)
