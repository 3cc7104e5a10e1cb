"""Datasets: upload throughput, validation speed, cache-hit job start and API memory during an upload.

Builds an ImageFolder set of N random-noise PNGs (incompressible, about 10 kB each: 20,000 make
about 200 MB) in a temporary folder, packs it as a .zip, starts a real stack (API, a jobs worker, a
service worker for validation) and runs >= 3 alternating rounds of:

  1. upload: `curl -T` of the zip to `POST /v1/datasets` against the same curl to a bare static
     upload endpoint served by the same uvicorn process (bench/support/static_upload.py);
  2. validation: from the upload returning to the version's status `ready`, as images/s;
  3. first batch: a job on `data=dataset:<name>` (a worker cache hit: an earlier job unpacked it)
     against a job on the same files as a local path under TRAINFORGE_DATA_ROOTS, same worker;
  4. API memory: VmRSS of the API process sampled during each upload, and VmHWM before and after.

Usage: python bench/dataset_upload.py [--images 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from support.stack import Stack, load_average  # noqa: E402
from support.static_upload import BASELINE_PATH  # noqa: E402

NAME = "bench-upload"
SIDE = 56  # 56 x 56 x 3 noise: about 9.5 kB as PNG
JOB = {"epochs": 1, "imgsz": 32, "batch": 16, "workers": 0, "plots": False, "val": False}
OUT = HERE / "out" / "dataset_upload.json"


def build_dataset(root: Path, images: int) -> tuple[Path, Path, Path]:
    """Write an ImageFolder set of `images` noise PNGs (two classes, 2% in val).

    Return its folder, its zip, and a zip of 8 of its images that warms the service up unmeasured.
    """
    rng = np.random.default_rng(0)
    folder = root / "local" / "noise"
    val = max(4, images // 50)
    for index in range(images):
        split = "val" if index < val else "train"
        path = folder / split / f"c{index % 2}" / f"{index:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(path, compress_level=1)
    archive = root / "noise.zip"
    # Stored, not deflated: noise does not compress, and the archive's size is then the data's.
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    warm = root / "warm.zip"
    with zipfile.ZipFile(warm, "w", zipfile.ZIP_STORED) as zf:
        for class_dir in sorted(folder.glob("*/*")):
            for path in sorted(class_dir.iterdir())[:2]:
                zf.write(path, path.relative_to(folder.parent).as_posix())
    return folder, archive, warm


class MemorySampler:
    """Sample a process's VmRSS every few milliseconds; keep the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def status_kb(self, key: str) -> int:
        """Return one field of /proc/<pid>/status in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.status_kb("VmRSS"))
            time.sleep(0.005)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def curl_upload(url: str, archive: Path, headers: list[str], method: str) -> tuple[float, str]:
    """Send `archive` as the body with `curl -T`; return the seconds it took and the response body."""
    argv = ["curl", "-sS", "--fail-with-body", "-X", method, "-T", str(archive), "-H", "Expect:"]
    for header in headers:
        argv += ["-H", header]
    start = time.perf_counter()
    done = subprocess.run([*argv, url], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"curl {method} {url}: {done.returncode} {done.stdout} {done.stderr}")
    return elapsed, done.stdout


def drop_baseline_files(folder: Path) -> None:
    """Delete what the bare endpoint wrote, after its upload is timed.

    Its file is left dirty in the page cache (it never syncs); kept, the kernel would write it back
    later, in the middle of whichever upload runs then, and the product's syncs would share the disk
    with the baseline's deferred writes. Deleted, its dirty pages are dropped unwritten.
    """
    for path in folder.iterdir():
        path.unlink()


def upload_round(stack: Stack, archive: Path, product_first: bool) -> dict[str, Any]:
    """Upload the zip to the bare endpoint and to /v1/datasets (in the given order); time both."""
    size = archive.stat().st_size
    product_url = f"{stack.base_url}/v1/datasets?name={NAME}"
    auth = [f"Authorization: Bearer {stack.token}", "Content-Type: application/octet-stream"]
    result: dict[str, Any] = {}
    for which in ("product", "baseline") if product_first else ("baseline", "product"):
        if which == "baseline":
            seconds, _ = curl_upload(stack.base_url + BASELINE_PATH, archive, [], "PUT")
            result["baseline_mb_s"] = size / seconds / 1e6
            drop_baseline_files(Path(stack.env["BENCH_STATIC_UPLOAD_DIR"]))
            continue
        sampler = MemorySampler(stack.procs[0].pid)
        rss_before = sampler.status_kb("VmRSS")
        hwm_before = sampler.status_kb("VmHWM")
        with sampler:
            seconds, body = curl_upload(product_url, archive, auth, "POST")
        result["uploaded_at"] = time.monotonic()
        result["dataset_id"] = json.loads(body)["id"]
        result["product_mb_s"] = size / seconds / 1e6
        result["rss_growth_mb"] = (sampler.peak_kb - rss_before) / 1024
        result["hwm_growth_mb"] = (sampler.status_kb("VmHWM") - hwm_before) / 1024
    result["ratio"] = result["product_mb_s"] / result["baseline_mb_s"]
    return result


def wait_ready(client: Any, dataset_id: str, timeout: float = 1800.0) -> float:
    """Poll the dataset until it is validated; return when (monotonic); fail if it is invalid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = client.get(f"/v1/datasets/{dataset_id}").json()
        if row["status"] == "ready":
            return time.monotonic()
        if row["status"] == "invalid":
            raise RuntimeError(f"dataset {dataset_id} invalid: {row.get('error')}")
        time.sleep(0.05)
    raise TimeoutError(f"dataset {dataset_id} not validated in {timeout:.0f} s")


