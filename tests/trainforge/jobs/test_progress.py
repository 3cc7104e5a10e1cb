"""record_progress keeps a job's best epoch by the task's headline metric, whatever order epochs end in."""

from __future__ import annotations

import pytest

from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.jobs import repository
from trainforge.metrics import best_so_far


def _best(job_id: str) -> dict | None:
    with session_scope() as s:
        return s.get(Job, job_id).best


def test_the_best_epoch_moves_only_when_the_headline_metric_improves(make_job) -> None:
    job_id = make_job(status="running")
    for epoch, top1 in [(1, 0.5), (2, 0.7), (3, 0.6)]:
        with session_scope() as s:
            repository.record_progress(
                s, job_id, epoch=epoch, metrics={"metrics/accuracy_top1": top1, "val/loss": 1.0 / epoch}
            )
    assert _best(job_id) == {"metric": "accuracy_top1", "value": 0.7, "epoch": 2}
    with session_scope() as s:  # batch progress alone leaves it alone
        repository.record_progress(s, job_id, progress={"batch": 1, "batches": 4})
    assert _best(job_id) == {"metric": "accuracy_top1", "value": 0.7, "epoch": 2}
    with session_scope() as s:  # a tie with a later epoch: the later one, as the engine's best.pt
        repository.record_progress(s, job_id, epoch=4, metrics={"metrics/accuracy_top1": 0.7})
    assert _best(job_id) == {"metric": "accuracy_top1", "value": 0.7, "epoch": 4}


@pytest.mark.parametrize(
    ("best", "metrics", "epoch", "expected"),
    [
        (None, {"val/loss": 0.3}, 1, None),  # no headline metric yet
        (None, {"metrics/accuracy_top1": float("nan")}, 1, None),
        (None, {"metrics/accuracy_top1": 0.4}, None, None),  # no epoch to name
        (None, {"metrics/mAP50-95(B)": 0.2, "metrics/mAP50(B)": 0.5}, 3,
         {"metric": "mAP50-95(B)", "value": 0.2, "epoch": 3}),
        ({"metric": "mAP50-95(B)", "value": 0.3, "epoch": 2}, {"metrics/mAP50-95(B)": 0.25}, 3, None),
        ({"metric": "other", "value": 9.0, "epoch": 2}, {"metrics/accuracy_top1": 0.1}, 3,
         {"metric": "accuracy_top1", "value": 0.1, "epoch": 3}),
    ],
)  # fmt: skip
def test_best_so_far(best, metrics, epoch, expected) -> None:
    assert best_so_far(best, metrics, epoch) == expected
