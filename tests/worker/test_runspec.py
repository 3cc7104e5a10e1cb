"""The run description: decided once from the job and the run folder, carried whole over either channel."""

from __future__ import annotations

import pytest

from trainforge.rundir import RunDir
from worker.launcher import child_command
from worker.runspec import RunSpec


def build(run_dir: RunDir, **changes: object) -> RunSpec:
    """Build a spec for job "j" with `changes` to the defaults."""
    values: dict = {
        "job_id": "j",
        "attempt": 2,
        "lease_owner": "host:1:abc",
        "trainer_ref": "m:T",
        "overrides": {"epochs": 3},
        "gpus": 0,
        "run_dir": run_dir,
        **changes,
    }
    return RunSpec.build(**values)


def test_a_run_without_a_checkpoint_starts_fresh_in_its_folder(tmp_path):
    run_dir = RunDir.of(tmp_path, "j")
    spec = build(run_dir)
    assert spec.resume is False and "resume" not in spec.overrides
    assert spec.overrides == {"epochs": 3, "project": str(tmp_path), "name": "j", "exist_ok": True}
    assert (spec.attempt, spec.lease_owner, spec.world_size) == (2, "host:1:abc", 1)


def test_a_run_with_last_pt_resumes(tmp_path):
    run_dir = RunDir.of(tmp_path, "j")
    run_dir.weights.mkdir(parents=True)
    run_dir.last.write_bytes(b"x")
    spec = build(run_dir)
    assert spec.resume is True and spec.overrides["resume"] is True


@pytest.mark.parametrize(("gpus", "world_size"), [(0, 1), (1, 1), (4, 4)])
def test_one_process_per_gpu(tmp_path, gpus, world_size):
    assert build(RunDir(tmp_path), gpus=gpus).world_size == world_size


def test_the_spec_survives_the_fork_message_and_the_spec_file(tmp_path):
    spec = build(RunDir.of(tmp_path, "j"), overrides={"epochs": 3, "nested": {"a": [1, 2]}})
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert RunSpec.read(spec.write()) == spec
    assert spec.run_dir.spec.is_file()


def test_a_fresh_child_is_named_its_spec_file(tmp_path):
    spec_file = tmp_path / ".runspec.json"
    assert child_command(spec_file, 1)[-3:] == ["-m", "worker.child", str(spec_file)]
    torchrun = child_command(spec_file, 2)
    assert "--nproc_per_node=2" in torchrun and torchrun[-1] == str(spec_file)
