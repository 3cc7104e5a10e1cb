"""BaseTrainer: the training loop every task shares (the Ultralytics trainer API).

A task subclass provides the data, the model and the validator (see docs/engine.md for the hooks);
this class runs the loop in the order `engine/callbacks.py` documents as pseudocode, and owns when it
stops (`should_stop`). Optimizer, LR schedule and warm-up live in `engine/optim.py`; what a checkpoint
holds and how a run resumes in `engine/checkpoint.py`; devices, ranks and threads in `utils/devices.py`
and `utils/dist.py`.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn, optim

from trainer_engine.cfg import TrainArgs, get_cfg
from trainer_engine.engine import optim as engine_optim
from trainer_engine.engine.callbacks import Callback, CallbackMixin, default_callbacks
from trainer_engine.engine.checkpoint import build_checkpoint, load_resume, restore, run_dir
from trainer_engine.engine.hooks import TaskHooks
from trainer_engine.engine.stopping import EarlyStopping, epochs_in_time, sigterm_calls
from trainer_engine.utils import LOGGER
from trainer_engine.utils import dist as ddp
from trainer_engine.utils.checkpoint import load_checkpoint, save_checkpoint
from trainer_engine.utils.devices import cpu_threads, rank_device, wanted_world_size
from trainer_engine.utils.files import append_csv_row
from trainer_engine.utils.torch_utils import ModelEMA, de_parallel, init_seeds


class BaseTrainer(TaskHooks, CallbackMixin):
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
        resume_dir: Path | None = None
        if self.args.resume:
            self.args, self.resume_ckpt, resume_dir = load_resume(self.args, overrides, self.task)
        self.rank, self.local_rank, self.world_size = ddp.env_rank()
        if self.world_size == 1:
            self.world_size = wanted_world_size(self.args.device, self.args.world_size)
        self.save_dir = resume_dir or run_dir(self.args)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.csv = self.save_dir / "results.csv"
        # The epochs this run trains: args.epochs, unless a time limit re-sizes it (_fit_epochs_to_time).
        self.epochs = self.args.epochs
        self.start_epoch = 0
        self.epoch = 0
        # A resumed run whose checkpoint already holds every epoch: train() trains nothing and returns.
        self.nothing_to_train = (
            self.resume_ckpt is not None and int(self.resume_ckpt["epoch"]) + 1 >= self.epochs
        )
        self.device: torch.device = torch.device("cpu")
        self.model: nn.Module | None = None
        self.ema: ModelEMA | None = None
        self.optimizer: optim.Optimizer | None = None
        self.scheduler: optim.lr_scheduler.LRScheduler | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.stopper = EarlyStopping(self.args.patience)
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
        self.warmup_iterations = -1
        self.last_opt_step = -1
        self._mosaic_closed = False
        self.amp = False
        self.batch_size = self.args.batch
        self.stop = False
        self.stop_reason: str | None = None
        self.epoch_time: float | None = None
        self.train_time_start = 0.0
        # The dataset is checked here, before save_dir exists, so bad data leaves nothing behind.
        self.data = self.get_dataset()

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
        with (
            sigterm_calls(lambda: self.request_stop("signal")),
            cpu_threads(self.args.device, self.args.workers, self.world_size),
        ):
            try:
                self.run_callbacks("on_pretrain_routine_start")
                self._setup_train()
                self.run_callbacks("on_pretrain_routine_end")
                self._train_epochs()
                if self.is_main and not self.nothing_to_train:
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

    def _train_epochs(self) -> None:
        """Train epoch after epoch from start_epoch until should_stop() ends the run."""
        nb = self._batches_per_epoch()
        self.warmup_iterations = engine_optim.warmup_iterations(self.args, nb)
        self.last_opt_step = -1
        self.train_time_start = time.time()
        self.run_callbacks("on_train_start")
        self.optimizer.zero_grad()
        epoch = self.start_epoch
        while epoch < self.epochs:  # no epoch at all when a resumed run has nothing left to train
            epoch_start = time.time()
            self.epoch = epoch
            self.run_callbacks("on_train_epoch_start")
            if self._train_one_epoch(epoch, nb):
                self._end_epoch()
            elif self.is_main:
                self.save_model(completed=False)
                self.run_callbacks("on_model_save")
            self.scheduler.step()
            self.run_callbacks("on_params_update")
            self.epoch_time = time.time() - epoch_start
            if self.should_stop(epoch_end=True):
                break
            epoch += 1

    def _batches_per_epoch(self) -> int:
        nb = len(self.train_loader)
        if nb == 0:
            raise ValueError(
                f"the training set {self.data['train']} gives no batches; "
                f"add images or lower batch={self.args.batch}"
            )
        return nb

    def _train_one_epoch(self, epoch: int, nb: int) -> bool:
        """Run the epoch's batches; return False when a stop ended it before its last batch."""
        self.model.train()
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        # `>=` and a flag: a time limit re-sizes `epochs` after every epoch and may jump past the boundary.
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
            self._train_batch(batch, i, i + nb * epoch)
            self.run_callbacks("on_train_batch_end")
            if self.should_stop():
                break
        self.lr = engine_optim.learning_rates(self.optimizer)
        return not self.stop or i == nb - 1

    def _train_batch(self, batch: dict[str, Any], i: int, ni: int) -> None:
        """Forward and backward one batch (the `i`-th of the epoch, `ni`-th of the run); step when due."""
        if ni <= self.warmup_iterations:
            self.accumulate = engine_optim.warmup(
                self.optimizer, self.args, ni, self.warmup_iterations, lambda: self.lr_factor(self.epoch)
            )
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
        if ni - self.last_opt_step >= self.accumulate:
            self.optimizer_step()
            self.last_opt_step = ni

    def _end_epoch(self) -> None:
        """Close a fully trained epoch: callbacks, validation, results.csv, checkpoints."""
        self.run_callbacks("on_train_epoch_end")
        if not self.is_main:
            return
        if self.args.val:
            self.metrics, self.fitness = self.validate()
        else:
            self.metrics, self.fitness = {}, -float(self.tloss.sum()) if self.tloss is not None else None
        if self.fitness is not None and (self.best_fitness is None or self.fitness >= self.best_fitness):
            self.best_fitness = self.fitness
        losses = self.label_loss_items(self.tloss)
        self.save_metrics({**losses, **self.metrics, **self.lr})
        if self.args.verbose:
            shown = "  ".join(f"{k}={v:.4g}" for k, v in {**losses, **self.metrics}.items())
            elapsed = time.time() - self.train_time_start
            LOGGER.info("epoch %d/%d  %s  (%.1f s)", self.epoch + 1, self.epochs, shown, elapsed)
        if self.args.save or self.epoch + 1 >= self.epochs:
            self.save_model()
            self.run_callbacks("on_model_save")
        self.run_callbacks("on_fit_epoch_end")

    # --- when training stops -----------------------------------------------------------------------

    def should_stop(self, epoch_end: bool = False) -> bool:
        """Return True, on every rank alike, when training ends here (after a batch, or an epoch).

        Causes: a stop request (`trainer.stop`, `request_stop`, SIGTERM), the time limit, and at an
        epoch's end no improvement for `patience` epochs or the last epoch done. `stop_reason` says
        which ("stop", "signal", "time", "patience"); it stays None when the run trained every epoch.
        """
        if self.args.time and time.time() - self.train_time_start > self.args.time * 3600:
            self.request_stop("time")
        if not epoch_end:
            if self.world_size > 1:  # a stop on any rank stops all of them at this same batch
                self.stop = ddp.any_rank(self.stop, self.device)
            return self.stop
        if self.is_main:
            last_epoch = self.epoch + 1 >= self.epochs
            # A stopped epoch was cut short (or is the last one trained): its fitness is no patience verdict.
            if not self.stop and self.stopper(self.epoch + 1, self.fitness) and not last_epoch:
                self.request_stop("patience")
                LOGGER.info(
                    "Stopping early: no improvement in %d epochs; best fitness %.5f at epoch %d",
                    self.stopper.patience,
                    self.stopper.best_fitness,
                    self.stopper.best_epoch,
                )
            self._fit_epochs_to_time()
        if self.world_size > 1:  # rank 0 decided; every rank must follow it
            self.stop, self.epochs, self.stop_reason = ddp.broadcast_from_main(
                [self.stop, self.epochs, self.stop_reason]
            )
        if self.stop:
            self.stop_reason = self.stop_reason or "stop"
        return self.stop or self.epoch + 1 >= self.epochs

    def _fit_epochs_to_time(self) -> None:
        """With `time` set, re-size `epochs` to what fits, so LR schedule and close_mosaic end in time.

        The one place `self.epochs` changes after __init__; the checkpoint keeps the configured epochs.
        """
        elapsed = time.time() - self.train_time_start
        if not self.args.time or elapsed > self.args.time * 3600:
            return  # out of time: should_stop has already requested the stop
        self.epochs = epochs_in_time(self.epoch, self.start_epoch, elapsed, self.args.time)
        if self.epoch + 1 >= self.epochs:
            self.request_stop("time")

    def request_stop(self, reason: str = "stop") -> None:
        """Ask training to stop at the next batch boundary (saving last.pt); callers may also set `stop`."""
        self.stop = True
        self.stop_reason = self.stop_reason or reason

    # --- setup -------------------------------------------------------------------------------------

    def _setup_train(self) -> None:
        """Build devices, model, loaders, validator, optimizer, scheduler, EMA; resume when asked."""
        self.device = rank_device(self.args.device, self.world_size, self.local_rank)
        if self.world_size > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            ddp.init_process_group(backend, self.rank, self.world_size)
        init_seeds(self.args.seed + 1 + max(self.rank, 0), self.args.deterministic)
        created = not self.save_dir.exists()
        try:
            self._build_model()
            self._build_data()
            self._build_optimizer()
            self.resume_training(self.resume_ckpt)
            self.scheduler.last_epoch = self.start_epoch - 1
            for group in self.optimizer.param_groups:  # a resumed run starts at its epoch's LR, not epoch 0's
                group["lr"] = group["initial_lr"] * self.lr_factor(self.start_epoch)
        except BaseException:
            # Whatever failed before the first checkpoint must not leave a run folder a resume would pick.
            if created and self.is_main:
                shutil.rmtree(self.save_dir, ignore_errors=True)
            raise
        if self.is_main:
            self.wdir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / "args.yaml").write_text(_yaml(self.args.to_dict()))

    def _build_model(self) -> None:
        self.model = self.setup_model()
        self.model.to(self.device)
        self.set_model_attributes()
        engine_optim.freeze_layers(engine_optim.model_layers(de_parallel(self.model)), self.args.freeze)
        self.amp = self.args.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _build_data(self) -> None:
        self.batch_size = max(self.args.batch // self.world_size, 1)
        self.train_loader = self.get_dataloader(self.data["train"], self.batch_size, self.rank, "train")
        if self.is_main:
            self.test_loader = self.get_dataloader(self.data["val"], self.batch_size * 2, -1, "val")
            self.validator = self.get_validator()
            self.metrics = dict.fromkeys(self.metric_keys(), 0.0)
            self.ema = ModelEMA(self.model) if self.args.ema else None

    def _build_optimizer(self) -> None:
        total_batch = self.batch_size * self.world_size
        self.accumulate = max(round(self.args.nbs / total_batch), 1)
        weight_decay = self.args.weight_decay * total_batch * self.accumulate / self.args.nbs
        n_train = len(self.train_loader.dataset)
        iterations = math.ceil(n_train / max(total_batch, self.args.nbs)) * self.epochs
        self.optimizer = self.build_optimizer(
            self.model, self.args.optimizer, self.args.lr0, self.args.momentum, weight_decay, iterations
        )
        self.scheduler = optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lr_factor)

    # --- optimizer, validation, checkpoints (overridable) ------------------------------------------

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
        return engine_optim.build_optimizer(model, name, lr, momentum, decay, iterations)

    def lr_factor(self, epoch: int) -> float:
        """Return the LR multiplier of `epoch`: linear from 1 to lrf, or cosine with cos_lr."""
        return engine_optim.lr_factor(epoch, self.epochs, self.args.lrf, self.args.cos_lr)

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

    def save_model(self, completed: bool = True) -> None:
        """Write last.pt (and best.pt, epoch<N>.pt); an interrupted epoch is saved as not done."""
        self.wdir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(build_checkpoint(self, completed), self.last)
        if completed and self.fitness is not None and self.fitness == self.best_fitness:
            shutil.copyfile(self.last, self.best)
        if completed and self.args.save_period > 0 and (self.epoch + 1) % self.args.save_period == 0:
            shutil.copyfile(self.last, self.wdir / f"epoch{self.epoch + 1}.pt")

    def save_metrics(self, metrics: dict[str, float]) -> None:
        """Append the epoch's row to results.csv (the header comes from the first row's keys)."""
        row = {"epoch": self.epoch + 1, "time": round(time.time() - self.train_time_start, 3)}
        row.update({k: round(float(v), 6) for k, v in metrics.items()})
        append_csv_row(self.csv, row)

    def resume_training(self, ckpt: dict[str, Any] | None) -> None:
        """Restore optimizer, scaler, EMA, fitness and the epoch to start from."""
        if ckpt is None:
            return
        restore(self, ckpt)
        if self.nothing_to_train:
            # The finished run's state is the result: its last epoch, metrics and learning rates.
            self.epoch = self.start_epoch - 1
            self.lr = dict(ckpt.get("lr") or {})
            LOGGER.info(
                "%s holds all %d epochs: nothing left to train (pass a larger epochs to train on)",
                self.last,
                self.epochs,
            )
            return
        LOGGER.info("Resuming %s from epoch %d to %d", self.save_dir, self.start_epoch + 1, self.epochs)


def _yaml(values: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(values, sort_keys=False)
