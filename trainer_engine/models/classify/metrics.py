"""Top-1 / top-5 accuracy for classification, with the Ultralytics metric keys and fitness."""

from __future__ import annotations

import torch

TOP1 = "metrics/accuracy_top1"
TOP5 = "metrics/accuracy_top5"


class ClassifyMetrics:
    """Accumulate top-k predictions and targets; report top1, top5 and fitness = (top1 + top5) / 2."""

    def __init__(self) -> None:
        self.top1 = 0.0
        self.top5 = 0.0
        self.speed: dict[str, float] = {}

    def process(self, targets: torch.Tensor, pred: torch.Tensor) -> None:
        """Score `pred` (N, k class indices, best first) against `targets` (N,)."""
        if targets.numel() == 0:
            self.top1 = self.top5 = 0.0
            return
        correct = pred == targets[:, None]
        self.top1 = correct[:, 0].float().mean().item()
        # With fewer than 5 classes, top-5 is over all classes and is therefore 1.0, as in Ultralytics.
        self.top5 = correct.any(1).float().mean().item()

    @property
    def fitness(self) -> float:
        """Return the mean of top1 and top5: the number the trainer maximises."""
        return (self.top1 + self.top5) / 2

    @property
    def keys(self) -> list[str]:
        """Return the metric keys in results order."""
        return [TOP1, TOP5]

    @property
    def results_dict(self) -> dict[str, float]:
        """Return {top1 key, top5 key, "fitness"} as plain floats."""
        return {TOP1: self.top1, TOP5: self.top5, "fitness": self.fitness}


def topk_indices(logits: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Return the indices of the `min(k, nc)` highest logits per row, best first."""
    return logits.topk(min(k, logits.shape[1]), dim=1).indices
