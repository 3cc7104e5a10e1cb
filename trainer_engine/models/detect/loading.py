"""Turn the `model=` a validator or predictor is given (module, checkpoint or config) into a ready model."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from trainer_engine.nn.detection import DetectionModel
from trainer_engine.utils.checkpoint import load_checkpoint

LOGGER = logging.getLogger("trainer_engine")


def load_detection_model(model: str | Path | nn.Module | None, device: torch.device | str) -> nn.Module:
    """Return `model` in eval mode on `device`: a module as is, a .pt rebuilt, a .yaml untrained."""
    if model is None:
        raise ValueError("no model given; pass model=path/to/best.pt (a checkpoint written by a trainer)")
    if isinstance(model, nn.Module):
        module = model
    elif str(model).endswith(".pt"):
        module = DetectionModel.from_checkpoint(load_checkpoint(model))
    else:
        # A config builds an untrained network: useful for smoke tests, meaningless for metrics.
        LOGGER.warning("model=%s is a config, not a checkpoint: its weights are random", model)
        module = DetectionModel(model, verbose=False)
    return module.to(device).eval()
