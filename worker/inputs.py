"""Turn a job's recorded datasets and models into local paths before its child starts.

    for each JobInput (the exact version resolved at submit):
        dataset → the worker cache's unpacked set, held until the run ends (cache hit or unpacked now)
        model   → the blob on the shared store, through a `<sha>.pt` link in the worker cache
    the override becomes that path; the job's log says which version and whether the cache was hit

The service checked the tenant at submit; here the rows are re-read by id, and a row that is gone
or no longer ready fails the job with the reason instead of training on something else.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trainforge.datasets import repository, service
from trainforge.datasets.archive import ArchiveError
from trainforge.datasets.service import DATA_YAML
from trainforge.datasets.storage import get_store
from trainforge.db.models import Dataset, ModelWeights
from trainforge.db.session import session_scope
from trainforge.settings import Settings
from trainforge.vocab import UploadStatus
from worker.dataset_cache import CachedSet, DatasetCache


class InputError(RuntimeError):
    """A job's dataset or model cannot be made available; the message is the job's error."""


@dataclass
class Prepared:
    """The overrides with local paths, the cache sets held for the run, and the lines for its log."""

    overrides: dict[str, Any]
    held: list[CachedSet] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Let the cache evict the sets again."""
        for cached in self.held:
            cached.release()


def worker_cache(settings: Settings) -> DatasetCache:
    """Return this worker's dataset cache."""
    return DatasetCache(settings.cache_dir, settings.cache_max_bytes)


def pin(session: Session, job_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Return `overrides` with each dataset:/model: reference replaced by the exact version recorded
    at submit (`dataset:<id>`), so a later upload under the same name does not change the run."""
    pinned = dict(overrides)
    for item in repository.job_inputs(session, job_id):
        pinned[item.key] = f"{item.kind}:{item.resource_id}"
    return pinned


def prepare(job_id: str, overrides: dict[str, Any], settings: Settings) -> Prepared:
    """Resolve the job's inputs to local paths; InputError when one is gone or cannot be unpacked."""
    with session_scope() as session:
        rows = []
        for item in repository.job_inputs(session, job_id):
            row = repository.get(
                session, Dataset if item.kind == "dataset" else ModelWeights, item.resource_id
            )
            if row is None or row.status != UploadStatus.READY or row.sha256 != item.sha256:
                raise InputError(f"{item.key}: {item.kind} {item.name}@{item.version} was deleted or changed")
            rows.append((item.key, row))
    prepared = Prepared(dict(overrides))
    try:
        for key, row in rows:
            if isinstance(row, Dataset):
                prepared.overrides[key] = str(_dataset_path(row, settings, prepared))
            else:
                assert row.sha256 is not None  # checked above against the recorded hash
                prepared.overrides[key] = str(_model_path(row.sha256, settings))
                prepared.lines.append(f"{key}: model {row.name}@{row.version} (sha256 {row.sha256[:12]})")
    except BaseException:
        prepared.release()
        raise
    return prepared


def _model_path(sha256: str, settings: Settings) -> Path:
    """Return a `.pt` path of the stored checkpoint (the engine tells checkpoints by their suffix).

    A link in the worker cache to the blob on the store, made once per content hash.
    """
    blob = get_store(settings.storage_dir).path(sha256)
    link = settings.cache_dir / "models" / f"{sha256}.pt"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}")
        tmp.symlink_to(blob.resolve())
        os.replace(tmp, link)
    return link


def _dataset_path(row: Dataset, settings: Settings, prepared: Prepared) -> Path:
    """Return the local path the engine reads dataset `row` from (its data.yaml, or its folder)."""
    assert row.sha256 is not None
    started = time.monotonic()
    archive = get_store(settings.storage_dir).path(row.sha256)
    try:
        cached = worker_cache(settings).acquire(
            row.sha256, archive, row.format, service.archive_limits(settings)
        )
    except (ArchiveError, OSError) as exc:
        raise InputError(
            f"dataset {row.name}@{row.version} could not be unpacked on this worker: {exc}"
        ) from None
    prepared.held.append(cached)
    how = "cache hit" if cached.hit else f"cache miss, unpacked in {time.monotonic() - started:.1f} s"
    prepared.lines.append(f"data: dataset {row.name}@{row.version} (sha256 {row.sha256[:12]}): {how}")
    top = cached.path / str((row.report or {}).get("root") or ".")
    return top / DATA_YAML if row.task == "detect" else top
