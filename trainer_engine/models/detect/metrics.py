"""COCO-style detection metrics: greedy IoU matching at 10 thresholds and 101-point interpolated AP.

The matching and interpolation follow the COCO evaluation protocol (pycocotools' COCOeval with
area "all" and no crowd boxes), so mAP agrees with it on the same detections; the tests check that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.ops import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def match_predictions(
    pred: torch.Tensor, gt_boxes: torch.Tensor, gt_cls: torch.Tensor, iouv: np.ndarray = IOU_THRESHOLDS
) -> np.ndarray:
    """Mark each prediction (n, 6: xyxy, score, class) true-positive per IoU threshold -> (n, len(iouv)) bool.

    Predictions are taken by descending score; each takes the unmatched same-class box with the highest
    IoU at or above the threshold, as COCO does, independently for every threshold.
    """
    n = len(pred)
    tp = np.zeros((n, len(iouv)), bool)
    if n == 0 or len(gt_boxes) == 0:
        return tp
    iou = box_iou(pred[:, :4].float(), gt_boxes.float()).cpu().numpy()
    iou[pred[:, 5].cpu().numpy()[:, None] != gt_cls.cpu().numpy()[None, :]] = -1.0
    matched = np.zeros((len(iouv), len(gt_boxes)), bool)
    order = np.argsort(-pred[:, 4].cpu().numpy(), kind="mergesort")
    for p in order:
        row = iou[p]
        if row.max() < iouv[0]:
            continue  # matches nothing at any threshold
        cand = np.where((row[None, :] >= iouv[:, None]) & ~matched, row[None, :], -1.0)
        best = cand.argmax(1)
        ok = cand[np.arange(len(iouv)), best] >= 0
        tp[p, ok] = True
        matched[np.flatnonzero(ok), best[ok]] = True
    return tp


@dataclass
class DetMetrics:
    """Per-class AP at each IoU threshold plus precision/recall at the best mean-F1 confidence."""

    names: dict[int, str] = field(default_factory=dict)
    ap: np.ndarray = field(default_factory=lambda: np.zeros((0, 10)))  # (classes with labels, 10)
    ap_class: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    p: float = 0.0
    r: float = 0.0

    @property
    def map50(self) -> float:
        """Mean AP at IoU 0.5."""
        return float(self.ap[:, 0].mean()) if len(self.ap) else 0.0

    @property
    def map(self) -> float:
        """Mean AP over IoU 0.5:0.95."""
        return float(self.ap.mean()) if len(self.ap) else 0.0

    @property
    def fitness(self) -> float:
        """Model fitness: mAP50-95."""
        return self.map

    def results_dict(self) -> dict[str, float]:
        """Return the metrics under the Ultralytics keys."""
        return {
            "metrics/precision(B)": self.p,
            "metrics/recall(B)": self.r,
            "metrics/mAP50(B)": self.map50,
            "metrics/mAP50-95(B)": self.map,
        }


def average_precision(tp: np.ndarray, n_gt: int) -> np.ndarray:
    """101-point interpolated AP per threshold from score-sorted true-positive flags (n, T)."""
    tps = np.cumsum(tp, 0, dtype=np.float64)
    fps = np.cumsum(~tp, 0, dtype=np.float64)
    ap = np.zeros(tp.shape[1])
    for t in range(tp.shape[1]):
        rc = tps[:, t] / n_gt
        pr = tps[:, t] / (tps[:, t] + fps[:, t] + np.spacing(1))
        # Precision envelope: the best precision at this recall or any higher one.
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        idx = np.searchsorted(rc, RECALL_POINTS, side="left")
        q = np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0)
        ap[t] = q.mean()
    return ap


def compute_metrics(
    tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray, names: dict[int, str]
) -> DetMetrics:
    """Compute per-class AP, precision and recall from all images' matched predictions.

    Rows must be in image order; a stable sort by score then reproduces COCO's tie order.
    Classes without labels are left out of the means, as COCO does.
    """
    order = np.argsort(-conf, kind="mergesort")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    classes = np.unique(target_cls.astype(int))
    grid = np.linspace(0, 1, 1000)
    ap = np.zeros((len(classes), tp.shape[1] if tp.ndim == 2 else len(IOU_THRESHOLDS)))
    p_curve, r_curve = np.zeros((len(classes), len(grid))), np.zeros((len(classes), len(grid)))
    for i, c in enumerate(classes):
        sel = pred_cls == c
        n_gt = int((target_cls == c).sum())
        if not sel.any():
            continue
        ap[i] = average_precision(tp[sel], n_gt)
        tpc = np.cumsum(tp[sel, 0])
        recall = tpc / n_gt
        precision = tpc / np.arange(1, len(tpc) + 1)
        # Curves over a confidence grid (conf is descending, np.interp needs ascending x).
        r_curve[i] = np.interp(-grid, -conf[sel], recall, left=0)
        p_curve[i] = np.interp(-grid, -conf[sel], precision, left=1)
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + 1e-16)
    best = int(f1.mean(0).argmax()) if len(classes) else 0
    p = float(p_curve[:, best].mean()) if len(classes) else 0.0
    r = float(r_curve[:, best].mean()) if len(classes) else 0.0
    return DetMetrics(names=names, ap=ap, ap_class=classes, p=p, r=r)


class DetStats:
    """Accumulate matched detections over images, then compute DetMetrics."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.tp: list[np.ndarray] = []
        self.conf: list[np.ndarray] = []
        self.pred_cls: list[np.ndarray] = []
        self.target_cls: list[np.ndarray] = []

    def update(self, pred: torch.Tensor, gt_boxes: torch.Tensor, gt_cls: torch.Tensor) -> None:
        """Add one image's (n, 6) detections and its xyxy boxes and classes (same pixel frame)."""
        self.tp.append(match_predictions(pred, gt_boxes, gt_cls))
        self.conf.append(pred[:, 4].cpu().numpy())
        self.pred_cls.append(pred[:, 5].cpu().numpy())
        self.target_cls.append(gt_cls.cpu().numpy().reshape(-1))

    def compute(self) -> DetMetrics:
        """Return the metrics over every image added so far."""
        if not self.tp:
            return DetMetrics(names=self.names)
        return compute_metrics(
            np.concatenate(self.tp),
            np.concatenate(self.conf),
            np.concatenate(self.pred_cls),
            np.concatenate(self.target_cls),
            self.names,
        )
