"""Bad file references at submit: each a 422 with its full message, and no job, event or message made.

The table runs through the real app and database. The disk holds a data root with a usable data
set, links leading out of it (to a folder outside every root and to another tenant's run), a data
YAML whose `path:` leaves the root, and a checkpoint outside the roots; another tenant has a
finished job with a best.pt. A refused path must read the same whether it exists or not.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trainforge import references
from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope
from trainforge.errors import Invalid
from trainforge.pubsub import get_redis
from trainforge.rundir import RunDir
from trainforge.settings import get_settings
from trainforge.vocab import JOBS_QUEUE

TINY = {"epochs": 1, "imgsz": 16}
UPLOADED_MODEL = "model:<name>[@<version>] (one of your uploaded models)"
MODEL_WAYS = (
    "job:<id>/best.pt or job:<id>/last.pt (a checkpoint of one of your jobs) or "
    f"{UPLOADED_MODEL} or a bundled model "
    "(tiny-cls, tiny-det-n) or a torchvision classifier (resnet18, ...) or an absolute path under a data root"
)
JOB_WAYS = "job:<id>/best.pt or job:<id>/last.pt (a checkpoint of one of your jobs)"
PRETRAINED_WAYS = f"{JOB_WAYS} or {UPLOADED_MODEL} or an absolute path under a data root"
NO_JOB = "refer to one of your jobs (`trainforge jobs` lists them)"
NO_CHECKPOINT = "names no checkpoint; write job:<id>/best.pt or job:<id>/last.pt"
OUT = "is not under a data root of this server; give"
DATA_WAYS = (
    "dataset:<name>[@<version>] (one of your uploaded datasets) or "
    "a built-in set (synthetic:classify, synthetic:shapes) or an absolute path under a data root"
)


@pytest.fixture
def disk(tmp_path: Path, settings_env, monkeypatch) -> dict[str, str]:
    """Make a data root and what lies around it; point TRAINFORGE_DATA_ROOTS at the root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / "set" / split / cls).mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.pt").write_bytes(b"secret weights")
    (root / "escape").symlink_to(outside)
    (root / "link.pt").symlink_to(outside / "secret.pt")
    (root / "dangling.pt").symlink_to(outside / "nothing-here.pt")
    (root / "leaves.yaml").write_text(f"path: {outside}\ntrain: images\nval: images\nnames: [a]\n")
    (root / "notes.txt").write_text("not a data set")
    monkeypatch.setenv("TRAINFORGE_DATA_ROOTS", str(root))
    get_settings.cache_clear()
    return {"root": str(root), "outside": str(outside)}


@pytest.fixture
def world(disk, make_job, make_token, settings_env) -> dict[str, str]:
    """Return the caller's token and own job, and a finished job of another tenant with a best.pt."""
    tenant = f"me-{uuid.uuid4().hex[:8]}"
    token = make_token(tenant)
    own = make_job(tenant=tenant, status="queued")
    theirs = make_job(status="succeeded")
    best = RunDir.of(settings_env.artifacts_dir, theirs).best
    best.parent.mkdir(parents=True)
    best.write_bytes(b"their weights")
    (Path(disk["root"]) / "stolen.pt").symlink_to(best)
    return {**disk, "token": token, "own": own, "theirs": theirs}


MISSING = str(uuid.UUID(int=7))

