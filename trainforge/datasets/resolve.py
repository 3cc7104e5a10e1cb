"""The `dataset:` and `model:` references of a job's overrides, resolved for the job's tenant.

    data=dataset:shapes-v1         the newest version of the tenant's dataset shapes-v1
    data=dataset:shapes-v1@2       version 2
    data=dataset:<id>              that exact version
    model=model:start[@N]          an uploaded checkpoint (also pretrained=model:...)

A reference resolves only to a `ready` row of the same tenant; another tenant's, a missing, a
deleted and a not-yet-validated one are all the same 422, which never tells whether it exists
elsewhere. The job records the exact version it resolved to (`JobInput`), so a later upload of the
same name does not change what a queued job trains on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from trainforge.datasets import service
from trainforge.datasets.repository import Upload, UploadClass
from trainforge.db.models import Dataset, JobInput, ModelWeights
from trainforge.errors import Invalid, NotFound
from trainforge.vocab import UploadStatus

DATASET_SCHEME = "dataset:"
MODEL_SCHEME = "model:"
# Which override may name which kind of resource.
REFERENCE_KEYS: dict[str, tuple[str, UploadClass]] = {
    "data": (DATASET_SCHEME, Dataset),
    "model": (MODEL_SCHEME, ModelWeights),
    "pretrained": (MODEL_SCHEME, ModelWeights),
}


def is_reference(value: Any) -> bool:
    """Return whether an override value is a `dataset:` or `model:` reference."""
    return isinstance(value, str) and value.startswith((DATASET_SCHEME, MODEL_SCHEME))


def _resolve(session: Session, cls: UploadClass, tenant_id: str, ref: str, key: str) -> Upload:
    """Return the ready row `ref` names for the tenant; Invalid (422) naming the override otherwise."""
    kind = service.kind_of(cls)
    try:
        row = service.get_by_ref(session, cls, tenant_id, ref)
    except NotFound:
        raise Invalid(
            f"{key}={kind}:{ref}: no such {kind}; list yours with `trainforge {kind}s` (GET /v1/{kind}s)",
            key=key,
        ) from None
    except Invalid as exc:
        raise Invalid(f"{key}={kind}:{ref}: {exc.detail}", key=key) from None
    if row.status != UploadStatus.READY:
        why = (
            (row.error or "see its report")
            if row.status == UploadStatus.INVALID
            else "wait until it is ready"
        )
        raise Invalid(
            f"{key}={kind}:{ref}: {kind} {row.name}@{row.version} is {row.status}, not ready ({why})", key=key
        )
    return row


def resolve_dataset(session: Session, tenant_id: str, ref: str, key: str = "data") -> Dataset:
    """Return the tenant's ready dataset named by `ref` (id, name or name@version, without the scheme)."""
    row = _resolve(session, Dataset, tenant_id, ref, key)
    assert isinstance(row, Dataset)
    return row


def resolve_model(session: Session, tenant_id: str, ref: str, key: str = "model") -> ModelWeights:
    """Return the tenant's ready uploaded model named by `ref` (id, name or name@version)."""
    row = _resolve(session, ModelWeights, tenant_id, ref, key)
    assert isinstance(row, ModelWeights)
    return row


def resolve_inputs(
    session: Session, tenant_id: str, overrides: dict[str, Any], task: str | None
) -> list[JobInput]:
    """Resolve every `dataset:`/`model:` override; return the JobInput rows to store with the job.

    Invalid (422) for a reference in an override that takes none, a scheme that does not fit the
    override (data=model:x), a dataset of another task than the trainer's, or a row that is not ready.
    """
    inputs = []
    for key, value in overrides.items():
        if not is_reference(value):
            continue
        if key not in REFERENCE_KEYS:
            raise Invalid(
                f"{key}={value}: only {', '.join(REFERENCE_KEYS)} take dataset: or model: references", key=key
            )
        scheme, cls = REFERENCE_KEYS[key]
        if not value.startswith(scheme):
            raise Invalid(f"{key}={value}: {key} takes a {scheme} reference", key=key)
        row = _resolve(session, cls, tenant_id, value.removeprefix(scheme), key)
        if isinstance(row, Dataset) and task and row.task and row.task != task:
            raise Invalid(
                f"{key}={value}: {row.name}@{row.version} is a {row.task} dataset; "
                f"the {task} trainer needs a {task} dataset",
                key=key,
            )
        assert row.sha256 is not None  # a ready row has its bytes
        inputs.append(
            JobInput(
                key=key,
                kind=service.kind_of(cls),
                resource_id=row.id,
                name=row.name,
                version=row.version,
                sha256=row.sha256,
            )
        )
    return inputs
