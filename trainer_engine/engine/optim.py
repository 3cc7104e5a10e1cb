"""Optimizer, learning-rate schedule and warm-up of the training loop (plain functions of their inputs)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from torch import nn, optim

from trainer_engine.cfg import ConfigError, TrainArgs
from trainer_engine.utils import LOGGER


def build_optimizer(
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
        opt: optim.Optimizer = getattr(optim, name)(biases, lr=lr, betas=(momentum, 0.999), weight_decay=0.0)
    elif name == "RMSProp":
        opt = optim.RMSprop(biases, lr=lr, momentum=momentum)
    elif name == "SGD":
        opt = optim.SGD(biases, lr=lr, momentum=momentum, nesterov=True)
    else:
        raise ConfigError("optimizer", f"invalid value for 'optimizer': {name!r}")
    opt.add_param_group({"params": norms, "weight_decay": 0.0})
    opt.add_param_group({"params": weights, "weight_decay": decay})
    return opt


def lr_factor(epoch: int, epochs: int, lrf: float, cos_lr: bool = False) -> float:
    """Return the LR multiplier of `epoch`: linear from 1 to lrf over `epochs`, or cosine with cos_lr."""
    x = min(epoch / max(epochs, 1), 1.0)
    if cos_lr:
        return ((1 - math.cos(x * math.pi)) / 2) * (lrf - 1) + 1
    return (1 - x) * (1.0 - lrf) + lrf


def warmup_iterations(args: TrainArgs, batches_per_epoch: int) -> int:
    """Return the last iteration of the warm-up (-1: no warm-up)."""
    return round(args.warmup_epochs * batches_per_epoch) if args.warmup_epochs > 0 else -1


def warmup(
    optimizer: optim.Optimizer, args: TrainArgs, ni: int, nw: int, epoch_lr: Callable[[], float]
) -> int:
    """Ramp LR (from warmup_bias_lr for biases, 0 for weights) and momentum in; return the accumulation."""
    xi = [0, nw]
    factor = epoch_lr()
    for j, group in enumerate(optimizer.param_groups):
        start = args.warmup_bias_lr if j == 0 else 0.0
        group["lr"] = float(np.interp(ni, xi, [start, group["initial_lr"] * factor]))
        if "momentum" in group:
            group["momentum"] = float(np.interp(ni, xi, [args.warmup_momentum, args.momentum]))
    return max(1, int(np.interp(ni, xi, [1, args.nbs / args.batch]).round()))


def learning_rates(optimizer: optim.Optimizer) -> dict[str, float]:
    """Return the learning rate of each param group, keyed as results.csv names them."""
    return {f"lr/pg{j}": g["lr"] for j, g in enumerate(optimizer.param_groups)}


def freeze_layers(layers: list[nn.Module], freeze: int | list[int] | None) -> None:
    """Freeze the first N `layers` (`freeze=N`) or those at the given indices (`freeze=[0, 2]`)."""
    if freeze is None:
        return
    indices = list(range(freeze)) if isinstance(freeze, int) else list(freeze)
    if any(i >= len(layers) for i in indices):
        raise ConfigError(
            "freeze", f"freeze={freeze!r}: this model has {len(layers)} layers (0..{len(layers) - 1})"
        )
    for i in indices:
        for p in layers[i].parameters():
            p.requires_grad_(False)


def model_layers(model: nn.Module) -> list[nn.Module]:
    """Return the layers `freeze=` counts: children of `model.model` (a sequential net), else top modules."""
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module) and len(list(inner.children())) > 1:
        return list(inner.children())
    return list(model.children())
