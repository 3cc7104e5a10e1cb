"""What people see: tables, job blocks, epoch lines with a progress bar, event lines."""

from __future__ import annotations

import pytest

from trainforge.cli import output
from trainforge.cli.follow import follow_line

EPOCH = {
    "epoch": 2,
    "epochs": 4,
    "losses": {"train/loss": 0.41234},
    "metrics": {"metrics/accuracy_top1": 0.8125, "metrics/accuracy_top5": 1.0},
    "fitness": 0.9,
    "best_fitness": 0.9,
}


def test_table_aligns_columns_and_shows_missing_as_dash() -> None:
    text = output.table([("a1", None, ["x", "y"]), ("b", "long value", [])], ("id", "name", "tags"))
    assert text.splitlines() == [
        "ID  NAME        TAGS",
        "a1  -           x,y",
        "b   long value  -",
    ]


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.0, "[" + "." * 24 + "]   0%"),
        (0.5, "[" + "#" * 12 + "." * 12 + "]  50%"),
        (1.7, "[" + "#" * 24 + "] 100%"),
    ],
)
def test_bar(fraction: float, expected: str) -> None:
    assert output.bar(fraction) == expected


def test_epoch_line_has_bar_losses_metrics_and_best_mark() -> None:
    line = output.epoch_line(EPOCH)
    assert line.startswith("epoch 2/4 [" + "#" * 12)
    assert "50%" in line
    assert "loss 0.4123  accuracy_top1 0.8125  accuracy_top5 1" in line
    assert line.endswith("*best")
    assert "*best" not in output.epoch_line({**EPOCH, "fitness": 0.5})
    assert output.epoch_line({"epoch": 1}) == "epoch 1"


def test_event_line_summarises_epochs_errors_and_other_data() -> None:
    event = {
        "seq": 7,
        "type": "on_fit_epoch_end",
        "created_at": "2026-01-02T03:04:05.678+00:00",
        "data": EPOCH,
    }
    assert output.event_line(event) == (
        "   7  2026-01-02 03:04:05  on_fit_epoch_end        epoch 2/4  loss 0.4123  accuracy_top1 0.8125"
        "  accuracy_top5 1"
    )
    failed = {
        "seq": 9,
        "type": "job.failed",
        "created_at": None,
        "data": {"error": "RuntimeError: boom\n  at x"},
    }
    assert output.event_line(failed).endswith("job.failed              RuntimeError: boom at x")
    saved = {"seq": 3, "type": "on_model_save", "data": {"last": "weights/last.pt"}}
    assert output.event_summary(saved) == '{"last":"weights/last.pt"}'
    assert len(output.event_summary({"type": "x", "data": {"k": "v" * 500}})) == 100


def test_job_block_shows_interesting_fields_only() -> None:
    job = {
        "id": "j1",
        "trainer": "classify",
        "status": "running",
        "epoch": 1,
        "epochs": 4,
        "progress": {"epoch": 2, "epochs": 4, "batch": 5, "batches": 10},
        "metrics": {"metrics/accuracy_top1": 0.5},
        "links": {"best": "/v1/jobs/j1/artifacts/best.pt"},
        "tags": ["a", "b"],
        "error": None,
        "created_at": "2026-01-02T03:04:05Z",
    }
    lines = output.job_block(job).splitlines()
    assert lines[0] == "id       j1"
    assert "status   running" in lines
    assert "epoch    1/4 [" + "#" * 9 + "." * 15 + "]  38%" in lines  # (1 + 5/10) / 4 of the run
    assert "metrics  accuracy_top1 0.5" in lines
    assert "best     /v1/jobs/j1/artifacts/best.pt" in lines
    assert "tags     a, b" in lines
    assert "created  2026-01-02 03:04:05" in lines
    assert not any(line.startswith(("error", "name", "last")) for line in lines)


@pytest.mark.parametrize(
    ("job", "fraction"),
    [
        ({"epoch": None, "epochs": None}, None),
        ({"epoch": 3, "epochs": 4}, 0.75),
        ({"epoch": 1, "epochs": 4, "progress": {"losses": {"train/loss": 0.5}}}, 0.25),  # no batch count
        ({"epoch": 0, "epochs": 4, "progress": {"batch": 2, "batches": 4, "epoch": 1}}, 0.125),
    ],
)
def test_progress_fraction(job: dict, fraction: float | None) -> None:
    assert output.progress_fraction(job) == fraction


def test_jobs_and_trainers_tables() -> None:
    jobs = [{"id": "j1", "name": None, "trainer": "classify", "status": "queued", "tags": ["x"]}]
    assert output.jobs_table(jobs).splitlines()[1].split() == ["j1", "-", "classify", "queued", "-", "-", "x"]
    trainers = [
        {"name": "classify", "task": "classify", "ref": "m:C", "overrides": {"epochs": {}, "lr0": {}}}
    ]
    assert output.trainers_table(trainers).splitlines()[1].split() == ["classify", "classify", "m:C", "2"]
    schema = {"epochs": {"type": "int", "default": 100, "help": "epochs to train"}, "amp": {"default": True}}
    rows = output.schema_table(schema).splitlines()
    assert rows[1].split() == ["epochs", "int", "100", "epochs", "to", "train"]
    assert rows[2].split() == ["amp", "-", "true", "-"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "job.started", "data": {}}, "job J started"),
        ({"type": "on_train_batch_end", "data": {}}, None),
        ({"type": "on_train_epoch_end", "data": EPOCH}, None),  # the fit-epoch line carries the epoch
        ({"type": "job.failed", "data": {"error": "ValueError: bad"}}, "job J failed: ValueError: bad"),
        ({"type": "job.cancelled", "data": {}}, "job J cancelled"),
        (
            {"type": "job.succeeded", "data": {"best": "weights/best.pt"}},
            "job J succeeded  best: /v1/jobs/J/artifacts/best.pt",
        ),
        (
            {"type": "job.retrying", "data": {}},
            "job J is retrying (its worker was lost); it resumes from last.pt",
        ),
    ],
)
def test_follow_line(event: dict, expected: str | None) -> None:
    assert follow_line(event, "J") == expected


@pytest.mark.parametrize(
    ("key", "short"),
    [
        ("metrics/accuracy_top1", "accuracy_top1"),
        ("train/loss", "loss"),
        ("val/loss", "val_loss"),
        ("val/box_loss", "val_box_loss"),
        ("metrics/mAP50-95(B)", "mAP50-95(B)"),
        ("fitness", "fitness"),
    ],
)
def test_short_keys_keep_training_and_validation_losses_apart(key: str, short: str) -> None:
    assert output.short_key(key) == short
