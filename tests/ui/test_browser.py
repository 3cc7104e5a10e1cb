"""The dashboard in a real Chromium against a real API, worker, Redis, database and training engine.

Sign in with the link `trainforge up` prints, submit a 3-epoch job from the form, watch its page fill
in without a reload (epochs, loss chart, log), cancel a second job, sign out; the browser console
must stay free of errors (CSP violations included). Screenshots land in TRAINFORGE_UI_SCREENSHOTS
(default: the test's tmp folder), from where docs/ takes them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.workers import WorkerSet
from shared_helpers import ROOT, private_redis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # SQLite, what `trainforge up` runs on; the page tests cover PostgreSQL too.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

# Small enough to train in seconds on a CPU, big enough that an epoch takes a visible moment.
TINY = [
    "data=synthetic:classify?classes=2&train=64&val=16&size=16",
    "imgsz=16",
    "batch=8",
    "workers=0",
]
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory, redis_server_binary: str) -> Iterator[str]:
    """Yield a redis-server of this module only, so no other run's worker takes its jobs."""
    with private_redis(redis_server_binary, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def worker(service_env: dict[str, str], tmp_path_factory) -> Iterator[WorkerSet]:
    """Yield one running jobs worker on this module's database and Redis."""
    env = {**os.environ, **service_env, "PYTHONPATH": str(ROOT)}
    workers = WorkerSet(env, tmp_path_factory.mktemp("logs"))
    try:
        workers.start_jobs_worker().wait_ready()
        yield workers
    finally:
        workers.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Return the folder the screenshots go to."""
    folder = Path(os.environ.get("TRAINFORGE_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any, live_api: str) -> Iterator[Any]:
    """Yield a fresh browser page collecting console errors and uncaught exceptions in `page.errors`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_api)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: page.errors.append(f"exception: {exc}"))
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        context.close()


def submit(page: Any, overrides: list[str], name: str) -> str:
    """Fill in the jobs page's form, submit it and return the id of the job whose page opens."""
    page.goto("/ui")
    page.fill("#trainer", "classify")
    page.fill("#overrides", "\n".join(overrides))
    page.fill("#name", name)
    page.click('[data-testid="submit-form"] button[type=submit]')
    page.wait_for_url("**/ui/jobs/*")
    return page.url.rsplit("/", 1)[1]


def wait_until(check: Any, what: str, timeout: float = WAIT_MS / 1000) -> None:
    """Poll `check()` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def points(page: Any, chart: str) -> int:
    """Return how many epochs a chart of the page holds."""
    return int(page.get_attribute(f'[data-testid="metric-chart"][data-chart="{chart}"]', "data-points"))


def test_sign_in_submit_watch_cancel_sign_out(
    page: Any, live_api: str, make_token, worker: WorkerSet, screenshots: Path
) -> None:
    token = make_token()
    page.goto(f"/ui/login?token={token}")
    assert page.url == f"{live_api}/ui", "the token must not stay in the address bar"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "trainforge_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    job_id = submit(page, [*TINY, "epochs=3"], "browser-3-epochs")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    start_points = points(page, "loss")
    page.wait_for_selector('[data-testid="epoch-progress"][data-epoch="3"]')
    assert page.inner_text("#epoch-text") == "3/3"
    # Selectors only: the page's CSP (no 'unsafe-eval') refuses Playwright's string predicates.
    page.wait_for_selector('[data-testid="metric-chart"][data-chart="loss"][data-points="3"]')
    assert start_points < 3, "the job had finished before its page opened: nothing was seen growing"
    page.wait_for_selector('[data-testid="job-status"]:text("succeeded")')
    wait_until(lambda: int(page.get_attribute('[data-testid="log-tail"]', "data-lines")) > 3, "log lines")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert points(page, "metrics") == 3 and points(page, "lr") == 3
    page.wait_for_selector('[data-testid="artifact-list"] a:text("results.csv")')
    assert "best.pt" in page.inner_text('[data-testid="artifact-list"]')
    assert "accuracy_top1" in page.inner_text("#best")
    page.screenshot(path=str(screenshots / "dashboard-job.png"), full_page=True)

    # A long job, cancelled from its page once it runs.
    long_id = submit(page, [*TINY, "epochs=200", "plots=false"], "browser-cancelled")
    page.wait_for_selector('[data-testid="job-status"]:text("running")')
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('[data-testid="cancel-button"]')
    page.wait_for_selector('[data-testid="job-status"]:text("cancelled")')

    page.goto("/ui")
    rows = page.locator('[data-testid="job-row"]')
    assert {rows.nth(i).get_attribute("data-job-id") for i in range(rows.count())} == {job_id, long_id}
    assert "succeeded" in page.inner_text(f'[data-job-id="{job_id}"]')
    page.screenshot(path=str(screenshots / "dashboard-jobs.png"), full_page=True)

    page.click("header .signout button")
    page.wait_for_url("**/ui/login")
    assert not [c for c in page.context.cookies() if c["name"] == "trainforge_session"]
    assert page.errors == [], worker.jobs_workers[0].log()[-2000:]
