"""Move boxes between the letterboxed network frame and the original image."""

from __future__ import annotations

from typing import Any

import torch


def scale_boxes(boxes: torch.Tensor, ratio_pad: tuple[Any, Any], ori_shape: tuple[int, int]) -> torch.Tensor:
    """Map xyxy boxes from the letterboxed frame back to the original (h, w) image, clipped to it."""
    r, (padx, pady) = ratio_pad
    r = float(r[0] if isinstance(r, (tuple, list)) else r)
    out = boxes.clone()
    out[:, [0, 2]] = ((out[:, [0, 2]] - padx) / r).clamp(0, ori_shape[1])
    out[:, [1, 3]] = ((out[:, [1, 3]] - pady) / r).clamp(0, ori_shape[0])
    return out