# (case, key, value, message); {root}, {outside}, {own}, {theirs} are filled in from `world`.
CASES = [
    (
        "another tenant's job",
        "model",
        "job:{theirs}/best.pt",
        f"override 'model': you have no job '{{theirs}}'; {NO_JOB}",
    ),
    (
        "a job that does not exist",
        "model",
        f"job:{MISSING}/best.pt",
        f"override 'model': you have no job '{MISSING}'; {NO_JOB}",
    ),
    (
        "not a job id",
        "pretrained",
        "job:1 OR 1=1/best.pt",
        f"override 'pretrained': you have no job '1 OR 1=1'; {NO_JOB}",
    ),
    (
        "own job without a checkpoint yet",
        "model",
        "job:{own}/best.pt",
        "override 'model': job {own} has no best.pt (it is queued); "
        "refer to it once it has saved a checkpoint",
    ),
    (
        "job reference climbing out",
        "model",
        "job:../../etc/passwd",
        f"override 'model': 'job:../../etc/passwd' {NO_CHECKPOINT}",
    ),
    (
        "job file other than best/last",
        "model",
        "job:{theirs}/train.log",
        f"override 'model': 'job:{{theirs}}/train.log' {NO_CHECKPOINT}",
    ),
    (
        "job reference as data",
        "data",
        "job:{own}/best.pt",
        f"override 'data': 'job:' references are not accepted here; give {DATA_WAYS}",
    ),
    (
        "unknown scheme",
        "data",
        "http://169.254.169.254/data.yaml",
        f"override 'data': 'http:' references are not accepted here; give {DATA_WAYS}",
    ),
    (
        "relative ../ path",
        "data",
        "../x",
        f"override 'data': '../x' is not a reference or an absolute path; give {DATA_WAYS}",
    ),
    (
        "../ out of a root",
        "data",
        "{root}/set/../../outside",
        f"override 'data': '{{root}}/set/../../outside' {OUT} {DATA_WAYS}",
    ),
    (
        "symlinked folder out of a root",
        "data",
        "{root}/escape",
        f"override 'data': '{{root}}/escape' {OUT} {DATA_WAYS}",
    ),
    (
        "symlinked checkpoint out of a root",
        "model",
        "{root}/link.pt",
        f"override 'model': '{{root}}/link.pt' {OUT} {MODEL_WAYS}",
    ),
    (
        "symlink to a missing file out of a root",
        "model",
        "{root}/dangling.pt",
        f"override 'model': '{{root}}/dangling.pt' {OUT} {MODEL_WAYS}",
    ),
    (
        "symlink into another tenant's run",
        "pretrained",
        "{root}/stolen.pt",
        f"override 'pretrained': '{{root}}/stolen.pt' {OUT} {PRETRAINED_WAYS}",
    ),
    (
        "absolute path outside the roots that exists",
        "pretrained",
        "{outside}/secret.pt",
        f"override 'pretrained': '{{outside}}/secret.pt' {OUT} {PRETRAINED_WAYS}",
    ),
    (
        "absolute path outside the roots that does not exist",
        "pretrained",
        "{outside}/nothing-here.pt",
        f"override 'pretrained': '{{outside}}/nothing-here.pt' {OUT} {PRETRAINED_WAYS}",
    ),
    (
        "/etc/passwd",
        "data",
        "/etc/passwd",
        f"override 'data': '/etc/passwd' {OUT} {DATA_WAYS}",
    ),
    (
        "data YAML leading out of the root",
        "data",
        "{root}/leaves.yaml",
        "override 'data': the data YAML '{root}/leaves.yaml' sets 'path' to a folder outside the data roots; "
        "keep a data set's images under a data root and name them relative to it",
    ),
    ("missing path inside a root", "data", "{root}/nope", "override 'data': '{root}/nope' does not exist"),
    (
        "a text file as data",
        "data",
        "{root}/notes.txt",
        "override 'data': '{root}/notes.txt' is a file but not a data YAML (.yaml)",
    ),
    (
        "a folder as a checkpoint",
        "pretrained",
        "{root}/set",
        "override 'pretrained': '{root}/set' is not a checkpoint file (.pt or .pth)",
    ),
    (
        "a model name as pretrained",
        "pretrained",
        "resnet18",
        f"override 'pretrained': 'resnet18' is not a checkpoint; give true, false, {PRETRAINED_WAYS}",
    ),
    (
        "unknown model name",
        "model",
        "resnet19",
        "override 'model': unknown model 'resnet19'; did you mean 'resnet18', 'resnet152', 'resnet101'? "
        "use a bundled model (tiny-cls, tiny-det, tiny-det-m, tiny-det-n, tiny-det-s), a torchvision "
        "classifier (resnet18, mobilenet_v3_small, ...) or a checkpoint such as job:<id>/best.pt",
    ),
    (
        "another task's synthetic set",
        "data",
        "synthetic:shapes?train=4",
        "override 'data': synthetic:shapes is the detect task's synthetic set; "
        "a classify job uses synthetic:classify",
    ),
    (
        "unknown synthetic set",
        "data",
        "synthetic:faces",
        "override 'data': unknown synthetic set 'synthetic:faces'; "
        "use synthetic:classify (classify) or synthetic:shapes (detect)",
    ),
    (
        "NUL byte",
        "data",
        "/data\x00/x",
        "overrides.data contains a NUL character; remove it",
    ),
    ("newline", "model", "tiny-cls\n", "override 'model' contains a control character; remove it"),
    (
        "over-long value",
        "data",
        "/" + "a" * 2000,
        "override 'data' is 2001 characters long; a reference has at most 1024",
    ),
    (
        "where the run writes",
        "project",
        "/etc",
        "override 'project' cannot be set: the service stores every run under its artifacts directory; "
        "remove it",
    ),
    (
        "a predict source",
        "source",
        "/etc/passwd",
        "override 'source' cannot be set: jobs always train, and only predicting reads a source; remove it",
    ),
    (
        "a number as data",
        "data",
        7,
        f"override 'data': '7' is not a reference or an absolute path; give {DATA_WAYS}",
    ),
    ("empty value", "data", " ", f"override 'data' is empty; give {DATA_WAYS}, or leave 'data' out"),
]


