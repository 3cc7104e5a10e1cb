"""The headline metric of each task: the one a job's "best" refers to, on the API and the pages."""

from __future__ import annotations

from typing import Any

# Detection's mAP50-95 and classification's top-1 accuracy: higher is better for both.
PRIMARY_METRICS = ("metrics/mAP50-95(B)", "metrics/accuracy_top1")


def primary_metric(metrics: dict[str, Any] | None) -> tuple[str, float] | None:
    """Return the headline (name, value) of a metrics dict, or None when it has none."""
    for key in PRIMARY_METRICS:
        value = (metrics or {}).get(key)
        if isinstance(value, int | float) and value == value:  # NaN is no value
            return key.removeprefix("metrics/"), float(value)
    return None


def best_so_far(
    best: dict[str, Any] | None, metrics: dict[str, Any] | None, epoch: int | None
) -> dict[str, Any] | None:
    """Return the job's best {metric, value, epoch} after an epoch with `metrics`; None if unchanged."""
    found = primary_metric(metrics)
    if found is None or epoch is None:
        return None
    name, value = found
    best = best or {}
    if best.get("metric") == name and isinstance(best.get("value"), int | float) and value < best["value"]:
        return None
    return {"metric": name, "value": value, "epoch": epoch}
