"""Decoupled anchor-free detection head with distribution focal loss (DFL) box regression."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer_engine.nn.detect_blocks import ConvBNAct
from trainer_engine.nn.detect_ops import dist2bbox, make_anchors


class DFL(nn.Module):
    """Read a box side as the expectation of a discrete distribution over reg_max bins (GFL)."""

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("bins", torch.arange(reg_max, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, 4 * reg_max, A) logits to (B, A, 4) distances in stride units."""
        b, _, a = x.shape
        prob = x.view(b, 4, self.reg_max, a).softmax(2)
        return torch.einsum("bkra,r->bak", prob, self.bins.to(prob.dtype))


class DetectHead(nn.Module):
    """Separate class and box branches per stride; training returns raw maps, inference decoded boxes."""

    def __init__(self, nc: int, channels: list[int], strides: list[int], reg_max: int = 16) -> None:
        super().__init__()
        self.nc = nc
        self.reg_max = reg_max
        self.no = nc + 4 * reg_max
        self.register_buffer("stride", torch.tensor(strides, dtype=torch.float32))
        c_box = max(16, channels[0] // 4, 4 * reg_max)
        c_cls = max(channels[0], min(nc, 100))
        self.box = nn.ModuleList(
            nn.Sequential(
                ConvBNAct(c, c_box, 3), ConvBNAct(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1)
            )
            for c in channels
        )
        self.cls = nn.ModuleList(
            nn.Sequential(ConvBNAct(c, c_cls, 3), ConvBNAct(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1))
            for c in channels
        )
        self.dfl = DFL(reg_max)

    def init_bias(self, imgsz: int = 640, prior: float = 0.01) -> None:
        """Start class scores at a small prior so early losses are not dominated by background (RetinaNet)."""
        for box, cls, s in zip(self.box, self.cls, self.stride.tolist(), strict=True):
            nn.init.constant_(box[-1].bias, 1.0)
            # Fewer objects per cell at fine strides: scale the prior by cells per image.
            p = min(prior, 5 / self.nc / (imgsz / s) ** 2) if self.nc else prior
            nn.init.constant_(cls[-1].bias, math.log(p / (1 - p)))

    def forward_maps(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Return per-stride raw (B, 4 * reg_max + nc, H, W) maps."""
        return [torch.cat((b(f), c(f)), 1) for f, b, c in zip(feats, self.box, self.cls, strict=True)]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        """Return raw maps when training, else decoded (B, 4 + nc, A)."""
        maps = self.forward_maps(feats)
        return maps if self.training else self.decode(maps)

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Turn raw maps into xyxy pixel boxes and sigmoid class scores, shape (B, 4 + nc, A)."""
        anchors, strides = make_anchors(maps, self.stride)
        flat = torch.cat([m.flatten(2) for m in maps], 2)
        box_logits, cls_logits = flat.split((4 * self.reg_max, self.nc), 1)
        boxes = dist2bbox(self.dfl(box_logits), anchors.unsqueeze(0)) * strides.unsqueeze(0)
        return torch.cat((boxes.transpose(1, 2), cls_logits.sigmoid()), 1)
