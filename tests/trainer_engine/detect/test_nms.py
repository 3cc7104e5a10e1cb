"""Decoding thresholds: conf, iou, classes, agnostic NMS and max_det."""

from __future__ import annotations

import torch

from trainer_engine.nn.detect_ops import non_max_suppression


def _decoded() -> torch.Tensor:
    """Three boxes, two of them overlapping with IoU 0.6 (same class), as (1, 4 + 2, 3)."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 6], [50, 50, 60, 60]])
    scores = torch.tensor([[0.9, 0.0], [0.6, 0.1], [0.05, 0.3]])
    return torch.cat((boxes, scores), 1).T.unsqueeze(0)


def test_conf_threshold_drops_low_scores() -> None:
    assert len(non_max_suppression(_decoded(), conf=0.25, iou=0.7)[0]) == 3
    out = non_max_suppression(_decoded(), conf=0.5, iou=0.7)[0]
    assert out[:, 4].tolist() == [0.8999999761581421, 0.6000000238418579]


def test_iou_threshold_controls_suppression() -> None:
    kept_loose = non_max_suppression(_decoded(), conf=0.25, iou=0.7)[0]
    kept_tight = non_max_suppression(_decoded(), conf=0.25, iou=0.5)[0]
    assert len(kept_loose) == 3 and len(kept_tight) == 2  # IoU 0.6: kept at 0.7, suppressed at 0.5
    assert kept_tight[:, 5].tolist() == [0.0, 1.0]


def test_classes_agnostic_and_max_det() -> None:
    assert non_max_suppression(_decoded(), conf=0.25, classes=[1])[0][:, 5].tolist() == [1.0]
    preds = _decoded()
    preds[0, 5, 1] = 0.95  # the second box becomes class 1: per-class NMS keeps both overlapping boxes
    assert len(non_max_suppression(preds, conf=0.25, iou=0.5)[0]) == 3
    assert len(non_max_suppression(preds, conf=0.25, iou=0.5, agnostic=True)[0]) == 2
    assert len(non_max_suppression(preds, conf=0.25, iou=0.5, max_det=1)[0]) == 1
