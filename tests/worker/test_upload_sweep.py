"""The upload sweep the reap task runs: stalled uploads leave nothing, lost validations are re-sent once.

Real database (PostgreSQL and SQLite), real Redis (the validation message is read off its queue) and
the real storage directory; the validation after the re-send is the function the Celery task runs.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta

import pytest
import redis
from dataset_helpers import pack, yolo_set
from fastapi.testclient import TestClient
from sqlalchemy import update

from trainforge.auth import get_or_create_tenant
from trainforge.datasets import service
from trainforge.datasets.storage import get_store
from trainforge.db.models import Dataset, ModelWeights
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.vocab import DEFAULT_QUEUE, VALIDATE_DATASET
from worker import reaper, validation
from worker.tasks import reap_jobs


def uploading(cls: type[Dataset] | type[ModelWeights], age_s: float) -> str:
    """Insert an uploading row (committed) as old as `age_s`; return its id."""
    with session_scope() as s:
        tenant = get_or_create_tenant(s, f"sweep-{uuid.uuid4().hex[:8]}")
        row_id = service.begin_upload(s, cls, tenant.id, "shapes", "pt").id
        s.execute(update(cls).where(cls.id == row_id).values(updated_at=utcnow() - timedelta(seconds=age_s)))
    return row_id


def part(store, row_id: str, age_s: float) -> None:
    """Write some bytes of upload `row_id` into the store, last written `age_s` ago."""
    incoming = store.receive(row_id)
    incoming.write(b"half an upload")
    incoming._file.flush()  # what a crashed API process had written
    stamp = time.time() - age_s
    os.utime(store.part_path(row_id), (stamp, stamp))


def exists(cls, row_id: str) -> bool:
    with session_scope() as s:
        return s.get(cls, row_id) is not None


def test_a_stalled_upload_goes_with_its_file_and_a_live_one_stays(settings_env, monkeypatch) -> None:
    monkeypatch.setenv("TRAINFORGE_UPLOAD_STALE_S", "120")
    from trainforge.settings import get_settings

    get_settings.cache_clear()
    store = get_store(settings_env.storage_dir)
    crashed = uploading(Dataset, age_s=3600)  # the API died mid-upload an hour ago
    part(store, crashed, age_s=3600)
    no_file = uploading(ModelWeights, age_s=3600)  # died between its row and its first byte
    slow = uploading(Dataset, age_s=3600)  # started long ago, still sending
    part(store, slow, age_s=5)
    fresh = uploading(ModelWeights, age_s=0)  # just started, no byte written yet
    orphan, recent_orphan = str(uuid.uuid4()), str(uuid.uuid4())  # files whose row is gone
    part(store, orphan, age_s=3600)
    part(store, recent_orphan, age_s=5)

    assert reap_jobs() >= 2  # what the beat schedule runs every reap_interval_s

    assert not exists(Dataset, crashed) and not store.part_path(crashed).exists()
    assert not exists(ModelWeights, no_file)
    assert not store.part_path(orphan).exists()
    assert exists(Dataset, slow) and store.part_path(slow).exists()
    assert exists(ModelWeights, fresh)
    assert store.part_path(recent_orphan).exists()
    assert reaper.sweep_uploads() == ([], [])  # nothing more to do on the next period
    for row_id in (slow, recent_orphan):
        store.discard_part(row_id)


@pytest.fixture
def default_queue(redis_url):
    """Return a function listing the validate_dataset messages for a dataset id in the service queue."""
    client = redis.Redis.from_url(redis_url)

    def messages(row_id: str) -> list[bytes]:
        found = []
        for raw in client.lrange(DEFAULT_QUEUE, 0, -1):
            headers = json.loads(raw)["headers"]
            if headers["task"] == VALIDATE_DATASET and row_id in headers["argsrepr"]:
                found.append(raw)
        return found

    return messages, client


def test_a_lost_validation_is_resent_once_and_then_ends_ready(
    settings_env, make_token, default_queue, tmp_path
) -> None:
    from api.main import create_app

    messages, client = default_queue
    token = make_token()
    body = pack(yolo_set(tmp_path / "shapes"), "zip", top="shapes")
    with TestClient(create_app()) as api:
        headers = {"Authorization": f"Bearer {token}"}
        r = api.post("/v1/datasets", params={"name": "shapes"}, content=body, headers=headers)
    assert r.status_code == 202, r.text
    row_id = r.json()["id"]
    sent = messages(row_id)
    assert len(sent) == 1, "the upload sent its validation task"
    client.lrem(DEFAULT_QUEUE, 0, sent[0])  # Redis restarted without it
    with session_scope() as s:
        an_hour_ago = utcnow() - timedelta(hours=1)
        s.execute(update(Dataset).where(Dataset.id == row_id).values(updated_at=an_hour_ago))

    assert row_id in reaper.sweep_uploads()[1]
    assert row_id not in reaper.sweep_uploads()[1], "the re-send waits a whole period again"
    assert len(messages(row_id)) == 1

    assert validation.validate_dataset(row_id, settings_env) == "ready"
    assert validation.validate_dataset(row_id, settings_env) == "skipped", "a second delivery is a no-op"
    with session_scope() as s:
        row = s.get(Dataset, row_id)
        assert (row.status, row.task) == ("ready", "detect")
    client.lrem(DEFAULT_QUEUE, 0, messages(row_id)[0])
