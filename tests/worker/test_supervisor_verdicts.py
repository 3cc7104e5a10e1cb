"""How the supervisor reads a run's end: exit code + outcome file + why it stopped the child."""

from __future__ import annotations

import signal

import pytest

from trainforge.jobs.state import JobStatus
from trainforge.settings import Settings
from worker.launcher import UNKNOWN_EXIT
from worker.outcome import Outcome, clear_outcome, read_outcome, write_outcome
from worker.supervisor import CANCEL, TIME, decide, describe_exit, time_limit_s

S = JobStatus
DONE = Outcome(ok=True, stop_reason=None)
STOPPED = Outcome(ok=True, stop_reason="signal")
EARLY = Outcome(ok=True, stop_reason="patience")
CRASHED = Outcome(ok=False, error="ValueError: bad data")
NOTHING = Outcome()


@pytest.mark.parametrize(
    ("code", "outcome", "reason", "status", "error"),
    [
        (0, DONE, None, S.SUCCEEDED, None),
        (0, EARLY, None, S.SUCCEEDED, None),
        (1, CRASHED, None, S.FAILED, "ValueError: bad data"),
        (-signal.SIGKILL, NOTHING, None, S.FAILED, "killed by SIGKILL (out of memory?)"),
        (-signal.SIGSEGV, NOTHING, None, S.FAILED, "killed by SIGSEGV"),
        (3, NOTHING, None, S.FAILED, "exited with code 3"),
        (UNKNOWN_EXIT, NOTHING, None, S.FAILED, "without reporting an exit status"),
        (UNKNOWN_EXIT, DONE, None, S.SUCCEEDED, None),
        # stopped by a signal nobody here sent: the worker is shutting down, resume elsewhere
        (0, STOPPED, None, S.RETRYING, None),
        (-signal.SIGTERM, NOTHING, None, S.RETRYING, None),
        (0, STOPPED, CANCEL, S.CANCELLED, None),
        (-signal.SIGKILL, NOTHING, CANCEL, S.CANCELLED, None),
        (-signal.SIGTERM, NOTHING, CANCEL, S.CANCELLED, None),
        (0, DONE, CANCEL, S.SUCCEEDED, None),  # finished before it noticed the cancel
        (0, STOPPED, TIME, S.FAILED, "time limit of 2 s"),
        (-signal.SIGKILL, NOTHING, TIME, S.FAILED, "ran past its time limit"),
        (0, DONE, TIME, S.SUCCEEDED, None),
    ],
)
def test_verdicts(code, outcome, reason, status, error):
    verdict = decide(code, outcome, reason, limit_s=2.0)
    assert verdict.status is status
    if error is None:
        assert verdict.error is None
    else:
        assert error in verdict.error


def test_describe_exit_names_the_signal():
    assert describe_exit(-signal.SIGTERM) == "the training process was killed by SIGTERM"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({}, None), ({"time": 0}, None), ({"time": 1.0}, 3600 * 1.1 + 60)],
)
def test_time_limit_follows_the_trainers_own_time_budget(overrides, expected):
    assert time_limit_s(overrides, Settings()) == expected


def test_outcome_file_round_trip(tmp_path):
    assert read_outcome(tmp_path) is None
    write_outcome(
        tmp_path, Outcome(ok=True, stop_reason="signal", best="weights/best.pt", timings={"a": 1.0})
    )
    back = read_outcome(tmp_path)
    assert back == Outcome(ok=True, stop_reason="signal", best="weights/best.pt", timings={"a": 1.0})
    clear_outcome(tmp_path)
    assert read_outcome(tmp_path) is None


def test_a_torn_outcome_file_reads_as_none(tmp_path):
    (tmp_path / ".outcome.json").write_text('{"ok": tr')
    assert read_outcome(tmp_path) is None
