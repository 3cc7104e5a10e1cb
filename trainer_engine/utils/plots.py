"""The run's plots (`plots=True`): results.png, confusion matrix, labels, predictions, PR curve.

They are drawn once, after the run (`on_train_end`), from results.csv and what the validator kept of
its last pass (the final evaluation of best.pt, or the last epoch's): no epoch waits on matplotlib.
During validation the tasks only keep the first batch and count the confusion matrix, which costs
well under 1% of an epoch. matplotlib is imported here only, with the Agg backend (no display).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer_engine.utils import LOGGER

MAX_IMAGES = 16
CM_CONF = 0.25  # a detection counts in the confusion matrix from this score
CM_IOU = 0.45


def _pyplot() -> Any:
    """Return matplotlib.pyplot on the Agg backend (imported on first use: training never pays it)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_results(csv_path: Path, out: Path | None = None) -> Path | None:
    """Draw every column of results.csv over epochs, one panel each; return the file (None without rows)."""
    try:
        with csv_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        return None
    if not rows:
        return None
    columns = [c for c in rows[0] if c not in ("epoch", "time")]
    epochs = [float(r["epoch"]) for r in rows]
    plt = _pyplot()
    ncols = min(5, max(1, len(columns)))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        values = [float(r[column]) if r.get(column) not in (None, "") else np.nan for r in rows]
        ax.plot(epochs, values, marker="." if len(rows) < 50 else None, linewidth=1.5)
        ax.set_title(column, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    fig.tight_layout()
    out = out or csv_path.with_name("results.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


class ConfusionMatrix:
    """Counts of (predicted, true) classes; detection adds a 'background' row and column."""

    def __init__(self, nc: int, detection: bool = False) -> None:
        self.nc = nc
        self.detection = detection
        size = nc + 1 if detection else nc
        self.matrix = np.zeros((size, size), np.int64)  # [predicted, true]

    def update_classes(self, pred: np.ndarray, true: np.ndarray) -> None:
        """Count top-1 predictions against labels (class indices past the names are left out)."""
        pred, true = pred.astype(int), true.astype(int)
        known = (pred < self.nc) & (true < self.nc)
        np.add.at(self.matrix, (pred[known], true[known]), 1)

    def update_detections(self, pred: Any, gt_boxes: Any, gt_cls: Any) -> None:
        """Count one image: detections (n, 6: xyxy, score, class) matched to labels at IoU >= CM_IOU."""
        from torchvision.ops import box_iou

        bg = self.nc
        # A class index past the data set's names (a foreign checkpoint, a label the names miss) has no
        # cell: it is left out of the plot, as the metrics code leaves it to the mAP.
        pred = pred[(pred[:, 4] >= CM_CONF) & (pred[:, 5] < self.nc)]
        gt = gt_cls.cpu().numpy().astype(int).reshape(-1)
        known = gt < self.nc
        gt, gt_boxes = gt[known], gt_boxes[known.tolist()]
        if len(gt) == 0:
            for c in pred[:, 5].cpu().numpy().astype(int):
                self.matrix[c, bg] += 1
            return
        used_pred: set[int] = set()
        if len(pred):
            iou = box_iou(gt_boxes.float(), pred[:, :4].float()).cpu().numpy()
            pcls = pred[:, 5].cpu().numpy().astype(int)
            for g, c in enumerate(gt):
                candidates = [p for p in np.argsort(-iou[g]) if iou[g, p] >= CM_IOU and p not in used_pred]
                if candidates:
                    used_pred.add(int(candidates[0]))
                    self.matrix[pcls[candidates[0]], c] += 1
                else:
                    self.matrix[bg, c] += 1
            for p, c in enumerate(pcls):
                if p not in used_pred:
                    self.matrix[c, bg] += 1
        else:
            for c in gt:
                self.matrix[bg, c] += 1

    def plot(self, names: Sequence[str], out: Path) -> Path:
        """Draw the matrix normalised per true class (columns), with the counts written in."""
        plt = _pyplot()
        labels = [*names, "background"] if self.detection else list(names)
        totals = self.matrix.sum(0, keepdims=True)
        norm = self.matrix / np.maximum(totals, 1)
        n = len(labels)
        fig, ax = plt.subplots(figsize=(max(4, 0.5 * n + 2), max(3.5, 0.5 * n + 1.5)))
        image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_xticks(range(n), labels, rotation=90 if n > 8 else 0, fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        if n <= 30:
            for (i, j), count in np.ndenumerate(self.matrix):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_title("confusion matrix")
        fig.tight_layout()
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


def plot_labels(classes: np.ndarray, wh: np.ndarray, names: Sequence[str], out: Path) -> Path:
    """Draw the training labels: instances per class, and box width against height (image fractions)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    counts = np.bincount(classes.astype(int), minlength=len(names))
    left.bar(range(len(counts)), counts, color="#2563eb")
    left.set_xticks(range(len(counts)), list(names)[: len(counts)], rotation=90 if len(counts) > 8 else 0)
    left.set_ylabel("instances")
    left.set_title("labels per class")
    if len(wh):
        right.hist2d(wh[:, 0], wh[:, 1], bins=30, range=[[0, 1], [0, 1]], cmap="Blues")
    right.set_xlabel("width")
    right.set_ylabel("height")
    right.set_title("box sizes")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_images(
    images: Any, out: Path, draw: Callable[[Any, int], None], titles: Sequence[str] | None = None
) -> Path:
    """Draw up to MAX_IMAGES images (N, C, H, W in 0..1) in a grid; `draw(ax, i)` adds each one's marks."""
    plt = _pyplot()
    images = images[:MAX_IMAGES].detach().float().cpu().numpy()
    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = np.clip(images[i].transpose(1, 2, 0), 0, 1)
        ax.imshow(
            image if image.shape[2] == 3 else image[..., 0], cmap=None if image.shape[2] == 3 else "gray"
        )
        draw(ax, i)
        if titles:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110, pil_kwargs={"quality": 90})
    plt.close(fig)
    return out


def plot_pr_curve(
    tp: np.ndarray,
    conf: np.ndarray,
    pred_cls: np.ndarray,
    target_cls: np.ndarray,
    names: Sequence[str],
    out: Path,
) -> Path:
    """Draw precision against recall at IoU 0.5 per class and their mean, with AP50 in the legend."""
    plt = _pyplot()
    order = np.argsort(-conf, kind="mergesort")
    tp, pred_cls = tp[order], pred_cls[order]
    grid = np.linspace(0, 1, 101)
    curves = []
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for c in np.unique(target_cls.astype(int)):
        n_gt = int((target_cls == c).sum())
        hits = tp[pred_cls == c]
        if not len(hits):
            curve = np.zeros_like(grid)
        else:
            tps = np.cumsum(hits)
            recall, precision = tps / n_gt, tps / np.arange(1, len(hits) + 1)
            precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope AP integrates
            idx = np.searchsorted(recall, grid, side="left")
            curve = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
        curves.append(curve)
        label = names[c] if c < len(names) else str(c)
        ax.plot(grid, curve, linewidth=1, label=f"{label} {curve.mean():.3f}" if len(names) <= 10 else None)
    if curves:
        mean = np.mean(curves, 0)
        ax.plot(grid, mean, linewidth=3, color="#2563eb", label=f"all classes {mean.mean():.3f} mAP@0.5")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall (IoU 0.5)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_after_run(trainer: Any) -> None:
    """Draw the run's plots (`on_train_end`): results.png, then the task's own (`trainer.plot_metrics`)."""
    if not getattr(trainer.args, "plots", False) or not trainer.is_main:
        return
    if trainer.stop_reason in ("stop", "signal"):
        return  # a stop request wants the run to end now
    try:
        plot_results(Path(trainer.csv))
        trainer.plot_metrics()
    except Exception as exc:  # a plot must never fail a finished run
        LOGGER.warning("could not draw the run's plots: %s", exc)


callbacks = {"on_train_end": [plot_after_run]}
