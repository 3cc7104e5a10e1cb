"""The outcome file: what the child leaves for its supervisor, written atomically, read leniently."""

from __future__ import annotations

from trainforge.rundir import RunDir
from worker.outcome import Outcome, clear_outcome, read_outcome, write_outcome


def test_outcome_file_round_trip(tmp_path):
    run = RunDir(tmp_path)
    assert read_outcome(run) is None
    write_outcome(run, Outcome(ok=True, stop_reason="signal", best="weights/best.pt", timings={"a": 1.0}))
    assert run.outcome.is_file()
    back = read_outcome(run)
    assert back == Outcome(ok=True, stop_reason="signal", best="weights/best.pt", timings={"a": 1.0})
    clear_outcome(run)
    assert read_outcome(run) is None


def test_a_torn_outcome_file_reads_as_none(tmp_path):
    (tmp_path / ".outcome.json").write_text('{"ok": tr')
    assert read_outcome(RunDir(tmp_path)) is None
