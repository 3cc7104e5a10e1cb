"""ClassificationTrainer end to end on tiny synthetic data: the guide's examples, callbacks, checkpoints."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from classify_helpers import TINY, tiny_overrides

from trainer_engine.engine.callbacks import TRAINER_EVENTS
from trainer_engine.models.classify import (
    ClassificationPredictor,
    ClassificationTrainer,
    ClassificationValidator,
)
from trainer_engine.nn.classification import ClassificationModel
from trainer_engine.utils.checkpoint import CHECKPOINT_KEYS, load_checkpoint, read_summary


class MyModel(ClassificationModel):
    """A user's own model class, as the guide's `get_model` returns."""

    built = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        MyModel.built += 1


class CustomTrainer(ClassificationTrainer):
    def get_model(self, cfg=None, weights=None, verbose=True):
        return MyModel(cfg, nc=self.data["nc"], verbose=verbose)


def record_all(trainer: ClassificationTrainer) -> list[tuple[str, int]]:
    """Append (event, epoch) for every trainer event to the returned list."""
    seen: list[tuple[str, int]] = []
    for event in TRAINER_EVENTS:
        trainer.add_callback(event, lambda t, e=event: seen.append((e, t.epoch)))
    return seen


def test_guide_example_custom_model_and_callback(tmp_path: Path) -> None:
    logged: list[tuple[Path, int, dict[str, float], bool]] = []

    def log_model(trainer: ClassificationTrainer) -> None:
        logged.append((trainer.last, trainer.epoch, dict(trainer.metrics), trainer.last.exists()))

    trainer = CustomTrainer(overrides=tiny_overrides(tmp_path, epochs=2))
    built_ins = list(trainer.callbacks["on_train_epoch_end"])  # the progress bar's
    trainer.add_callback("on_train_epoch_end", log_model)
    assert trainer.callbacks["on_train_epoch_end"] == [*built_ins, log_model]  # appended; built-ins stay
    before = MyModel.built
    trainer.train()

    assert MyModel.built > before and isinstance(trainer.model, MyModel)
    assert [e for _, e, _, _ in logged] == [0, 1]
    assert trainer.best.is_file() and trainer.last.is_file()
    assert trainer.best == tmp_path / "runs" / "train" / "weights" / "best.pt"
    assert set(trainer.metrics) >= {"metrics/accuracy_top1", "metrics/accuracy_top5"}
    rows = list(csv.DictReader((trainer.save_dir / "results.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train/loss", "val/loss", "metrics/accuracy_top1", "lr/pg0"} <= set(rows[0])


def test_events_fire_in_order_once_per_epoch(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=2))
    seen = record_all(trainer)
    trainer.train()
    names = [e for e, _ in seen]
    assert names[:3] == ["on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start"]
    assert names[-2:] == ["on_train_end", "teardown"]
    for event in ("on_train_epoch_start", "on_train_epoch_end", "on_model_save", "on_fit_epoch_end"):
        assert [ep for e, ep in seen if e == event] == [0, 1], event
    assert names.count("on_params_update") == 2
    # Fired at every optimizer step, not only listed (batch 16, nbs 16: one step per batch).
    batches = names.count("on_train_batch_end")
    assert names.count("optimizer_step") == names.count("on_before_zero_grad") == batches > 0
    epoch_end = [
        e
        for e in names
        if e in ("on_train_epoch_end", "on_model_save", "on_fit_epoch_end", "on_params_update")
    ]
    assert epoch_end[:4] == ["on_train_epoch_end", "on_model_save", "on_fit_epoch_end", "on_params_update"]
    step = names.index("optimizer_step")
    assert names[step + 1] == "on_before_zero_grad"


def test_checkpoint_is_plain_and_loads_with_weights_only(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=1, save_period=1))
    trainer.train()
    ckpt = torch.load(trainer.last, map_location="cpu", weights_only=True)
    for key in (
        "epoch",
        "best_fitness",
        "model",
        "ema",
        "optimizer",
        "train_args",
        "train_metrics",
        "date",
        "version",
    ):
        assert key in ckpt, key
    assert ckpt["epoch"] == 0 and ckpt["train_args"]["epochs"] == 1
    assert "fitness" in ckpt["train_metrics"] and "metrics/accuracy_top1" in ckpt["train_metrics"]
    assert (trainer.wdir / "epoch1.pt").is_file()
    model = ClassificationModel.from_checkpoint(trainer.best)
    assert model.names == {0: "checker", 1: "disk", 2: "hstripes", 3: "vstripes"}


def test_resume_continues_the_named_run_and_extends_epochs(tmp_path: Path) -> None:
    first = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=2))
    first.train()
    # A newer run elsewhere under the working folder must not be the one resumed.
    ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=1, name="other")).train()

    resumed = ClassificationTrainer(overrides={**tiny_overrides(tmp_path, epochs=4), "resume": True})
    seen = record_all(resumed)
    resumed.train()
    assert resumed.save_dir == first.save_dir
    assert resumed.start_epoch == 2
    assert [ep for e, ep in seen if e == "on_fit_epoch_end"] == [2, 3]
    assert load_checkpoint(resumed.last)["epoch"] == 3
    rows = list(csv.DictReader((first.save_dir / "results.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]


def test_resume_from_a_path_of_a_finished_run_trains_nothing_and_a_larger_epochs_trains_on(
    tmp_path: Path,
) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=1))
    trainer.train()
    done = ClassificationTrainer(overrides={"resume": str(trainer.last), "data": TINY})
    seen = record_all(done)
    done.train()
    assert [e for e, _ in seen] == [
        "on_pretrain_routine_start",
        "on_pretrain_routine_end",
        "on_train_start",
        "on_train_end",
        "teardown",
    ]
    assert (done.epoch, done.epochs, done.stop_reason) == (0, 1, None)
    assert load_checkpoint(trainer.last)["epoch"] == 0
    again = ClassificationTrainer(overrides={"resume": str(trainer.last), "data": TINY, "epochs": 2})
    again.train()
    assert load_checkpoint(again.last)["epoch"] == 1


def test_stop_request_ends_at_a_batch_boundary_and_saves_last(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=3))
    seen = record_all(trainer)

    def stop_on_second_batch_of_epoch_two(t: ClassificationTrainer) -> None:
        if t.epoch == 1 and sum(1 for e, ep in seen if e == "on_train_batch_end" and ep == 1) == 2:
            t.stop = True

    trainer.add_callback("on_train_batch_end", stop_on_second_batch_of_epoch_two)
    trainer.train()
    names = [e for e, _ in seen]
    assert trainer.stop_reason == "stop"
    assert sum(1 for e, ep in seen if e == "on_train_batch_end" and ep == 1) == 2
    assert [ep for e, ep in seen if e == "on_fit_epoch_end"] == [0]  # the cut epoch is not reported as done
    assert names[-2:] == ["on_train_end", "teardown"]
    assert load_checkpoint(trainer.last)["epoch"] == 0  # a resume trains epoch 2 again


def test_sigterm_stops_like_a_stop_request(tmp_path: Path) -> None:
    import os
    import signal

    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=3))
    trainer.add_callback("on_train_batch_end", lambda t: os.kill(os.getpid(), signal.SIGTERM))
    trainer.train()
    assert trainer.stop_reason == "signal" and trainer.last.is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored after train()


def test_patience_stops_early(tmp_path: Path) -> None:
    # lr so small nothing improves after the first epoch's fitness.
    trainer = ClassificationTrainer(
        overrides=tiny_overrides(tmp_path, epochs=6, patience=1, lr0=1e-9, optimizer="SGD", warmup_epochs=0)
    )
    trainer.train()
    assert trainer.stop_reason == "patience"
    assert load_checkpoint(trainer.last)["epoch"] < 5


def test_time_limit_stops(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=50, time=1e-7))
    trainer.train()
    assert trainer.stop_reason == "time"
    assert load_checkpoint(trainer.last)["epoch"] <= 1


def test_ddp_on_cpu_keeps_callbacks_in_rank_zero(tmp_path: Path) -> None:
    trainer = CustomTrainer(overrides=tiny_overrides(tmp_path, epochs=2, device="cpu", world_size=2))
    seen = record_all(trainer)
    trainer.train()
    assert [ep for e, ep in seen if e == "on_fit_epoch_end"] == [0, 1]
    assert [e for e, _ in seen][-2:] == ["on_train_end", "teardown"]
    # 64 images, batch 16 over 2 ranks: each rank reads 32 images in 4 batches of 8 per epoch.
    assert sum(1 for e, ep in seen if e == "on_train_batch_end" and ep == 0) == 4
    assert isinstance(trainer.model.module, MyModel)
    assert load_checkpoint(trainer.last)["epoch"] == 1 and trainer.best.is_file()


def test_validator_and_predictor_on_best(tmp_path: Path, data_dir: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=1))
    trainer.train()
    stats = ClassificationValidator(args={"model": str(trainer.best), "data": TINY, "imgsz": 16})()
    assert 0.0 <= stats["metrics/accuracy_top1"] <= 1.0 and "fitness" in stats
    folder = trainer.data["val"] / "disk"
    results = ClassificationPredictor(overrides={"model": str(trainer.best), "imgsz": 16})(folder)
    assert len(results) == len(list(folder.iterdir()))
    assert abs(float(results[0].probs.sum()) - 1.0) < 1e-5
    assert results[0].summary()["name"] in {"checker", "disk", "hstripes", "vstripes"}


class PlainModuleTrainer(ClassificationTrainer):
    """The guide's get_model returning the user's own plain nn.Module (images -> logits)."""

    def get_model(self, cfg=None, weights=None, verbose=True):
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, 2, 1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(8, self.data["nc"]),
        )


def test_plain_module_from_get_model_trains(tmp_path: Path) -> None:
    trainer = PlainModuleTrainer(overrides=tiny_overrides(tmp_path, epochs=1))
    trainer.train()
    assert isinstance(trainer.model.model, torch.nn.Sequential)
    assert "metrics/accuracy_top1" in trainer.metrics
    with pytest.raises(ValueError, match=r"custom class \(torch.nn.modules.container.Sequential\)"):
        ClassificationModel.from_checkpoint(trainer.best)


BAD_RUNS = [
    ({"data": "/nonexistent/ds"}, "dataset folder '/nonexistent/ds' not found"),
    ({"data": "synthetic:clasify"}, "unknown synthetic data set 'synthetic:clasify'"),
    ({"data": "synthetic:classify?classes=99"}, "classes=99 must be between 2 and 10"),
    ({"model": "resnet181"}, "unknown classification model 'resnet181'; did you mean 'resnet18'"),
    ({"model": "missing.yaml"}, "model config file 'missing.yaml' not found"),
    ({"model": "/nonexistent/best.pt"}, "checkpoint '/nonexistent/best.pt' not found"),
    ({"epochs": 0}, "invalid value for 'epochs': 0; expected int >= 1"),
    ({"optimizer": "Lion"}, "expected one of SGD, Adam, AdamW"),
    ({"device": "gpu"}, "invalid value for 'device': 'gpu'"),
    ({"device": "0"}, "CUDA is not available; use device=cpu"),
    ({"resume": True, "name": "never-ran"}, "cannot resume: checkpoint"),
    ({"resume": "NOT_A_CHECKPOINT"}, "cannot resume: cannot load checkpoint"),
    ({"freeze": 99}, "freeze=99: this model has 6 layers (0..5)"),
    ({"pretrained": "/nonexistent/w.pt"}, "checkpoint '/nonexistent/w.pt' not found"),
    ({"model": "NOT_A_CHECKPOINT"}, "cannot load checkpoint"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_RUNS, ids=[str(c) for c, _ in BAD_RUNS])
def test_bad_runs_fail_clearly_and_leave_no_run_folder(tmp_path: Path, changes: dict, message: str) -> None:
    if changes.get("device") == "0" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    for key in ("model", "resume"):
        if changes.get(key) == "NOT_A_CHECKPOINT":
            fake = tmp_path / "fake.pt"
            fake.write_text("not a checkpoint")
            changes = {key: str(fake)}
    overrides = tiny_overrides(tmp_path, **{"epochs": 1, **changes})
    with pytest.raises(ValueError, match=_literal(message)):
        ClassificationTrainer(overrides=overrides).train()
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))


def _literal(message: str) -> str:
    import re

    return re.escape(message)


def test_checkpoint_holds_exactly_the_declared_keys_and_summarises(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=1))
    trainer.train()
    assert set(load_checkpoint(trainer.last)) == CHECKPOINT_KEYS
    summary = read_summary(trainer.last)
    assert (summary.epoch, summary.epochs, summary.finished) == (1, 1, True)
    assert set(summary.metrics) >= {"metrics/accuracy_top1", "val/loss"} and "fitness" not in summary.metrics
    assert summary.fitness == trainer.fitness and summary.best_fitness == trainer.best_fitness
    assert set(summary.losses or {}) == {"train/loss"} and set(summary.lr or {}) == {
        "lr/pg0",
        "lr/pg1",
        "lr/pg2",
    }


def test_the_time_limit_resizes_epochs_in_one_place_and_the_schedule_follows(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=50, time=40 / 3600))
    trainer.train_time_start = time.time() - 10  # one epoch took 10 s: four fit in 40 s
    trainer.epoch = 0
    assert not trainer.should_stop(epoch_end=True)
    assert trainer.epochs == 4 and trainer.args.epochs == 50
    assert trainer.lr_factor(4) == pytest.approx(trainer.args.lrf)  # the LR schedule ends with the time
    trainer.epoch, trainer.train_time_start = 2, time.time() - 41  # out of time after the third epoch
    assert trainer.should_stop(epoch_end=True) and trainer.stop_reason == "time"
    assert trainer.epochs == 4  # not re-sized once the time is up
