"""Dashboard speed: epoch callback -> point drawn in Chromium, against callback -> SSE client, same run;
and the job page's load with 1,000 epochs of history.

One job of `--epochs` tiny classification epochs (LatencyTrainer of bench/event_latency.py) is
watched at once by an SSE client (as bench/event_latency.py does) and by the job page in the system
Chromium; a MutationObserver notes when each epoch's point is drawn
(the chart's `data-points` changes after uPlot drew it). Goal: p50 and p99 of the browser within 1.5x
the SSE figures. Then a finished job with 1,000 epochs of stored events (5,000) is loaded three
times: navigation start until all 1,000 points are drawn; goal < 500 ms.

Usage: python bench/ui.py [--epochs 100]    (needs /usr/bin/chromium and Playwright for Python)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from event_latency import FIRED_NAME, listen, percentile  # noqa: E402

from tests.ui.browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

OUT = HERE / "out" / "ui.json"
TINY = {"data": "synthetic:classify?classes=2&train=16&val=8&size=16", "imgsz": 16, "batch": 8,
        "workers": 0, "plots": False}  # fmt: skip
CHART = '[data-testid="metric-chart"][data-chart="lr"]'
# Runs in the page before its scripts: note the time whenever the lr chart's point count changes.
OBSERVER = """
window.__draws = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (r.attributeName === 'data-points' && r.target.dataset.chart === 'lr')
      window.__draws.push([Date.now() / 1000, Number(r.target.dataset.points)]);
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-points']});
"""


def submit(client: Any, epochs: int) -> str:
    """Submit a LatencyTrainer job (tiny real classification epochs); return its id."""
    body = {
        "trainer": "bench.event_latency:LatencyTrainer",
        "task": "classify",
        "overrides": {**TINY, "epochs": epochs},
    }
    return client.post("/v1/jobs", json=body).raise_for_status().json()["id"]


def finished_job_with_history(token: str, epochs: int) -> str:
    """Store a finished job with `epochs` epochs of events (5 per epoch, as training emits them)."""
    import uuid

    from trainforge.auth import resolve_token
    from trainforge.db.models import Job
    from trainforge.db.session import session_scope
    from trainforge.events import emit

    with session_scope() as session:
        tenant_id = resolve_token(session, token).tenant_id
        ref = "trainer_engine.models.classify:ClassificationTrainer"
        job = Job(id=str(uuid.uuid4()), tenant_id=tenant_id, trainer="classify", task="classify",
                  trainer_ref=ref, overrides={}, resources={"queue": "none", "gpus": 0},
                  status="succeeded", epoch=epochs, epochs=epochs)  # fmt: skip
        session.add(job)
        session.flush()
        for e in range(1, epochs + 1):
            losses = {"train/loss": 1 / e}
            metrics = {"metrics/accuracy_top1": 1 - 1 / e, "metrics/accuracy_top5": 1.0, "val/loss": 1.1 / e}
            lr = {"lr/pg0": 0.01 * (1 - e / epochs), "lr/pg1": 0.01, "lr/pg2": 0.01}
            base = {"epoch": e, "epochs": epochs}
            emit(session, job.id, "on_train_epoch_start", base, f"on_train_epoch_start:{e}")
            emit(
                session,
                job.id,
                "on_train_epoch_end",
                {**base, "losses": losses, "lr": lr},
                f"on_train_epoch_end:{e}",
            )
            fit = {**base, "losses": losses, "lr": lr, "metrics": metrics}
            emit(session, job.id, "on_model_save", fit, f"on_model_save:{e}")
            emit(session, job.id, "on_fit_epoch_end", fit, f"on_fit_epoch_end:{e}")
            emit(session, job.id, "on_params_update", base, f"on_params_update:{e}")
        emit(session, job.id, "job.succeeded", {}, "job.succeeded")
        return job.id


def ms(values: list[float]) -> tuple[float, float]:
    """Return p50 and p99 of `values` (seconds) in milliseconds."""
    return statistics.median(values) * 1000, percentile(values, 99) * 1000


def main() -> int:
    """Run both measurements and print them with the load average."""
    from playwright.sync_api import sync_playwright
    from support.stack import Stack, load_average

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    env = {"TRAINFORGE_TRAINER_MODULES": "bench.event_latency"}
    print(load_average())
    with (
        tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp,
        Stack(Path(tmp), env=env) as stack,
        sync_playwright() as pw,
        stack.client() as client,
    ):
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=stack.base_url)
        page.add_init_script(OBSERVER)
        page.goto(f"/ui/login?token={stack.token}")
        job_id = submit(client, args.epochs + 3)  # 3 extra: the first may end before the page opens
        received: list[tuple[str, float]] = []
        done = threading.Event()
        threading.Thread(target=listen, args=(stack, job_id, received, done), daemon=True).start()
        page.goto(f"/ui/jobs/{job_id}")
        stack.wait_job(client, job_id)
        done.wait(30)
        page.wait_for_selector(f'{CHART}[data-points="{args.epochs + 3}"]', timeout=30_000)
        draws = page.evaluate("window.__draws")
        fired = json.loads((Path(tmp) / "artifacts" / job_id / FIRED_NAME).read_text())
        ends = [t for event, t in fired if event == "on_fit_epoch_end"]
        arrived = [t for event, t in received if event == "on_fit_epoch_end"]
        drawn = {}
        for t, n in draws:
            for k in range(1, n + 1):
                drawn.setdefault(k, t)
        epochs = range(4, args.epochs + 4)  # skip the first three (they may predate the page)
        sse = [arrived[k - 1] - ends[k - 1] for k in epochs]
        ui = [drawn[k] - ends[k - 1] for k in epochs]
        (s50, s99), (u50, u99) = ms(sse), ms(ui)

        history = finished_job_with_history(stack.token, 1000)
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            page.goto(f"/ui/jobs/{history}")
            page.wait_for_selector(f'{CHART}[data-points="1000"]', timeout=30_000)
            loads.append((time.perf_counter() - start) * 1000)
        browser.close()
    print(f"epochs measured: {len(ui)}")
    print(f"callback -> SSE client:        p50 {s50:.1f} ms, p99 {s99:.1f} ms")
    print(f"callback -> drawn in Chromium: p50 {u50:.1f} ms, p99 {u99:.1f} ms")
    ok = u50 <= 1.5 * s50 and u99 <= 1.5 * s99
    print(f"ratio p50 {u50 / s50:.2f}x, p99 {u99 / s99:.2f}x (goal <= 1.5x): {'met' if ok else 'NOT met'}")
    print(f"job page with 1,000 epochs, all drawn: {', '.join(f'{x:.0f}' for x in loads)} ms "
          f"(goal < 500 ms: {'met' if max(loads) < 500 else 'NOT met'})")  # fmt: skip
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load": load_average(), "sse_p50_ms": s50, "sse_p99_ms": s99,
                               "ui_p50_ms": u50, "ui_p99_ms": u99, "page_load_ms": loads}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
