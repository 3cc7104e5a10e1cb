"""Engine overhead: ClassificationTrainer.train() against a hand-written PyTorch loop, same work.

Same model (tiny-cls), data (synthetic:classify, same augmentations and loader), batch size,
optimizer (SGD, nesterov) and number of steps. The engine runs with validation off and callbacks on
(one callback on every trainer event); everything else at its defaults, so its EMA and gradient
clipping are part of what it costs. A second engine variant turns EMA and clipping off, to show
the loop itself. Each run is its own process (peak RSS is per run); variants alternate, rounds
repeat, and the median images/s of each is compared, so machine noise hits all of them alike.

Usage: python bench/engine_overhead.py [--rounds 3] [--epochs 2] [--imgsz 64] [--batch 64] [--device cpu]
       [--threads 1] [--amp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "engine_overhead.json"


def data_spec(imgsz: int) -> str:
    return f"synthetic:classify?classes=4&train=1024&val=16&size={imgsz}&seed=0"


def run_engine(args: argparse.Namespace, lean: bool) -> dict[str, float]:
    from trainer_engine.engine.callbacks import TRAINER_EVENTS
    from trainer_engine.models.classify import ClassificationTrainer

    overrides = {
        "data": data_spec(args.imgsz),
        "imgsz": args.imgsz,
        "batch": args.batch,
        "nbs": args.batch,
        "epochs": args.epochs,
        "workers": args.workers,
        "optimizer": "SGD",
        "lr0": 0.01,
        "momentum": 0.9,
        "device": args.device,
        "amp": args.amp,
        "val": False,
        "plots": False,
        "verbose": False,
        "project": tempfile.mkdtemp(prefix="bench-engine-"),
    }
    if lean:
        overrides.update(ema=False, clip_grad=0.0)
    trainer = ClassificationTrainer(overrides=overrides)
    marks: dict[str, float] = {}
    counter = {"n": 0}
    for event in TRAINER_EVENTS:  # callbacks on: every event has one
        trainer.add_callback(event, lambda t: counter.__setitem__("n", counter["n"] + 1))
    trainer.add_callback("on_train_start", lambda t: marks.__setitem__("start", time.perf_counter()))
    trainer.add_callback("on_params_update", lambda t: marks.__setitem__("end", _sync(t.device)))
    trainer.train()
    images = len(trainer.train_loader.dataset) * args.epochs
    return {"images": images, "seconds": marks["end"] - marks["start"], "callbacks": counter["n"]}


def run_plain(args: argparse.Namespace) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from trainer_engine.data.classify import ClassificationDataset, build_dataloader, check_cls_dataset
    from trainer_engine.nn.classification import ClassificationModel
    from trainer_engine.utils.torch_utils import init_seeds, select_device

    init_seeds(1, deterministic=True)
    device = select_device(args.device)
    data = check_cls_dataset(data_spec(args.imgsz))
    from trainer_engine.cfg import get_cfg

    cfg = get_cfg(overrides={"imgsz": args.imgsz})  # the same augmentation settings as the engine
    dataset = ClassificationDataset(data["train"], args=cfg, augment=True, names=data["names"])
    loader = build_dataloader(dataset, args.batch, args.workers, shuffle=True, seed=0)
    model = ClassificationModel("tiny-cls.yaml", nc=data["nc"], verbose=False).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp and device.type == "cuda")
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for batch in loader:
            img, cls = batch["img"].to(device, non_blocking=True), batch["cls"].to(device)
            with torch.autocast(device.type, enabled=args.amp and device.type == "cuda"):
                loss = F.cross_entropy(model(img), cls)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
    end = _sync(device)
    return {"images": len(dataset) * args.epochs, "seconds": end - start, "callbacks": 0}


def _sync(device: object) -> float:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def child(variant: str, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    result = run_plain(args) if variant == "plain" else run_engine(args, lean=variant == "engine-lean")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: no OpenMP spin-waits on a shared CPU)",
    )
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--child", choices=["engine", "engine-lean", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return 0
    os.environ.setdefault(
        "TRAINER_ENGINE_DATA_DIR", str(Path(tempfile.gettempdir()) / "trainforge-bench-data")
    )
    flags = [f"--epochs={args.epochs}", f"--imgsz={args.imgsz}", f"--batch={args.batch}"]
    flags += [f"--workers={args.workers}", f"--device={args.device}", f"--threads={args.threads}"] + (
        ["--amp"] if args.amp else []
    )
    results: dict[str, list[dict[str, float]]] = {"engine": [], "engine-lean": [], "plain": []}
    _run_child("plain", flags)  # warm-up: generates and caches the data set, fills the page cache
    for r in range(args.rounds):
        for variant in results:
            res = _run_child(variant, flags)
            results[variant].append(res)
            print(
                f"round {r + 1} {variant:12} {res['images'] / res['seconds']:8.1f} img/s  "
                f"peak RSS {res['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    ips = {v: statistics.median(x["images"] / x["seconds"] for x in rs) for v, rs in results.items()}
    rss = {v: max(x["peak_rss_mb"] for x in rs) for v, rs in results.items()}
    summary = {
        "settings": vars(args),
        "images_per_s": ips,
        "peak_rss_mb": rss,
        "ratio_engine_to_plain": ips["engine"] / ips["plain"],
        "ratio_engine_lean_to_plain": ips["engine-lean"] / ips["plain"],
        "goal": ">= 0.97",
    }
    print(f"\nimages/s (median of {args.rounds}): " + ", ".join(f"{k} {v:.1f}" for k, v in ips.items()))
    print("peak RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    print(
        f"ratio engine/plain = {summary['ratio_engine_to_plain']:.3f} (goal >= 0.97); "
        f"without EMA and clipping = {summary['ratio_engine_lean_to_plain']:.3f}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=2))
    return 0


def _run_child(variant: str, flags: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, f"--child={variant}", *flags], cwd=ROOT, capture_output=True, text=True
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"{variant} run failed:\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
