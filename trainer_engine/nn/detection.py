"""DetectionModel: CSP backbone, FPN/PAN neck and a decoupled anchor-free head, built from a config file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from trainer_engine.nn.base import BaseModel
from trainer_engine.nn.detect_blocks import Backbone, PANNeck
from trainer_engine.nn.detect_config import load_model_cfg, scaled_arch
from trainer_engine.nn.detect_head import DetectHead
from trainer_engine.nn.detect_loss import DetectionLoss

LOGGER = logging.getLogger("trainer_engine")
STRIDES = [8, 16, 32]


class DetectionModel(BaseModel):
    """An anchor-free one-stage detector; `model(batch)` is the loss, `model(images)` the detections.

    Users change the loss by overriding `init_criterion()` (the Ultralytics guide's example).
    """

    def __init__(
        self,
        cfg: str | Path | dict[str, Any] | None = "tiny-det-n.yaml",
        ch: int = 3,
        nc: int | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.yaml = load_model_cfg(cfg or "tiny-det-n.yaml")
        if nc is not None and nc != self.yaml.get("nc"):
            if verbose:
                LOGGER.info("overriding model config nc=%s with nc=%s", self.yaml.get("nc"), nc)
            self.yaml["nc"] = int(nc)
        self.nc = int(self.yaml.get("nc", 80))
        if self.nc < 1:
            raise ValueError(f"a detection model needs nc >= 1 classes, got nc={self.nc}")
        widths, depths, neck_depth = scaled_arch(self.yaml)
        self.backbone = Backbone(widths, depths, ch)
        self.neck = PANNeck(widths[2:], neck_depth)
        self.head = DetectHead(self.nc, widths[2:], STRIDES, int(self.yaml.get("reg_max", 16)))
        self.head.init_bias()
        self.stride = self.head.stride
        self.names: dict[int, str] = {i: str(i) for i in range(self.nc)}
        self.args: Any = None
        if verbose:
            n_params = sum(p.numel() for p in self.parameters())
            LOGGER.info(
                "DetectionModel scale=%s nc=%d params=%.2fM", self.yaml["scale"], self.nc, n_params / 1e6
            )

    def predict(self, x: torch.Tensor, raw: bool = False, **kwargs: Any) -> Any:
        """Run the network: raw per-stride maps when training (or `raw`), else `(decoded, maps)`.

        `decoded` is (B, 4 + nc, A): xyxy pixel boxes and sigmoid class scores per anchor; the maps
        come along so a validator can compute the loss from the same forward pass.
        """
        maps = self.head.forward_maps(self.neck(self.backbone(x)))
        if raw or self.training:
            return maps
        return self.head.decode(maps), maps

    def init_criterion(self) -> Any:
        """Build the default loss: task-aligned assignment, BCE classes, CIoU boxes and DFL."""
        return DetectionLoss(self)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], verbose: bool = False) -> DetectionModel:
        """Rebuild the exact model a trainer checkpoint holds (architecture from `model_cfg`, all weights)."""
        cfg = ckpt.get("model_cfg")
        if not isinstance(cfg, dict) or "backbone" not in cfg:
            raise ValueError(
                f"checkpoint model_cfg {cfg!r} is not a detection model config; "
                "it was not written by a DetectionTrainer (or its model has no `yaml` dict)"
            )
        # The config's nc is the head that was trained; the checkpoint's `nc` is the data's, which a custom
        # get_model may not have passed on.
        model = cls(cfg, verbose=verbose)
        model.load_state_dict(ckpt["model"])
        names = ckpt.get("names")
        if names:
            pairs = names.items() if isinstance(names, dict) else enumerate(names)
            model.names = {int(k): str(v) for k, v in pairs}
        return model

    def load(self, weights: dict[str, Any] | torch.nn.Module, verbose: bool = True) -> int:
        """Copy every parameter whose name and shape match (so a new nc keeps the backbone); return count."""
        if isinstance(weights, torch.nn.Module):
            weights = weights.state_dict()
        own = self.state_dict()
        matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(matched, strict=False)
        if verbose:
            LOGGER.info("transferred %d/%d items from pretrained weights", len(matched), len(own))
        return len(matched)
