"""Anchor points, distance <-> box conversion and non-maximum suppression for the detection head."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.ops import batched_nms


def make_anchors(
    feats: list[torch.Tensor], strides: torch.Tensor, offset: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return grid-cell centre points (A, 2) in feature units and their strides (A, 1)."""
    points, stride_list = [], []
    for feat, stride in zip(feats, strides, strict=True):
        h, w = feat.shape[-2:]
        sx = torch.arange(w, device=feat.device, dtype=feat.dtype) + offset
        sy = torch.arange(h, device=feat.device, dtype=feat.dtype) + offset
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), float(stride), dtype=feat.dtype, device=feat.device))
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance: torch.Tensor, anchor_points: torch.Tensor) -> torch.Tensor:
    """Turn left/top/right/bottom distances from anchor points into xyxy boxes."""
    lt, rb = distance.chunk(2, -1)
    return torch.cat((anchor_points - lt, anchor_points + rb), -1)


def bbox2dist(anchor_points: torch.Tensor, bbox: torch.Tensor, reg_max: int) -> torch.Tensor:
    """Turn xyxy boxes into ltrb distances from anchor points, clamped to the DFL bin range."""
    x1y1, x2y2 = bbox.chunk(2, -1)
    # Just under the last bin so the right-hand DFL neighbour index stays in range.
    return torch.cat((anchor_points - x1y1, x2y2 - anchor_points), -1).clamp_(0, reg_max - 1 - 0.01)


def non_max_suppression(
    preds: torch.Tensor | tuple[torch.Tensor, Any],
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    classes: list[int] | None = None,
    agnostic: bool = False,
    max_candidates: int = 30000,
) -> list[torch.Tensor]:
    """Filter decoded predictions (B, 4 + nc, A) into per-image (n, 6) tensors of xyxy, score, class."""
    if isinstance(preds, (tuple, list)):
        preds = preds[0]  # (decoded, maps) from an eval-mode DetectionModel
    out = []
    for pred in preds.transpose(1, 2):
        boxes, scores = pred[:, :4], pred[:, 4:]
        score, cls = scores.max(1)
        keep = score > conf
        if classes is not None:
            keep &= torch.isin(cls, torch.as_tensor(classes, device=cls.device))
        boxes, score, cls = boxes[keep], score[keep], cls[keep]
        if score.numel() > max_candidates:
            top = score.topk(max_candidates).indices
            boxes, score, cls = boxes[top], score[top], cls[top]
        groups = torch.zeros_like(cls) if agnostic else cls
        idx = batched_nms(boxes, score, groups, iou)[:max_det]
        out.append(torch.cat((boxes[idx], score[idx, None], cls[idx, None].to(boxes.dtype)), 1))
    return out
