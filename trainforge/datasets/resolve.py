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

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from trainforge.datasets import service
from trainforge.datasets.repository import Upload, UploadClass
from trainforge.db.models import Dataset, JobInput, ModelWeights
from trainforge.errors import Invalid, NotFound
from trainforge.vocab import UploadStatus

if TYPE_CHECKING:  # the references package imports this module for its scheme table
    from trainforge.references.context import Context

DATASET_SCHEME = "dataset:"
MODEL_SCHEME = "model:"
# Which override may name which kind of resource.
REFERENCE_KEYS: dict[str, tuple[str, UploadClass]] = {
    "data": (DATASET_SCHEME, Dataset),
    "model": (MODEL_SCHEME, ModelWeights),
    "pretrained": (MODEL_SCHEME, ModelWeights),
}


def _resolve(session: Session, cls: UploadClass, tenant_id: str, ref: str, key: str) -> Upload:
    """Return the ready row `ref` names for the tenant; Invalid (422) naming the override otherwise."""
    kind = service.kind_of(cls)
    try:
        row = service.get_by_ref(session, cls, tenant_id, ref)
    except NotFound:
        # The same words for another tenant's (or a deleted) one as for one that never existed.
        raise Invalid(
            f"override '{key}': you have no {kind} {ref!r}; list yours with `trainforge {kind}s`", key=key
        ) from None
    except Invalid as exc:
        raise Invalid(f"override '{key}': {exc.detail}", key=key) from None
    if row.status != UploadStatus.READY:
        why = (
            (row.error or "see its report")
            if row.status == UploadStatus.INVALID
            else "wait until it is ready"
        )
        raise Invalid(
            f"override '{key}': {kind} {row.name}@{row.version} is {row.status}, not ready ({why})", key=key
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


def dataset_reference(ctx: Context, key: str, rest: str) -> str:
    """Resolve `dataset:<rest>` for the references table; return the pinned form `dataset:<id>`.

    The worker turns the pinned form into its cached copy's path (worker/inputs.py); the trainer
    never sees a path before then.
    """
    row = resolve_dataset(ctx.session, ctx.tenant_id, rest, key)
    _check_task(row, ctx.task, key, f"{DATASET_SCHEME}{rest}")
    return f"{DATASET_SCHEME}{row.id}"


def model_reference(ctx: Context, key: str, rest: str) -> str:
    """Resolve `model:<rest>` for the references table; return the pinned form `model:<id>`."""
    return f"{MODEL_SCHEME}{resolve_model(ctx.session, ctx.tenant_id, rest, key).id}"


def _check_task(row: Dataset, task: str | None, key: str, value: str) -> None:
    """Refuse a dataset whose layout is of another task than the trainer's."""
    if task and row.task and row.task != task:
        raise Invalid(
            f"override '{key}': {value} ({row.name}@{row.version}) is a {row.task} dataset; "
            f"the {task} trainer needs a {task} dataset",
            key=key,
        )


def resolve_inputs(
    session: Session, tenant_id: str, overrides: dict[str, Any], task: str | None
) -> list[JobInput]:
    """Return the JobInput rows of the job's `dataset:`/`model:` overrides: the exact versions used.

    The references package has already refused a scheme in a key that does not take it; here each
    reference is resolved again to its row (Invalid, 422, when it is not the tenant's or not ready).
    """
    inputs = []
    for key, (scheme, cls) in REFERENCE_KEYS.items():
        value = overrides.get(key)
        if not isinstance(value, str) or not value.startswith(scheme):
            continue
        row = _resolve(session, cls, tenant_id, value.removeprefix(scheme), key)
        if isinstance(row, Dataset):
            _check_task(row, task, key, value)
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
