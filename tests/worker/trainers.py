"""A torch-free trainer with the engine's trainer surface, for fast tests of the supervisor and the bridge.

It fires the engine's declared events exactly where the engine's train() does (the order written at
the top of trainer_engine.engine.callbacks; a cut epoch fires on_model_save but no epoch-end events),
sleeps `batch_s` per batch instead of computing, honours `trainer.stop` and SIGTERM at batch
boundaries like the engine, and writes weights/last.pt (and best.pt) with the engine's keys: with
torch.save where torch is loaded already (children of the fork server), else as JSON, which keeps
fresh-interpreter children torch-free.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from trainer_engine.engine.callbacks import CallbackMixin, default_callbacks


class TickTrainer(CallbackMixin):
    """Epochs of `batches` sleeping batches; fitness grows each epoch."""

    def __init__(
        self, cfg: Any = None, overrides: dict[str, Any] | None = None, _callbacks: Any = None
    ) -> None:
        self.args = dict(overrides or {})
        self.callbacks = default_callbacks()
        self.epochs = int(self.args.get("epochs", 2))
        self.batches = int(self.args.get("batches", 3))
        self.batch_s = float(self.args.get("batch_s", 0.01))
        self.save_dir = Path(self.args["project"]) / self.args["name"]
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.epoch, self.start_epoch = 0, 0
        self.metrics: dict[str, float] = {}
        self.fitness = self.best_fitness = None
        self.tloss = None
        self.lr = {"lr/pg0": 0.01}
        self.stop, self.stop_reason = False, None
        self.train_loader = range(self.batches)

    def label_loss_items(self, loss_items: Any = None, prefix: str = "train") -> dict[str, float] | list[str]:
        """Name the loss values."""
        return [f"{prefix}/loss"] if loss_items is None else {f"{prefix}/loss": float(loss_items)}

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        """Stop at the next batch boundary, as the engine does."""
        self.stop, self.stop_reason = True, "signal"

    def train(self) -> None:
        """Run the epochs, firing every event where the engine's train() fires it."""
        # `ignore_sigterm` plays a hung run that only SIGKILL ends.
        signal.signal(signal.SIGTERM, signal.SIG_IGN if self.args.get("ignore_sigterm") else self._on_sigterm)
        try:
            self.run_callbacks("on_pretrain_routine_start")
            self._setup()
            self.run_callbacks("on_pretrain_routine_end")
            self.run_callbacks("on_train_start")
            for epoch in range(self.start_epoch, self.epochs):
                self.epoch = epoch
                self._maybe_lose_a_rank()
                self.run_callbacks("on_train_epoch_start")
                if self._train_one_epoch():
                    self._end_epoch()
                else:  # cut by a stop request: saved as not done, so a resume trains it again
                    self._save(completed=False)
                    self.run_callbacks("on_model_save")
                self.run_callbacks("on_params_update")
                if self.stop:
                    self.stop_reason = self.stop_reason or "stop"
                    break
            self.run_callbacks("on_train_end")
        finally:
            self.run_callbacks("teardown")

    def _maybe_lose_a_rank(self) -> None:
        """At epoch `rank_dies_at_epoch` rank 1 dies; the others wait for it forever, as in a collective."""
        if self.args.get("rank_dies_at_epoch") != self.epoch + 1:
            return
        if os.environ.get("RANK") == "1":
            (self.save_dir / "rank-1-died").touch()
            os._exit(1)
        while True:  # a blocked all-reduce: signals do not end it
            time.sleep(3600)

    def _setup(self) -> None:
        """Create the run folder and, on resume, start after the checkpoint's epoch."""
        self.wdir.mkdir(parents=True, exist_ok=True)
        # Under torchrun every rank trains; leave a mark so tests can see each one ran.
        (self.save_dir / f"rank-{os.environ.get('RANK', '0')}").touch()
        if self.args.get("resume") and self.last.is_file():
            ckpt = _load(self.last)
            self.start_epoch = ckpt["epoch"] + 1
            self.best_fitness, self.fitness = ckpt.get("best_fitness"), ckpt.get("fitness")
            metrics = dict(ckpt.get("train_metrics") or {})
            if "fitness" in metrics:  # saved after a completed epoch
                metrics.pop("fitness")
                self.metrics = metrics
            if self.start_epoch >= self.epochs:  # finished before: the engine trains nothing, keeps the state
                self.epoch = self.start_epoch - 1
                self.lr = dict(ckpt.get("lr") or {})

    def _train_one_epoch(self) -> bool:
        """Run the epoch's sleeping batches; return False when a stop request cut it before its last batch."""
        self.tloss = None
        for i in range(self.batches):
            self.run_callbacks("on_train_batch_start")
            time.sleep(self.batch_s)
            self.tloss = 1.0 / (self.epoch * self.batches + i + 1)
            self.run_callbacks("optimizer_step")
            self.run_callbacks("on_before_zero_grad")
            if self.args.get("stop_in_epoch") == self.epoch + 1:
                self.stop = True  # a stop request after this epoch's first batch
            self.run_callbacks("on_train_batch_end")
            if self.stop:
                break
        return not self.stop or i == self.batches - 1

    def _end_epoch(self) -> None:
        """Close a fully trained epoch: 'validate', save, report."""
        self.run_callbacks("on_train_epoch_end")
        if self.args.get("fail_at_epoch") == self.epoch + 1:
            raise RuntimeError(f"failing on purpose at epoch {self.epoch + 1}")
        self.fitness = float(self.epoch + 1)
        self.metrics = {"metrics/accuracy_top1": self.fitness / self.epochs}
        self.best_fitness = self.fitness
        self._save(completed=True)
        self.run_callbacks("on_model_save")
        self.run_callbacks("on_fit_epoch_end")

    def _save(self, completed: bool) -> None:
        """Write last.pt (and best.pt when the epoch completed) with the engine's keys."""
        checkpoint = {
            "epoch": self.epoch if completed else self.epoch - 1,
            "epochs": self.epochs,
            "best_fitness": self.best_fitness,
            "fitness": self.fitness,
            "model": {},
            "train_args": dict(self.args),
            "train_metrics": {**self.metrics, "fitness": self.fitness} if completed else {},
            "losses": self.label_loss_items(self.tloss) if self.tloss is not None else {},
            "lr": dict(self.lr),
        }
        _write(checkpoint, self.last)
        if completed:
            _write(checkpoint, self.best)


def _write(checkpoint: dict[str, Any], path: Path) -> None:
    """Save like the engine (torch) where torch is loaded already (fork-server children), else as JSON."""
    if "torch" in sys.modules:
        sys.modules["torch"].save(checkpoint, path)
    else:
        path.write_text(json.dumps(checkpoint))


def _load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by _save."""
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError):
        import torch

        return torch.load(path, weights_only=True)


class RefireTrainer(TickTrainer):
    """A TickTrainer that fires on_fit_epoch_end again after its final evaluation, as some engines do."""

    def run_callbacks(self, event: str) -> None:
        """Before on_train_end, 'evaluate best.pt' and report the last epoch's end once more."""
        if event == "on_train_end" and not self.stop:
            self.metrics = {"metrics/accuracy_top1": -1.0}  # the final evaluation's numbers
            super().run_callbacks("on_fit_epoch_end")
        super().run_callbacks(event)