def _counts(session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Job)),
        session.scalar(select(func.count()).select_from(JobEvent)),
    )


@pytest.mark.parametrize(("case", "key", "value", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_reference_is_a_422_naming_the_key_and_nothing_is_made(
    world, api_client, settings_env, case, key, value, message
) -> None:
    value = value.format(**world) if isinstance(value, str) else value
    message = message.format(**world)
    redis = get_redis(settings_env.redis_url)
    with session_scope() as s:
        before = _counts(s)
    queued = redis.llen(JOBS_QUEUE)
    response = api_client.post(
        "/v1/jobs",
        json={"trainer": "classify", "overrides": {**TINY, key: value}},
        headers={"Authorization": f"Bearer {world['token']}"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == message
    with session_scope() as s:
        assert _counts(s) == before
    assert redis.llen(JOBS_QUEUE) == queued


def test_a_refused_path_reads_the_same_whether_it_exists_or_not(world, session) -> None:
    ctx = references.Context(session, "nobody", get_settings())
    messages = []
    for path in (f"{world['outside']}/secret.pt", f"{world['outside']}/absent.pt"):
        with pytest.raises(Invalid) as caught:
            references.resolve(ctx, "model", path)
        messages.append(caught.value.detail.replace(path, "<path>"))
    assert messages[0] == messages[1]


def test_without_data_roots_no_path_is_accepted(session, settings_env, tmp_path) -> None:
    assert settings_env.data_roots == []
    ctx = references.Context(session, "nobody", settings_env, "classify")
    with pytest.raises(Invalid) as caught:
        references.resolve(ctx, "data", str(tmp_path))
    assert caught.value.detail == (
        "override 'data': this server allows no file paths (it lists no data roots); "
        "give dataset:<name>[@<version>] (one of your uploaded datasets) or "
        "a built-in set (synthetic:classify, synthetic:shapes)"
    )
    assert caught.value.extra == {"key": "data"}


def test_good_references_resolve_to_what_the_trainer_reads(world, session) -> None:
    settings = get_settings()
    root = Path(world["root"])
    (root / "alias").symlink_to(root / "set")
    (root / "w.pt").write_bytes(b"")
    best = RunDir.of(settings.artifacts_dir, world["own"]).best
    best.parent.mkdir(parents=True)
    best.write_bytes(b"")
    owner = session.scalar(select(Job.tenant_id).where(Job.id == world["own"]))
    ctx = references.Context(session, owner, settings, "classify")
    tenant_values = {"data": f"{root}/alias", "model": f"job:{world['own']}/best.pt", "pretrained": True}
    resolved = references.resolve_overrides(ctx, {**tenant_values, "epochs": 2})
    assert resolved == {
        "data": os.path.realpath(root / "set"),
        "model": str(best.resolve()),
        "pretrained": True,
        "epochs": 2,
    }
    names = {"tiny-cls": "tiny-cls.yaml", "tiny-det-n": "tiny-det-n.yaml", "resnet18": "resnet18"}
    for value, expected in names.items():
        task = "detect" if "det" in value else "classify"
        got = references.resolve(references.Context(session, owner, settings, task), "model", value)
        assert got == expected
    assert references.resolve(ctx, "pretrained", f"{root}/w.pt") == str(root / "w.pt")
    assert references.resolve(ctx, "data", "synthetic:classify?classes=2") == "synthetic:classify?classes=2"


def test_the_worker_side_refuses_what_the_schema_never_saw(session, settings_env) -> None:
    # Rows written before this check existed reach the resolver without passing the request schema.
    ctx = references.Context(session, "nobody", settings_env, "classify")
    with pytest.raises(Invalid) as caught:
        references.resolve_overrides(ctx, {"data": "/data\x00/x"})
    assert caught.value.detail == "override 'data' contains a control character; remove it"
