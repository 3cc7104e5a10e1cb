"""Validate an upload off the request path: unpack and read a dataset, or load a checkpoint.

    re-read the row; only a `validating` row is worked on (a redelivered task is a no-op)
    dataset: unpack the blob safely into a scratch folder of the cache dir, check the layout
    model:   torch.load(weights_only=True) on the CPU, count tensors and parameters
    record ready | invalid with the report, in one transaction

Runs in the service worker (the `default` queue), never in the API process, so a hostile archive or
pickle costs a worker's time, not the API's.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from typing import Any

from trainforge.datasets import repository, service
from trainforge.datasets.archive import ArchiveError, extract
from trainforge.datasets.repository import UploadClass
from trainforge.datasets.storage import get_store
from trainforge.db.models import Dataset, ModelWeights
from trainforge.db.session import session_scope
from trainforge.settings import Settings
from trainforge.vocab import UploadStatus
from worker.dataset_check import check_dataset

log = logging.getLogger(__name__)


def _claim(cls: UploadClass, row_id: str) -> tuple[str, str] | None:
    """Return (sha256, format) of a row waiting for validation, or None."""
    with session_scope() as session:
        row = repository.get(session, cls, row_id)
        if row is None or row.status != UploadStatus.VALIDATING or row.sha256 is None:
            return None
        return row.sha256, row.format


def _record(
    cls: UploadClass, row_id: str, report: dict[str, Any] | None, error: str | None, task: str | None
) -> str:
    """Store the outcome on the row (if it still waits) and return its status."""
    with session_scope() as session:
        row = repository.get(session, cls, row_id)
        if row is None or row.status != UploadStatus.VALIDATING:
            return "gone"
        service.record_validation(session, row, report, error, task)
        return row.status


def validate_dataset(dataset_id: str, settings: Settings) -> str:
    """Validate dataset `dataset_id`; return the status it ends in."""
    claimed = _claim(Dataset, dataset_id)
    if claimed is None:
        return "skipped"
    sha, fmt = claimed
    scratch = settings.cache_dir / "validate" / f"{dataset_id}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            extract(
                get_store(settings.storage_dir).path(sha),
                fmt,
                scratch / "set",
                service.archive_limits(settings),
            )
        except ArchiveError as exc:
            return _record(Dataset, dataset_id, {"problems": [str(exc)], "problem_count": 1}, str(exc), None)
        report = check_dataset(scratch / "set")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    error = None if report.ok else report.summary()
    log.info("dataset %s validated: %s", dataset_id, error or "ready")
    return _record(Dataset, dataset_id, report.to_dict(), error, report.task)


def validate_model(model_id: str, settings: Settings) -> str:
    """Check that model `model_id` loads with torch.load(weights_only=True); return its status."""
    claimed = _claim(ModelWeights, model_id)
    if claimed is None:
        return "skipped"
    sha, _ = claimed
    import torch  # only here: the rest of the service worker has no use for it

    try:
        loaded = torch.load(get_store(settings.storage_dir).path(sha), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling raises any type; each means "not a safe checkpoint"
        reason = f"not loadable with torch.load(weights_only=True): {type(exc).__name__}: {str(exc)[:300]}"
        return _record(ModelWeights, model_id, {"problems": [reason]}, reason, None)
    return _record(ModelWeights, model_id, describe_checkpoint(loaded, torch), None, None)


def describe_checkpoint(loaded: Any, torch: Any) -> dict[str, Any]:
    """Return what a loaded checkpoint holds: its top-level keys and how many tensors and parameters."""
    tensors = 0
    parameters = 0
    todo = [loaded]
    while todo:
        item = todo.pop()
        if isinstance(item, torch.Tensor):
            tensors += 1
            parameters += item.numel()
        elif isinstance(item, dict):
            todo += item.values()
        elif isinstance(item, list | tuple):
            todo += item
    keys = [str(k) for k in loaded][:50] if isinstance(loaded, dict) else []
    return {"type": type(loaded).__name__, "keys": keys, "tensors": tensors, "parameters": parameters}
