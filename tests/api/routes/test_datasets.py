"""Datasets and models over HTTP: streamed upload, versions, validation, references in jobs, bad input.

Every bad case asserts the status, the message, and that nothing was left: no row, no blob, no
partial upload file. Validation runs in-process through the same function the Celery task calls.
"""

from __future__ import annotations

import hashlib
import io
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import image_folder, pack, yolo_set
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from trainforge.datasets.storage import get_store
from trainforge.db.models import Dataset, JobInput, ModelWeights
from trainforge.db.session import session_scope
from worker import validation


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(make_token) -> str:
    return make_token()


@pytest.fixture(scope="module")
def shapes_zip(tmp_path_factory) -> bytes:
    return pack(yolo_set(tmp_path_factory.mktemp("shapes") / "shapes"), "zip", top="shapes")


def rows(cls: Any = Dataset) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(cls)) or 0)


def upload(
    client: TestClient, token: str, body: bytes, name: str = "shapes", kind: str = "datasets", **params: str
):
    return client.post(f"/v1/{kind}", params={"name": name, **params}, content=body, headers=auth(token))


def uploaded_ready(
    client: TestClient, token: str, body: bytes, settings, name: str = "shapes"
) -> dict[str, Any]:
    r = upload(client, token, body, name)
    assert r.status_code == 202, r.text
    assert validation.validate_dataset(r.json()["id"], settings) == "ready"
    return client.get(f"/v1/datasets/{r.json()['id']}", headers=auth(token)).json()


def test_upload_validate_version_and_show(api_client, token, shapes_zip, settings_env) -> None:
    store = get_store(settings_env.storage_dir)
    blobs = store.blob_count()
    r = upload(api_client, token, shapes_zip, sha256=hashlib.sha256(shapes_zip).hexdigest())
    assert r.status_code == 202, r.text
    first = r.json()
    assert (first["status"], first["version"], first["ref"], first["format"]) == (
        "validating",
        1,
        "dataset:shapes@1",
        "zip",
    )
    assert first["sha256"] == hashlib.sha256(shapes_zip).hexdigest()
    assert validation.validate_dataset(first["id"], settings_env) == "ready"
    assert validation.validate_dataset(first["id"], settings_env) == "skipped", (
        "a redelivered task is a no-op"
    )
    shown = api_client.get("/v1/datasets/shapes", headers=auth(token)).json()
    assert (shown["status"], shown["task"], shown["error"]) == ("ready", "detect", None)
    assert shown["report"]["splits"]["train"]["instances"] == 4
    assert shown["report"]["names"] == ["a", "b"]
    again = upload(api_client, token, shapes_zip).json()
    assert again["version"] == 2 and again["sha256"] == first["sha256"]
    assert store.blob_count() == blobs + 1, "the same bytes are stored once"
    assert api_client.get("/v1/datasets/shapes@1", headers=auth(token)).json()["id"] == first["id"]
    assert api_client.get("/v1/datasets/shapes", headers=auth(token)).json()["id"] == again["id"]
    listed = api_client.get("/v1/datasets", headers=auth(token)).json()["data"]
    assert [d["ref"] for d in listed] == ["dataset:shapes@2", "dataset:shapes@1"]


def test_a_broken_dataset_ends_invalid_with_every_problem(api_client, token, tmp_path, settings_env) -> None:
    root = yolo_set(tmp_path / "bad")
    (root / "labels" / "train" / "img3.txt").write_text("0 0.5 0.5 0.2 0.2\n" * 3 + "7 0.5 0.5 0.2 0.2\n")
    (root / "images" / "val" / "img1.png").write_bytes(b"not a png")
    r = upload(api_client, token, pack(root, "tar.gz"), name="bad")
    assert r.status_code == 202 and r.json()["format"] == "tar.gz"
    assert validation.validate_dataset(r.json()["id"], settings_env) == "invalid"
    shown = api_client.get(f"/v1/datasets/{r.json()['id']}", headers=auth(token)).json()
    assert shown["status"] == "invalid"
    problems = shown["report"]["problems"]
    assert any(p.startswith("labels/train/img3.txt:4: class 7 is not an integer in 0..1") for p in problems)
    assert "images/val/img1.png: image does not decode (re-export it or delete it)" in problems
    assert shown["error"].startswith("2 problem(s): ")


def test_a_hostile_archive_ends_invalid_naming_the_entry(api_client, token, tmp_path, settings_env) -> None:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../evil.txt", "x")
    r = upload(api_client, token, out.getvalue(), name="slip")
    assert validation.validate_dataset(r.json()["id"], settings_env) == "invalid"
    shown = api_client.get(f"/v1/datasets/{r.json()['id']}", headers=auth(token)).json()
    assert "entry '../../evil.txt': '..' in the path" in shown["error"]
    assert not list(Path(settings_env.cache_dir).rglob("evil.txt"))
    assert not (Path(settings_env.cache_dir).parent / "evil.txt").exists()


