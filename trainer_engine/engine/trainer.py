"""BaseTrainer: the training loop every task shares (the Ultralytics trainer API).

A task subclass provides the data, the model and the validator (see docs/engine.md for the hooks);
this class owns everything else: config, run folder, devices and DDP, optimizer and LR schedule,
warm-up, AMP, EMA, gradient clipping, checkpoints and resume, early stopping, time limit, the
cooperative stop, results.csv and the callbacks, fired in the order `engine/callbacks.py` documents.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn, optim

from trainer_engine import __version__
from trainer_engine.cfg import ConfigError, TrainArgs, get_cfg
from trainer_engine.engine.callbacks import Callback, CallbackMixin, default_callbacks
from trainer_engine.utils import LOGGER
from trainer_engine.utils import dist as ddp
from trainer_engine.utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from trainer_engine.utils.torch_utils import ModelEMA, de_parallel, init_seeds, parse_device, select_device

# Keys a resumed run may change; everything else comes from the checkpoint's train_args.
RESUME_OVERRIDABLE = frozenset(
    {
        "epochs",
        "time",
        "patience",
        "device",
        "world_size",
        "workers",
        "batch",
        "save_period",
        "verbose",
        "plots",
    }
)


class BaseTrainer(CallbackMixin):
    """Train a task model: `Trainer(overrides={...}).train()`; see the module docstring."""

    task: str | None = None  # set by task subclasses ("classify", "detect")
    default_model: str | None = None  # the model a task trains when `model=` is not given

    def __init__(
        self,
        cfg: str | Path | dict[str, Any] | TrainArgs | None = None,
        overrides: dict[str, Any] | None = None,
        _callbacks: dict[str, list[Callback]] | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        self.args = get_cfg(cfg, overrides, task=self.task)
        self.callbacks = _callbacks if _callbacks is not None else default_callbacks()
        self.resume_ckpt: dict[str, Any] | None = None
        if self.args.resume:
            self._load_resume(overrides)
        self.rank, self.local_rank, self.world_size = ddp.env_rank()
        if self.world_size == 1:
            self.world_size = self._wanted_world_size()
        self.save_dir = self._resume_dir or run_dir(self.args)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.csv = self.save_dir / "results.csv"
        self.epochs = self.args.epochs
        self.start_epoch = 0
        self.epoch = 0
        self.device: torch.device = torch.device("cpu")
        self.model: nn.Module | None = None
        self.ema: ModelEMA | None = None
        self.optimizer: optim.Optimizer | None = None
        self.scheduler: optim.lr_scheduler.LRScheduler | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.validator: Any = None
        self.train_loader: Any = None
        self.test_loader: Any = None
        self.metrics: dict[str, float] = {}
        self.fitness: float | None = None
        self.best_fitness: float | None = None
        self.loss: torch.Tensor | None = None
        self.tloss: torch.Tensor | None = None
        self.loss_items: torch.Tensor | None = None
        self.loss_names = ["loss"]
        self.lr: dict[str, float] = {}
        self.accumulate = 1
        self._mosaic_closed = False
        self.amp = False
        self.batch_size = self.args.batch
        self.stop = False
        self.stop_reason: str | None = None
        self.epoch_time: float | None = None
        self.train_time_start = 0.0
        # The dataset is checked here, before save_dir exists, so bad data leaves nothing behind.
        self.data = self.get_dataset()

    # --- hooks a task provides ---------------------------------------------------------------------

    def get_dataset(self) -> dict[str, Any]:
        """Check `args.data` and return {"train", "val", "nc", "names", ...}; raise a clear error if bad."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataset()")

    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> nn.Module:
        """Return the model to train, built from `cfg` and loaded from `weights` when given."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_model()")

    def build_dataset(self, img_path: Any, mode: str = "train", batch: int | None = None) -> Any:
        """Return the Dataset of one split."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_dataset()")

    def get_dataloader(
        self, dataset_path: Any, batch_size: int = 16, rank: int = 0, mode: str = "train"
    ) -> Any:
        """Return the DataLoader of one split (a DistributedSampler shard when rank >= 0)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataloader()")

    def get_validator(self) -> Any:
        """Return the task's validator (and set `self.loss_names`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_validator()")

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a batch to the device (and scale it) before the forward pass."""
        return batch

    def set_model_attributes(self) -> None:
        """Give the model what it needs from the data and args (nc, names, args)."""
        model = de_parallel(self.model)
        model.nc = self.data["nc"]
        model.names = self.data["names"]
        model.args = self.args

    def label_loss_items(self, loss_items: Any = None, prefix: str = "train") -> list[str] | dict[str, float]:
        """Return the loss keys (no `loss_items`) or a dict of key -> loss value."""
        keys = [f"{prefix}/{name}" for name in self.loss_names]
        if loss_items is None:
            return keys
        values = loss_items.tolist() if hasattr(loss_items, "tolist") else list(loss_items)
        values = values if isinstance(values, list) else [values]
        return {k: round(float(v), 5) for k, v in zip(keys, values, strict=False)}

    def progress_string(self) -> str:
        """Return the header of the per-epoch progress line."""
        return ("%11s" * (3 + len(self.loss_names))) % ("Epoch", "GPU_mem", *self.loss_names, "Size")

    def close_dataloader_mosaic(self) -> None:
        """Turn off mosaic augmentation for the last `close_mosaic` epochs (tasks that use it override)."""

    def plot_metrics(self) -> None:
        """Plot results.csv (tasks may override)."""

    # --- the loop ----------------------------------------------------------------------------------

    def train(self) -> None:
        """Train for `epochs` (or until stopped), saving checkpoints; forks DDP ranks when world_size > 1."""
        if self.world_size > 1 and self.rank == -1:
            # This process is rank 0, so this object holds the results afterwards, as without DDP.
            ddp.run_forked(self._train_in_rank, self.world_size)
            return
        self._do_train()

    def _train_in_rank(self) -> None:
        self.rank, self.local_rank, self.world_size = ddp.env_rank()
        self._do_train()

    def _do_train(self) -> None:
        with self._sigterm_stops(), self._cpu_threads():
            try:
                self.run_callbacks("on_pretrain_routine_start")
                self._setup_train()
                self.run_callbacks("on_pretrain_routine_end")
                self._train_epochs()
                if self.is_main:
                    self.final_eval()
                self.run_callbacks("on_train_end")
            finally:
                self.run_callbacks("teardown")
                ddp.destroy_process_group()
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    @property
    def is_main(self) -> bool:
        """True in the process that validates, saves and fires callbacks (rank 0, or the only one)."""
        return self.rank in (-1, 0)

    def run_callbacks(self, event: str) -> None:
        """Fire `event`'s callbacks; under DDP only rank 0 fires them."""
        if self.is_main:
            super().run_callbacks(event)

    def _setup_train(self) -> None:
        """Build devices, model, loaders, validator, optimizer, scheduler, EMA; resume when asked."""
        self.device = self._select_device()
        if self.world_size > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            ddp.init_process_group(backend, self.rank, self.world_size)
        init_seeds(self.args.seed + 1 + max(self.rank, 0), self.args.deterministic)
        created = not self.save_dir.exists()
        try:
            self._build()
        except BaseException:
            # Whatever failed before the first checkpoint must not leave a run folder a resume would pick.
            if created and self.is_main:
                shutil.rmtree(self.save_dir, ignore_errors=True)
            raise

    def _build(self) -> None:
        self.model = self.setup_model()
        self.model.to(self.device)
        self.set_model_attributes()
        self._freeze_layers()
        amp = self.args.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.amp = amp
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        batch = max(self.args.batch // self.world_size, 1)
        self.batch_size = batch
        self.train_loader = self.get_dataloader(self.data["train"], batch, self.rank, "train")
        if self.is_main:
            self.test_loader = self.get_dataloader(self.data["val"], batch * 2, -1, "val")
            self.validator = self.get_validator()
            self.metrics = dict.fromkeys(self.metric_keys(), 0.0)
            self.ema = ModelEMA(self.model) if self.args.ema else None
        total_batch = batch * self.world_size
        self.accumulate = max(round(self.args.nbs / total_batch), 1)
        weight_decay = self.args.weight_decay * total_batch * self.accumulate / self.args.nbs
        n_train = len(self.train_loader.dataset)
        iterations = math.ceil(n_train / max(total_batch, self.args.nbs)) * self.epochs
        self.optimizer = self.build_optimizer(
            self.model, self.args.optimizer, self.args.lr0, self.args.momentum, weight_decay, iterations
        )
        self.scheduler = optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lr_factor)
        self.stopper = EarlyStopping(self.args.patience)
        self.resume_training(self.resume_ckpt)
        self.scheduler.last_epoch = self.start_epoch - 1
        for group in self.optimizer.param_groups:  # a resumed run starts at its epoch's LR, not epoch 0's
            group["lr"] = group["initial_lr"] * self.lr_factor(self.start_epoch)
        if self.is_main:
            self.wdir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / "args.yaml").write_text(_yaml(self.args.to_dict()))

    def setup_model(self) -> nn.Module:
        """Build the model: from the resume checkpoint, a `.pt` model, or a model name/config."""
        verbose = self.args.verbose and self.is_main
        if self.resume_ckpt is not None:
            ckpt = self.resume_ckpt
            model = self.get_model(cfg=ckpt.get("model_cfg"), weights=None, verbose=verbose)
            de_parallel(model).load_state_dict(ckpt["model"])
            return model
        name = self.args.model or self.default_model
        weights = None
        if name is not None and str(name).endswith((".pt", ".pth")):
            weights = load_checkpoint(name)
            name = weights.get("model_cfg") or name
        elif isinstance(self.args.pretrained, str):
            weights = load_checkpoint(self.args.pretrained)
        model = self.get_model(cfg=name, weights=weights, verbose=verbose)
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"{type(self).__name__}.get_model() returned {type(model).__name__}, not an nn.Module"
            )
        return model

    def _freeze_layers(self) -> None:
        """Freeze the first N layers (`freeze=N`) or the layers at the given indices (`freeze=[0, 2]`)."""
        freeze = self.args.freeze
        if freeze is None:
            return
        layers = model_layers(de_parallel(self.model))
        indices = list(range(freeze)) if isinstance(freeze, int) else list(freeze)
        missing = [i for i in indices if i >= len(layers)]
        if missing:
            raise ConfigError(
                "freeze", f"freeze={freeze!r}: this model has {len(layers)} layers (0..{len(layers) - 1})"
            )
        for i in indices:
            for p in layers[i].parameters():
                p.requires_grad_(False)

    def lr_factor(self, epoch: int) -> float:
        """Return the LR multiplier of `epoch`: linear from 1 to lrf, or cosine with cos_lr."""
        x = min(epoch / max(self.epochs, 1), 1.0)
        lrf = self.args.lrf
        if self.args.cos_lr:
            return ((1 - math.cos(x * math.pi)) / 2) * (lrf - 1) + 1
        return (1 - x) * (1.0 - lrf) + lrf

    def _train_epochs(self) -> None:
        nb = len(self.train_loader)
        if nb == 0:
            raise ValueError(
                f"the training set {self.data['train']} gives no batches; "
                f"add images or lower batch={self.args.batch}"
            )
        self._nw = round(self.args.warmup_epochs * nb) if self.args.warmup_epochs > 0 else -1
        self._last_opt_step = -1
        self.train_time_start = time.time()
        self.run_callbacks("on_train_start")
        self.optimizer.zero_grad()
        epoch = self.start_epoch
        while epoch < self.epochs:
            epoch_start = time.time()
            self.epoch = epoch
            self.run_callbacks("on_train_epoch_start")
            if self._train_one_epoch(epoch, nb):
                self._end_epoch(epoch)
            elif self.is_main:
                self.save_model(completed=False)
                self.run_callbacks("on_model_save")
            self.scheduler.step()
            self.run_callbacks("on_params_update")
            self.epoch_time = time.time() - epoch_start
            if self.is_main:
                self._fit_time_limit(epoch)
            if self.world_size > 1:
                # Rank 0 decided early stop, time limit and epochs; every rank must follow it.
                self.stop, self.epochs, self.stop_reason = ddp.broadcast_from_main(
                    [self.stop, self.epochs, self.stop_reason]
                )
            if self.stop:
                self.stop_reason = self.stop_reason or "stop"
                break
            epoch += 1

    def _train_one_epoch(self, epoch: int, nb: int) -> bool:
        """Run the epoch's batches; return False when a stop request ended it before its last batch."""
        self.model.train()
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        # `>=` and a flag: a time limit resizes `epochs` after every epoch and may jump past the boundary.
        if (
            self.args.close_mosaic
            and epoch >= self.epochs - self.args.close_mosaic
            and not self._mosaic_closed
        ):
            self._mosaic_closed = True
            self.close_dataloader_mosaic()
        self.tloss = None
        for i, batch in enumerate(self.train_loader):
            self.run_callbacks("on_train_batch_start")
            ni = i + nb * epoch
            if ni <= self._nw:
                self._warmup(ni, self._nw, epoch)
            with torch.autocast(self.device.type, enabled=self.amp):
                batch = self.preprocess_batch(batch)
                loss, self.loss_items = self.model(batch)
                self.loss = loss.sum()
                if self.world_size > 1:
                    # DDP averages gradients over ranks; scale back to the sum the nominal batch expects.
                    self.loss = self.loss * self.world_size
                items = self.loss_items.detach()
                self.tloss = items if self.tloss is None else (self.tloss * i + items) / (i + 1)
            self.scaler.scale(self.loss).backward()
            if ni - self._last_opt_step >= self.accumulate:
                self.optimizer_step()
                self._last_opt_step = ni
            if self.args.time and time.time() - self.train_time_start > self.args.time * 3600:
                self.request_stop("time")
            self.run_callbacks("on_train_batch_end")
            if self.world_size > 1:
                self.stop = ddp.any_rank(self.stop, self.device)
            if self.stop:
                break
        self.lr = {f"lr/pg{j}": g["lr"] for j, g in enumerate(self.optimizer.param_groups)}
        return not self.stop or i == nb - 1

    def _end_epoch(self, epoch: int) -> None:
        """Close a fully trained epoch: callbacks, validation, checkpoints, results.csv, early stop."""
        self.run_callbacks("on_train_epoch_end")
        if not self.is_main:
            return
        final_epoch = epoch + 1 >= self.epochs
        if self.args.val:
            self.metrics, self.fitness = self.validate()
        else:
            self.metrics, self.fitness = {}, -float(self.tloss.sum()) if self.tloss is not None else None
        if self.fitness is not None and (self.best_fitness is None or self.fitness >= self.best_fitness):
            self.best_fitness = self.fitness
        self.save_metrics({**self.label_loss_items(self.tloss), **self.metrics, **self.lr})
        if self.args.verbose:
            shown = {**self.label_loss_items(self.tloss), **self.metrics}
            LOGGER.info(
                "epoch %d/%d  %s  (%.1f s)",
                epoch + 1,
                self.epochs,
                "  ".join(f"{k}={v:.4g}" for k, v in shown.items()),
                time.time() - self.train_time_start,
            )
        if self.stopper(epoch + 1, self.fitness) and not final_epoch:
            self.request_stop("patience")
            LOGGER.info(
                "Stopping early: no improvement in %d epochs; best fitness %.5f at epoch %d",
                self.stopper.patience,
                self.stopper.best_fitness,
                self.stopper.best_epoch,
            )
        if self.args.save or final_epoch:
            self.save_model()
            self.run_callbacks("on_model_save")
        self.run_callbacks("on_fit_epoch_end")

    def _warmup(self, ni: int, nw: int, epoch: int) -> None:
        """Ramp LR (from warmup_bias_lr for biases, 0 for weights), momentum and accumulation in."""
        xi = [0, nw]
        self.accumulate = max(1, int(np.interp(ni, xi, [1, self.args.nbs / self.args.batch]).round()))
        for j, group in enumerate(self.optimizer.param_groups):
            start = self.args.warmup_bias_lr if j == 0 else 0.0
            group["lr"] = float(np.interp(ni, xi, [start, group["initial_lr"] * self.lr_factor(epoch)]))
            if "momentum" in group:
                group["momentum"] = float(np.interp(ni, xi, [self.args.warmup_momentum, self.args.momentum]))

    def _fit_time_limit(self, epoch: int) -> None:
        """With `time` set, size `epochs` to what fits in it (measured) so the LR schedule ends in time."""
        if not self.args.time:
            return
        elapsed = time.time() - self.train_time_start
        if elapsed > self.args.time * 3600:
            self.request_stop("time")
            return
        per_epoch = elapsed / (epoch - self.start_epoch + 1)
        self.epochs = max(epoch + 1, math.ceil(self.args.time * 3600 / per_epoch) + self.start_epoch)
        if epoch + 1 >= self.epochs:
            self.request_stop("time")

    def request_stop(self, reason: str = "stop") -> None:
        """Ask training to stop at the next batch boundary (saving last.pt); callers may also set `stop`."""
        self.stop = True
        self.stop_reason = self.stop_reason or reason

    def optimizer_step(self) -> None:
        """Unscale, clip gradients, step the optimizer, update the EMA, then zero the gradients."""
        self.scaler.unscale_(self.optimizer)
        if self.args.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.args.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.run_callbacks("optimizer_step")
        self.run_callbacks("on_before_zero_grad")
        self.optimizer.zero_grad()

    def validate(self) -> tuple[dict[str, float], float]:
        """Validate the EMA (or the model) on the val split; return (metrics, fitness)."""
        metrics = dict(self.validator(self))
        fitness = metrics.pop("fitness", None)
        if fitness is None:
            fitness = -sum(v for k, v in metrics.items() if k.startswith("val/"))
        return metrics, float(fitness)

    def metric_keys(self) -> list[str]:
        """Return the keys of `metrics` (validator metrics and validation losses)."""
        keys = list(getattr(getattr(self.validator, "metrics", None), "keys", []) or [])
        return keys + list(self.label_loss_items(prefix="val"))

    def final_eval(self) -> None:
        """Validate best.pt once more; its metrics become `trainer.metrics` (fires no epoch callback)."""
        if not (self.args.val and self.best.is_file() and self.validator is not None):
            return
        if self.stop_reason in ("stop", "signal"):
            return  # a stop request wants the run to end now, not after one more validation pass
        ckpt = load_checkpoint(self.best)
        model = de_parallel(self.model)
        model.load_state_dict(ckpt["model"])
        self.validator.training = False
        self.metrics = dict(self.validator(model=model))
        self.metrics.pop("fitness", None)

    # --- checkpoints -------------------------------------------------------------------------------

    def save_model(self, completed: bool = True) -> None:
        """Write last.pt (and best.pt, epoch<N>.pt); an interrupted epoch is saved as not done."""
        model = de_parallel(self.model)
        weights = self.ema.ema if self.ema is not None else model
        done_epoch = self.epoch if completed else self.epoch - 1
        ckpt = {
            "epoch": done_epoch,
            "epochs": self.epochs,
            "best_fitness": self.best_fitness,
            "fitness": self.fitness,
            "model": _cpu_state(weights),
            "ema": _cpu_state(self.ema.ema) if self.ema is not None else None,
            "updates": self.ema.updates if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None,
            "train_args": self.args.to_dict(),
            "train_metrics": {**self.metrics, "fitness": self.fitness} if completed else {},
            "losses": self.label_loss_items(self.tloss) if self.tloss is not None else {},
            "lr": dict(self.lr),
            "model_cfg": model_cfg(model, self.args.model),
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "nc": self.data["nc"],
            "names": {int(k): str(v) for k, v in dict(self.data["names"]).items()},
            "date": datetime.now(UTC).isoformat(),
            "version": __version__,
        }
        self.wdir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(ckpt, self.last)
        if completed and self.fitness is not None and self.fitness == self.best_fitness:
            shutil.copyfile(self.last, self.best)
        if completed and self.args.save_period > 0 and (self.epoch + 1) % self.args.save_period == 0:
            shutil.copyfile(self.last, self.wdir / f"epoch{self.epoch + 1}.pt")

    def save_metrics(self, metrics: dict[str, float]) -> None:
        """Append the epoch's row to results.csv (the header comes from the first row's keys)."""
        row = {"epoch": self.epoch + 1, "time": round(time.time() - self.train_time_start, 3)}
        row.update({k: round(float(v), 6) for k, v in metrics.items()})
        new = not self.csv.is_file()
        self.csv.parent.mkdir(parents=True, exist_ok=True)
        with self.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def resume_training(self, ckpt: dict[str, Any] | None) -> None:
        """Restore optimizer, scaler, EMA, best fitness and the epoch to start from."""
        if ckpt is None:
            return
        self.start_epoch = int(ckpt["epoch"]) + 1
        self.best_fitness = ckpt.get("best_fitness")
        if ckpt.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.amp and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None and ckpt.get("ema"):
            self.ema.ema.load_state_dict(ckpt["ema"])
            self.ema.updates = int(ckpt.get("updates") or 0)
        LOGGER.info("Resuming %s from epoch %d to %d", self.save_dir, self.start_epoch + 1, self.epochs)

    def _load_resume(self, overrides: dict[str, Any]) -> None:
        """Find the checkpoint to resume (the path given, or last.pt of project/name) and adopt its args."""
        resume = self.args.resume
        path = (
            Path(resume)
            if isinstance(resume, str)
            else run_dir(self.args, numbered=False) / "weights" / "last.pt"
        )
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            raise ConfigError("resume", f"cannot resume: {e}") from None
        saved = dict(ckpt.get("train_args") or {})
        changes = {k: v for k, v in overrides.items() if k in RESUME_OVERRIDABLE}
        self.args = get_cfg(saved, {**changes, "resume": resume}, task=self.task)
        done = int(ckpt.get("epoch", -1)) + 1
        if done >= self.args.epochs:
            raise ConfigError(
                "epochs",
                f"{path} finished {done} of {self.args.epochs} epochs: nothing left to resume; "
                f"pass a larger epochs (e.g. epochs={self.args.epochs + 10}) to train on",
            )
        self.resume_ckpt = ckpt
        self._resume_dir = path.resolve().parent.parent

    _resume_dir: Path | None = None

    def _wanted_world_size(self) -> int:
        kind, indices = parse_device(self.args.device)
        if self.args.world_size:
            if kind == "cuda" and len(indices) not in (1, self.args.world_size):
                raise ConfigError(
                    "world_size",
                    f"world_size={self.args.world_size} does not match device={self.args.device!r} "
                    f"({len(indices)} GPUs); leave world_size unset to use one process per GPU",
                )
            return self.args.world_size
        return len(indices) if kind == "cuda" else 1

    def _select_device(self) -> torch.device:
        kind, _ = parse_device(self.args.device)
        if kind == "auto" and self.world_size > 1:
            # One process per GPU when there are GPUs; gloo on the CPU otherwise.
            return select_device(str(max(self.local_rank, 0)) if torch.cuda.is_available() else "cpu")
        return select_device(self.args.device, self.local_rank)

    @contextlib.contextmanager
    def _cpu_threads(self) -> Iterator[None]:
        """On the CPU, leave the loader workers their cores: torch threads beyond the rest only spin-wait."""
        if parse_device(self.args.device)[0] in ("cuda", "mps") or torch.cuda.is_available():
            yield
            return
        cores = max((os.cpu_count() or 1) // self.world_size, 1)
        workers = min(self.args.workers, cores)
        before = torch.get_num_threads()
        torch.set_num_threads(min(before, max(cores - workers, 1)))
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @contextlib.contextmanager
    def _sigterm_stops(self) -> Iterator[None]:
        """While training, SIGTERM asks for a stop at the next batch boundary (last.pt is saved)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            self.request_stop("signal")

        previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    # --- optimizer ---------------------------------------------------------------------------------

    def build_optimizer(
        self,
        model: nn.Module,
        name: str = "auto",
        lr: float = 0.001,
        momentum: float = 0.9,
        decay: float = 1e-5,
        iterations: float = 1e5,
    ) -> optim.Optimizer:
        """Build the optimizer with three groups: biases, norm weights (no decay) and other weights."""
        biases, norms, weights = [], [], []
        norm_types = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if not p.requires_grad:
                    continue
                if pname == "bias":
                    biases.append(p)
                elif isinstance(module, norm_types):
                    norms.append(p)
                else:
                    weights.append(p)
        if name == "auto":
            # Short runs converge faster with AdamW; long ones generalise better with SGD.
            name, lr, momentum = ("SGD", 0.01, 0.9) if iterations > 10000 else ("AdamW", 0.002, 0.9)
            LOGGER.info("optimizer=auto chose %s(lr=%g, momentum=%g)", name, lr, momentum)
        if name in ("Adam", "AdamW", "NAdam", "RAdam"):
            opt: optim.Optimizer = getattr(optim, name)(
                biases, lr=lr, betas=(momentum, 0.999), weight_decay=0.0
            )
        elif name == "RMSProp":
            opt = optim.RMSprop(biases, lr=lr, momentum=momentum)
        elif name == "SGD":
            opt = optim.SGD(biases, lr=lr, momentum=momentum, nesterov=True)
        else:
            raise ConfigError("optimizer", f"invalid value for 'optimizer': {name!r}")
        opt.add_param_group({"params": norms, "weight_decay": 0.0})
        opt.add_param_group({"params": weights, "weight_decay": decay})
        return opt


class EarlyStopping:
    """Stop when fitness has not improved for `patience` epochs (0 disables)."""

    def __init__(self, patience: int = 50) -> None:
        self.patience = patience
        self.best_fitness = -math.inf
        self.best_epoch = 0

    def __call__(self, epoch: int, fitness: float | None) -> bool:
        """Record `fitness` of `epoch` (1-based); return True when training should stop."""
        if fitness is None:
            return False
        if fitness >= self.best_fitness:
            self.best_fitness, self.best_epoch = fitness, epoch
        return self.patience > 0 and epoch - self.best_epoch >= self.patience


def run_dir(args: TrainArgs, numbered: bool = True) -> Path:
    """Return project/name of a run; a new numbered name (train2, ...) unless exist_ok or resuming."""
    project = Path(args.project or Path("runs") / (args.task or "train"))
    name = args.name or args.mode
    path = project / name
    if not numbered or args.exist_ok or not path.exists():
        return path
    n = 2
    while (project / f"{name}{n}").exists():
        n += 1
    return project / f"{name}{n}"


def model_layers(model: nn.Module) -> list[nn.Module]:
    """Return the layers `freeze=` counts: children of `model.model` (a sequential net), else top modules."""
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module) and len(list(inner.children())) > 1:
        return list(inner.children())
    return list(model.children())


def model_cfg(model: nn.Module, name: str | None) -> dict[str, Any]:
    """Return the plain config a checkpoint stores to rebuild `model` (its `yaml` dict, else its name)."""
    cfg = getattr(model, "yaml", None)
    return dict(cfg) if isinstance(cfg, dict) else {"name": name}


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _yaml(values: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(values, sort_keys=False)