def warm_up(stack: Stack, client: Any, warm: Path) -> None:
    """Upload and validate a tiny set first, so no round pays the service's first-request costs."""
    auth = [f"Authorization: Bearer {stack.token}", "Content-Type: application/octet-stream"]
    curl_upload(stack.base_url + BASELINE_PATH, warm, [], "PUT")
    _, body = curl_upload(f"{stack.base_url}/v1/datasets?name={NAME}-warm", warm, auth, "POST")
    wait_ready(client, json.loads(body)["id"])


def first_batch(stack: Stack, client: Any, artifacts: Path, data: str, fraction: float) -> float:
    """Run one classify job on `data`; return seconds from its POST returning to its first batch."""
    body = {"trainer": "classify", "overrides": {**JOB, "data": data, "fraction": fraction}}
    response = client.post("/v1/jobs", json=body)
    posted = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"submit {data}: {response.status_code} {response.text}")
    job_id = response.json()["id"]
    job = stack.wait_job(client, job_id)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} on {data} {job['status']}: {job.get('error')}")
    timings = json.loads((artifacts / job_id / ".outcome.json").read_text())["timings"]
    return float(timings["first_batch"]) - posted


def spread(values: list[float]) -> str:
    """Return 'median (min-max)'."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def verdict(ok: bool) -> str:
    """Return 'met' or 'NOT met'."""
    return "met" if ok else "NOT met"


def main() -> int:
    """Build the set, run the rounds on one stack, print each figure against its goal."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=20_000, help="images in the set (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (at least 3)")
    args = parser.parse_args()
    if args.images < 8 or args.rounds < 3:
        parser.error("--images must be at least 8 and --rounds at least 3")
    print(load_average(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        local, archive, warm = build_dataset(work, args.images)
        size_mb = archive.stat().st_size / 1e6
        print(f"built {args.images} images, {size_mb:.0f} MB zip in {time.monotonic() - started:.0f} s")
        # About 64 training images whatever N: the job's start (scan, cache) is measured, not its epoch.
        fraction = min(1.0, 64 / args.images)
        env = {
            "TRAINFORGE_STORAGE_DIR": str(work / "storage"),
            "TRAINFORGE_CACHE_DIR": str(work / "cache"),
            "TRAINFORGE_DATA_ROOTS": str(work / "local"),
            "TRAINFORGE_UPLOAD_MAX_BYTES": str(4 * archive.stat().st_size),
            "BENCH_STATIC_UPLOAD_DIR": str(work / "static"),
        }
        stack = Stack(
            work / "stack",
            env=env,
            worker_queues=["jobs", "webhooks,default"],
            api_app="bench.support.static_upload:app",
        )
        with stack, stack.client() as client:
            artifacts = work / "stack" / "artifacts"
            warm_up(stack, client, warm)
            rounds: list[dict[str, Any]] = []
            for index in range(args.rounds):
                row = upload_round(stack, archive, product_first=index % 2 == 0)
                row["validate_s"] = wait_ready(client, row.pop("dataset_id")) - row.pop("uploaded_at")
                row["images_per_s"] = args.images / row["validate_s"]
                if index == 0:  # unpack into the worker cache and warm the worker: not measured
                    first_batch(stack, client, artifacts, f"dataset:{NAME}", fraction)
                    first_batch(stack, client, artifacts, str(local), fraction)
                order = ["dataset", "local"] if index % 2 == 0 else ["local", "dataset"]
                for which in order:
                    data = f"dataset:{NAME}" if which == "dataset" else str(local)
                    row[f"{which}_first_batch_s"] = first_batch(stack, client, artifacts, data, fraction)
                row["start_ratio"] = row["local_first_batch_s"] / row["dataset_first_batch_s"]
                rounds.append(row)
                print(f"round {index + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    report(rounds, args.images, size_mb)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load": load_average(), "images": args.images, "rounds": rounds}, indent=2))
    return 0


def report(rounds: list[dict[str, Any]], images: int, size_mb: float) -> None:
    """Print the medians (min-max over the rounds) with their goals."""

    def col(key: str) -> list[float]:
        return [r[key] for r in rounds]

    upload = statistics.median(col("ratio"))
    start = statistics.median(col("start_ratio"))
    rss = max(max(col("rss_growth_mb")), max(col("hwm_growth_mb")))
    print(f"{images} images, {size_mb:.0f} MB, {len(rounds)} rounds; median (min-max)")
    print(f"upload /v1/datasets MB/s       {spread(col('product_mb_s'))}")
    print(f"upload bare endpoint MB/s      {spread(col('baseline_mb_s'))}")
    print(f"upload ratio                   {spread(col('ratio'))}  goal >= 0.8: {verdict(upload >= 0.8)}")
    print(f"validation images/s            {spread(col('images_per_s'))}  ({spread(col('validate_s'))} s)")
    print(f"first batch, dataset: (hit) s  {spread(col('dataset_first_batch_s'))}")
    print(f"first batch, local path s      {spread(col('local_first_batch_s'))}")
    met = verdict(start >= 0.95)
    print(f"start ratio local/dataset      {spread(col('start_ratio'))}  goal >= 0.95: {met}")
    print(f"API RSS growth MB (max)        {rss:.1f}  goal < 50: {verdict(rss < 50)}")
    print(load_average())


if __name__ == "__main__":
    sys.exit(main())