BAD_UPLOADS = [
    ("no name", {"name": ""}, b"PK\x05\x06" + bytes(18), 422, "give the dataset a name: ?name=shapes-v1"),
    ("name with @", {"name": "a@2"}, b"PK\x05\x06" + bytes(18), 422, "invalid dataset name 'a@2'"),
    ("name like an id", {"name": "3f2c9a1e-0000-4000-8000-000000000000"}, b"PK\x03\x04", 422, "not a UUID"),
    ("not an archive", {}, b"just some text, not a zip", 422, "must be a .zip or .tar.gz archive"),
    ("empty body", {}, b"", 422, "the upload is empty"),
    ("bad sha256", {"sha256": "xyz"}, b"PK\x03\x04abcd", 422, "sha256 'xyz' is not 64 lowercase hex digits"),
    ("sha256 mismatch", {"sha256": "0" * 64}, b"PK\x03\x04abcd", 422, "sha256 mismatch: you announced 000"),
]


@pytest.mark.parametrize(
    ("case", "params", "body", "status", "message"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_uploads_are_refused_and_leave_nothing(
    api_client, token, settings_env, case: str, params: dict[str, str], body: bytes, status: int, message: str
) -> None:
    store = get_store(settings_env.storage_dir)
    before = (rows(), store.blob_count())
    r = api_client.post("/v1/datasets", params={"name": "x", **params}, content=body, headers=auth(token))
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert (rows(), store.blob_count(), store.incoming_count()) == (*before, 0)


def test_an_oversized_upload_is_413_by_length_and_while_streaming(settings_env, token) -> None:
    store = get_store(settings_env.storage_dir)
    before = (rows(), store.blob_count())
    small = settings_env.model_copy(update={"upload_max_bytes": 4096})
    with TestClient(create_app(small)) as client:
        declared = client.post(
            "/v1/datasets?name=big", content=b"PK\x03\x04" + bytes(5000), headers=auth(token)
        )
        chunked = client.post(
            "/v1/datasets?name=big",
            content=(b"PK\x03\x04" + bytes(1000) for _ in range(10)),
            headers=auth(token),
        )
        json_body = client.post("/v1/jobs", content=b"{" + b" " * 2_000_000 + b"}", headers=auth(token))
    for r in (declared, chunked):
        assert r.status_code == 413, r.text
        assert (
            r.json()["detail"]
            == "request body too large; the limit is 4096 bytes (TRAINFORGE_UPLOAD_MAX_BYTES)"
        )
    assert json_body.status_code == 413 and "TRAINFORGE_MAX_BODY_BYTES" in json_body.json()["detail"]
    assert (rows(), store.blob_count(), store.incoming_count()) == (*before, 0)


def test_a_truncated_upload_leaves_nothing(live_api, token, settings_env) -> None:
    store = get_store(settings_env.storage_dir)
    before = (rows(), store.blob_count())
    host, port = live_api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST /v1/datasets?name=cut HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/zip\r\nContent-Length: 3000000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"PK\x03\x04" + bytes(2_000_000))
        deadline = time.monotonic() + 10
        while rows() == before[0] and time.monotonic() < deadline:  # the row appears while it streams
            time.sleep(0.05)
        assert rows() == before[0] + 1, "the upload is visible while it arrives"
    deadline = time.monotonic() + 20
    while (rows(), store.blob_count(), store.incoming_count()) != (
        *before,
        0,
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (rows(), store.blob_count(), store.incoming_count()) == (*before, 0)


def test_another_tenants_dataset_is_the_same_404_as_a_missing_one(api_client, make_token, shapes_zip) -> None:
    owner, other = make_token(), make_token()
    row = upload(api_client, owner, shapes_zip, name="private").json()
    missing = "3f2c9a1e-0000-4000-8000-000000000000"
    for method in ("get", "delete"):
        theirs = getattr(api_client, method)(f"/v1/datasets/{row['id']}", headers=auth(other))
        absent = getattr(api_client, method)(f"/v1/datasets/{missing}", headers=auth(other))
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["detail"].replace(row["id"], missing) == absent.json()["detail"]
    assert api_client.get("/v1/datasets/private", headers=auth(other)).status_code == 404
    assert api_client.get("/v1/datasets", headers=auth(other)).json()["data"] == []
    assert api_client.get(f"/v1/datasets/{row['id']}", headers=auth(owner)).status_code == 200


def test_delete_is_refused_while_a_job_uses_the_version(api_client, token, shapes_zip, settings_env) -> None:
    store = get_store(settings_env.storage_dir)
    ready = uploaded_ready(api_client, token, shapes_zip, settings_env, name="inuse")
    r = api_client.post(
        "/v1/jobs", json={"trainer": "detect", "overrides": {"data": "dataset:inuse"}}, headers=auth(token)
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    with session_scope() as session:
        used = session.scalars(select(JobInput).where(JobInput.job_id == job_id)).one()
        assert (used.key, used.resource_id, used.version, used.sha256) == (
            "data",
            ready["id"],
            1,
            ready["sha256"],
        )
    inputs = api_client.get(f"/v1/jobs/{job_id}/inputs", headers=auth(token)).json()["data"]
    assert inputs == [
        {"key": "data", "kind": "dataset", "id": ready["id"], "ref": "dataset:inuse@1", "name": "inuse",
         "version": 1, "sha256": ready["sha256"]}
    ]  # fmt: skip
    assert api_client.delete("/v1/datasets/inuse", headers=auth(token)).status_code == 422  # which version?
    refused = api_client.delete("/v1/datasets/inuse@1", headers=auth(token))
    assert refused.status_code == 409
    assert "is used by 1 queued or running job(s)" in refused.json()["detail"]
    assert refused.json()["jobs"] == [job_id]
    assert api_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(token)).status_code == 202
    shared = store.exists(ready["sha256"])  # other tests may hold the same bytes under their tenants
    assert api_client.delete(f"/v1/datasets/{ready['id']}", headers=auth(token)).status_code == 204
    assert api_client.get(f"/v1/datasets/{ready['id']}", headers=auth(token)).status_code == 404
    with session_scope() as session:
        others = session.scalar(select(func.count()).where(Dataset.sha256 == ready["sha256"]))
    assert store.exists(ready["sha256"]) == (shared and bool(others)), "the blob goes with its last row"


def test_job_references_resolve_for_the_tenant_only(
    api_client, make_token, shapes_zip, tmp_path, settings_env
) -> None:
    owner, other = make_token(), make_token()
    uploaded_ready(api_client, owner, shapes_zip, settings_env, name="refs")
    folder = upload(api_client, owner, pack(image_folder(tmp_path / "cls")), name="pets").json()
    validation.validate_dataset(folder["id"], settings_env)
    waiting = upload(api_client, owner, shapes_zip, name="pending").json()  # left validating

    def submit(token: str, trainer: str = "detect", **overrides: str):
        return api_client.post(
            "/v1/jobs", json={"trainer": trainer, "overrides": overrides}, headers=auth(token)
        )

    jobs_before = len(api_client.get("/v1/jobs", headers=auth(owner)).json()["data"])
    bad = [
        (other, {"data": "dataset:refs"}, "override 'data': you have no dataset 'refs'; list yours"),
        (owner, {"data": "dataset:nope"}, "override 'data': you have no dataset 'nope'"),
        (owner, {"data": "dataset:refs@9"}, "override 'data': you have no dataset 'refs@9'"),
        (owner, {"data": "dataset:refs@x"}, "invalid dataset version in 'refs@x'"),
        (owner, {"data": "dataset:pending"}, "is validating, not ready (wait until it is ready)"),
        (owner, {"data": "model:refs"}, "override 'data': 'model:' references are not accepted here"),
        (owner, {"model": "dataset:refs"}, "override 'model': 'dataset:' references are not accepted here"),
        (
            owner,
            {"data": "dataset:pets"},
            "(pets@1) is a classify dataset; the detect trainer needs a detect",
        ),
        (
            owner,
            {"data": "dataset:refs", "model": "model:none"},
            "override 'model': you have no model 'none'",
        ),
    ]
    for token, overrides, message in bad:
        r = submit(token, **overrides)
        assert r.status_code == 422, (overrides, r.text)
        assert message in r.json()["detail"], r.json()["detail"]
    assert len(api_client.get("/v1/jobs", headers=auth(owner)).json()["data"]) == jobs_before
    assert len(api_client.get("/v1/jobs", headers=auth(other)).json()["data"]) == 0
    assert waiting["status"] == "validating"
    assert submit(owner, data="dataset:refs@1").status_code == 202


def test_models_upload_and_validate_with_weights_only(api_client, token, settings_env) -> None:
    import torch

    good = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(3, 2)}, "epoch": 4}, good)
    r = upload(api_client, token, good.getvalue(), name="start", kind="models")
    assert r.status_code == 202 and r.json()["format"] == "pt"
    assert validation.validate_model(r.json()["id"], settings_env) == "ready"
    shown = api_client.get("/v1/models/start", headers=auth(token)).json()
    assert shown["report"] == {"type": "dict", "keys": ["model", "epoch"], "tensors": 1, "parameters": 6}

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = io.BytesIO()
    torch.save({"x": Evil()}, evil)
    for name, body in (("evil", evil.getvalue()), ("junk", b"not a checkpoint")):
        r = upload(api_client, token, body, name=name, kind="models")
        assert validation.validate_model(r.json()["id"], settings_env) == "invalid"
        shown = api_client.get(f"/v1/models/{name}", headers=auth(token)).json()
        assert shown["status"] == "invalid"
        assert shown["error"].startswith("not loadable with torch.load(weights_only=True): ")
    assert rows(ModelWeights) >= 3
