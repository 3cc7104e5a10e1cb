"""Dataset and model operations shared by the API and the validation tasks. Never commits.

An upload is a row that moves uploading → validating → ready | invalid; the bytes live in the
blob store under their SHA-256 (see `storage`), so the row's `sha256` is the only link between them.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainforge import queue
from trainforge.datasets import archive, repository
from trainforge.datasets.repository import Upload, UploadClass
from trainforge.datasets.schemas import DatasetPublic, ModelPublic, UploadPublic
from trainforge.datasets.storage import BlobStore
from trainforge.db.models import Dataset, ModelWeights
from trainforge.db.session import after_commit, savepoint
from trainforge.errors import Conflict, Invalid, NotFound
from trainforge.settings import Settings
from trainforge.vocab import VALIDATE_DATASET, VALIDATE_MODEL, UploadStatus

# The file that marks a YOLO detection set; `data=` points the engine at it.
DATA_YAML = "data.yaml"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KINDS: dict[str, UploadClass] = {"dataset": Dataset, "model": ModelWeights}
VALIDATE_TASKS = {"dataset": VALIDATE_DATASET, "model": VALIDATE_MODEL}


def kind_of(cls: UploadClass) -> str:
    """Return "dataset" or "model" for a row class."""
    return "dataset" if cls is Dataset else "model"


def plural(kind: str) -> str:
    """Return the route segment of a kind: datasets or models."""
    return f"{kind}s"


def check_name(name: str | None, kind: str) -> str:
    """Return `name` if it can name a dataset or model; Invalid (422) with the rule otherwise."""
    if not name:
        raise Invalid(f"give the {kind} a name: ?name=shapes-v1 (trainforge {kind} upload PATH --name NAME)")
    if not NAME_RE.match(name) or is_uuid(name):
        raise Invalid(
            f"invalid {kind} name {name!r}: use 1-100 letters, digits and . _ - starting with a letter "
            "or digit (no '@', which separates the version, and not a UUID, which would read as an id)"
        )
    return name


def is_uuid(value: str) -> bool:
    """Return whether `value` is a UUID (an id rather than a name)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def begin_upload(session: Session, cls: UploadClass, tenant_id: str, name: str, fmt: str) -> Upload:
    """Insert the next version of `name` in status uploading and return it."""
    for _ in range(5):  # two uploads of one name at once: the loser takes the next number
        row = cls(
            tenant_id=tenant_id,
            name=name,
            version=repository.next_version(session, cls, tenant_id, name),
            status=UploadStatus.UPLOADING.value,
            format=fmt,
        )
        try:
            with savepoint(session):
                session.add(row)
        except IntegrityError:
            continue
        return row
    raise Conflict(f"{kind_of(cls)} {name!r} is being uploaded by several requests at once; retry")


def finish_upload(session: Session, row: Upload, sha256: str, size: int, fmt: str) -> None:
    """Record the stored bytes and queue the validation task (sent after commit)."""
    row.sha256, row.size_bytes, row.format = sha256, size, fmt
    row.status = UploadStatus.VALIDATING.value
    session.flush()


def send_validation(session: Session, cls: UploadClass, row_id: str) -> None:
    """Send the validation task of row `row_id` once the transaction commits."""
    queue.send_after_commit(session, VALIDATE_TASKS[kind_of(cls)], [row_id])


def send_validation_now(cls: UploadClass, row_id: str) -> None:
    """Send the validation task of row `row_id`, whose validating status is already committed."""
    queue.send(VALIDATE_TASKS[kind_of(cls)], [row_id])


def get_by_ref(session: Session, cls: UploadClass, tenant_id: str, ref: str) -> Upload:
    """Return the tenant's row named by an id or `name[@version]`; NotFound (404) otherwise."""
    kind = kind_of(cls)
    row: Upload | None
    if is_uuid(ref):
        row = repository.get_for_tenant(session, cls, tenant_id, ref)
    else:
        name, version = parse_name_version(ref, kind)
        row = repository.get_by_name(session, cls, tenant_id, name, version)
    if row is None:
        raise NotFound(f"{kind} {ref!r} not found; list yours with GET /v1/{plural(kind)}")
    return row


def parse_name_version(ref: str, kind: str) -> tuple[str, int | None]:
    """Split `name@version` (version optional); Invalid (422) when it is malformed."""
    name, sep, version = ref.partition("@")
    check_name(name, kind)
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise Invalid(f"invalid {kind} version in {ref!r}: write name@N with N = 1, 2, ...")
    return name, int(version)


def delete(session: Session, row: Upload, store: BlobStore) -> None:
    """Delete a dataset or model version; Conflict (409) while a job not yet ended uses it.

    The blob goes after commit, and only when no other row (of any tenant) holds the same bytes.
    """
    kind = kind_of(type(row))
    jobs = repository.active_jobs_using(session, row.id)
    if jobs:
        raise Conflict(
            f"{kind} {row.name}@{row.version} is used by {len(jobs)} queued or running job(s) "
            f"({', '.join(jobs[:3])}); cancel them or wait for them to end",
            jobs=jobs,
        )
    sha = row.sha256
    session.delete(row)
    session.flush()
    if sha and not repository.sha_in_use(session, sha):
        after_commit(session, lambda: store.delete(sha))


def public(row: Upload) -> UploadPublic:
    """Return the API's view of a dataset or model row."""
    values: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "ref": f"{kind_of(type(row))}:{row.name}@{row.version}",
        "status": row.status,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "format": row.format,
        "report": row.report,
        "error": row.error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if isinstance(row, Dataset):
        return DatasetPublic(**values, task=row.task)
    return ModelPublic(**values)


def archive_limits(settings: Settings) -> archive.Limits:
    """Return the operator's limits on what one uploaded archive may unpack to."""
    return archive.Limits(settings.archive_max_files, settings.archive_max_bytes, settings.archive_max_ratio)


def record_validation(
    session: Session, row: Upload, report: dict[str, Any] | None, error: str | None, task: str | None = None
) -> None:
    """Move a validating row to ready (no error) or invalid (`error` says why), with its report."""
    row.report = report
    row.error = error
    row.status = (UploadStatus.INVALID if error else UploadStatus.READY).value
    if isinstance(row, Dataset):
        row.task = task
    session.flush()
