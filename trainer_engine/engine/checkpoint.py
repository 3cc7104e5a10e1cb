"""What a trainer writes into last.pt and reads back on resume; the file format is `utils/checkpoint.py`'s."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainer_engine import __version__
from trainer_engine.cfg import ConfigError, TrainArgs, get_cfg
from trainer_engine.utils.checkpoint import CHECKPOINT_KEYS, CheckpointError, load_checkpoint
from trainer_engine.utils.torch_utils import de_parallel

if TYPE_CHECKING:
    from trainer_engine.engine.trainer import BaseTrainer

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


def build_checkpoint(trainer: BaseTrainer, completed: bool = True) -> dict[str, Any]:
    """Return the checkpoint of the trainer's state; an interrupted epoch is recorded as not done."""
    model = de_parallel(trainer.model)
    ema = trainer.ema
    ckpt = {
        "epoch": trainer.epoch if completed else trainer.epoch - 1,
        "epochs": trainer.args.epochs,
        "best_fitness": trainer.best_fitness,
        "fitness": trainer.fitness,
        "model": cpu_state(ema.ema if ema is not None else model),
        "ema": cpu_state(ema.ema) if ema is not None else None,
        "updates": ema.updates if ema is not None else 0,
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.amp else None,
        "train_args": trainer.args.to_dict(),
        "train_metrics": {**trainer.metrics, "fitness": trainer.fitness} if completed else {},
        "losses": trainer.label_loss_items(trainer.tloss) if trainer.tloss is not None else {},
        "lr": dict(trainer.lr),
        "model_cfg": model_cfg(model, trainer.args.model),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "nc": trainer.data["nc"],
        "names": {int(k): str(v) for k, v in dict(trainer.data["names"]).items()},
        "date": datetime.now(UTC).isoformat(),
        "version": __version__,
    }
    assert set(ckpt) == CHECKPOINT_KEYS  # the reader (read_summary) knows exactly these keys
    return ckpt


def load_resume(
    args: TrainArgs, overrides: dict[str, Any], task: str | None
) -> tuple[TrainArgs, dict[str, Any], Path]:
    """Return (args, checkpoint, run folder) to resume: the path given, or last.pt of project/name."""
    resume = args.resume
    path = Path(resume) if isinstance(resume, str) else run_dir(args, numbered=False) / "weights" / "last.pt"
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        raise ConfigError("resume", f"cannot resume: {e}") from None
    saved = dict(ckpt.get("train_args") or {})
    changes = {k: v for k, v in overrides.items() if k in RESUME_OVERRIDABLE}
    return get_cfg(saved, {**changes, "resume": resume}, task=task), ckpt, path.resolve().parent.parent


def restore(trainer: BaseTrainer, ckpt: dict[str, Any]) -> None:
    """Restore optimizer, scaler, EMA, fitness, metrics and the epoch to start from."""
    trainer.start_epoch = int(ckpt["epoch"]) + 1
    trainer.best_fitness = ckpt.get("best_fitness")
    trainer.fitness = ckpt.get("fitness")
    metrics = dict(ckpt.get("train_metrics") or {})
    if "fitness" in metrics:  # saved after a completed epoch (inside one, train_metrics is {})
        metrics.pop("fitness")
        trainer.metrics = metrics
    if ckpt.get("optimizer") is not None:
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
    if trainer.amp and ckpt.get("scaler"):
        trainer.scaler.load_state_dict(ckpt["scaler"])
    if trainer.ema is not None and ckpt.get("ema"):
        trainer.ema.ema.load_state_dict(ckpt["ema"])
        trainer.ema.updates = int(ckpt.get("updates") or 0)


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


def model_cfg(model: nn.Module, name: str | None) -> dict[str, Any]:
    """Return the plain config a checkpoint stores to rebuild `model` (its `yaml` dict, else its name)."""
    cfg = getattr(model, "yaml", None)
    return dict(cfg) if isinstance(cfg, dict) else {"name": name}


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Return a detached CPU copy of `model`'s state dict, safe to save while training goes on."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
