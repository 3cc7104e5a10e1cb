"""The upload sweep: remove uploads that stopped arriving, re-send validations whose message was lost.

An API process that dies mid-upload leaves an `uploading` row and its `incoming/<id>.part`; a
validation message lost with Redis leaves a row `validating`. The database is the source of truth,
so the reaper's periodic task finds both here. Like the job leases, every change is a guarded
statement (the winner of two racing sweeps is the one whose statement matched) and nothing commits.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from trainforge.datasets import service
from trainforge.datasets.repository import UploadClass
from trainforge.datasets.storage import DirectoryStore
from trainforge.db.models import Dataset, ModelWeights
from trainforge.db.session import after_commit
from trainforge.db.types import db_now
from trainforge.vocab import UploadStatus

_CLASSES: tuple[UploadClass, ...] = (Dataset, ModelWeights)


def remove_stalled(session: Session, store: DirectoryStore, stale_s: float) -> list[str]:
    """Delete `uploading` rows with no byte written for `stale_s`, and their files after commit.

    The row's `updated_at` is when it was inserted; the file's mtime is the last write, so a slow
    upload that still sends is kept. Return the ids removed.
    """
    cutoff = db_now(-stale_s)
    removed = []
    for cls in _CLASSES:
        stale = [cls.status == UploadStatus.UPLOADING.value, cls.updated_at < cutoff]
        for row_id in session.scalars(select(cls.id).where(*stale)).all():
            if store.progressed_within(row_id, stale_s):
                continue  # slow but live
            gone = session.execute(
                delete(cls).where(cls.id == row_id, *stale).execution_options(synchronize_session=False)
            )
            if gone.rowcount == 1:  # type: ignore[attr-defined]
                after_commit(session, partial(store.discard_part, row_id))
                removed.append(row_id)
    return removed


def resend_validations(session: Session, older_than_s: float) -> list[str]:
    """Re-send the validation task of rows `validating` untouched for `older_than_s`; return their ids.

    `updated_at` is bumped so the next sweep waits a whole period again, and a row another sweep
    bumped (or a validation finished) meanwhile is skipped. A duplicate delivery is harmless: the
    validation works only on a row still `validating`.
    """
    cutoff = db_now(-older_than_s)
    resent = []
    for cls in _CLASSES:
        waiting = [cls.status == UploadStatus.VALIDATING.value, cls.updated_at < cutoff]
        for row_id in session.scalars(select(cls.id).where(*waiting).order_by(cls.updated_at)).all():
            bumped = session.execute(
                update(cls)
                .where(cls.id == row_id, *waiting)
                .values(updated_at=db_now())
                .execution_options(synchronize_session=False)
            )
            if bumped.rowcount == 1:  # type: ignore[attr-defined]
                service.send_validation(session, cls, row_id)
                resent.append(row_id)
    return resent
