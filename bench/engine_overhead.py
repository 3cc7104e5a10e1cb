"""Engine overhead: ClassificationTrainer.train() against a hand-written PyTorch loop, same work.

Same model (tiny-cls), data (synthetic:classify, same augmentations and loader), batch size and
optimizer (SGD, nesterov). The engine runs with validation off and callbacks on (one callback on
every trainer event); everything else at its defaults, so its EMA, gradient clipping and per-epoch
last.pt are part of what it costs (`--lean` adds a variant without EMA and clipping).

Paired rounds: each side is one long-lived process that trains one epoch per round when told to,
so start-up is paid once and the two never run at the same time. The order alternates every round
(plain first, then engine first), and each round gives its own engine/plain throughput ratio, from
wall time and from the CPU time of the measured process (loader workers default to 0, so that
process does all the work). On a shared CPU wall time swings with other people's load; CPU time
mostly does not. The first round is a warm-up and is dropped. The goal (engine throughput >= 0.97
of plain) is resolved when every round's ratio falls on the same side of it.

Usage: python bench/engine_overhead.py [--rounds 5] [--images 1024] [--imgsz 32] [--batch 64]
       [--workers 0] [--device cpu] [--threads 1] [--amp] [--lean]
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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "engine_overhead.json"
GOAL = 0.97


def data_spec(args: argparse.Namespace) -> str:
    return f"synthetic:classify?classes=4&train={args.images}&val=16&size={args.imgsz}&seed=0"


class Rounds:
    """The child's side of the protocol: wait for "go" before each epoch, report its wall and CPU time."""

    def __init__(self, device: object) -> None:
        self.device = device
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        print("READY", flush=True)
        if sys.stdin.readline().strip() != "go":
            os._exit(0)  # the parent is done with this side
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def end(self, images: int) -> None:
        wall = _sync(self.device) - self.wall
        cpu = time.process_time() - self.cpu
        print("EPOCH " + json.dumps({"images": images, "wall_s": wall, "cpu_s": cpu}), flush=True)


def run_engine(args: argparse.Namespace, lean: bool) -> None:
    from trainer_engine.cfg.events import TRAINER_EVENTS
    from trainer_engine.models.classify import ClassificationTrainer

    overrides = {
        "data": data_spec(args),
        "imgsz": args.imgsz,
        "batch": args.batch,
        "nbs": args.batch,
        "epochs": args.rounds + 1,
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
    counter = {"n": 0}
    for event in TRAINER_EVENTS:  # callbacks on: every event has one
        trainer.add_callback(event, lambda t: counter.__setitem__("n", counter["n"] + 1))
    rounds = Rounds(None)

    def start(t: Any) -> None:
        rounds.device = t.device
        rounds.start()

    trainer.add_callback("on_train_epoch_start", start)
    trainer.add_callback("on_params_update", lambda t: rounds.end(len(t.train_loader.dataset)))
    trainer.train()


def run_plain(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    from trainer_engine.cfg import get_cfg
    from trainer_engine.data.classify import ClassificationDataset, build_dataloader, check_cls_dataset
    from trainer_engine.nn.classification import ClassificationModel
    from trainer_engine.utils.torch_utils import init_seeds, select_device

    init_seeds(1, deterministic=True)
    device = select_device(args.device)
    data = check_cls_dataset(data_spec(args))
    cfg = get_cfg(overrides={"imgsz": args.imgsz})  # the same augmentation settings as the engine
    dataset = ClassificationDataset(data["train"], args=cfg, augment=True, names=data["names"])
    loader = build_dataloader(dataset, args.batch, args.workers, shuffle=True, seed=0)
    model = ClassificationModel("tiny-cls.yaml", nc=data["nc"], verbose=False).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    amp = args.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    rounds = Rounds(device)
    for _ in range(args.rounds + 1):
        rounds.start()
        model.train()
        for batch in loader:
            img, cls = batch["img"].to(device, non_blocking=True), batch["cls"].to(device)
            with torch.autocast(device.type, enabled=amp):
                loss = F.cross_entropy(model(img), cls)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
        rounds.end(len(dataset))


def _sync(device: object) -> float:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def child(variant: str, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if variant == "plain":
        run_plain(args)
    else:
        run_engine(args, lean=variant == "engine-lean")
    print("READY", flush=True)  # the end of the last round, as after every other one
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"peak_rss_mb": peak}), flush=True)


class Side:
    """One variant's child process, driven round by round over its stdin/stdout."""

    def __init__(self, variant: str, flags: list[str], log: IO[str]) -> None:
        self.variant = variant
        self.proc = subprocess.Popen(
            [sys.executable, __file__, f"--child={variant}", *flags],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.log = log
        self.expect("READY")

    def expect(self, prefix: str) -> str:
        """Return the rest of the next stdout line starting with `prefix` (other output is skipped)."""
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        self.log.seek(0)
        raise SystemExit(f"{self.variant} run failed:\n{self.log.read()[-3000:]}")

    def round(self) -> dict[str, float]:
        """Train one epoch now; return its images, wall_s and cpu_s."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        result = json.loads(self.expect("EPOCH "))
        self.expect("READY")
        return result

    def close(self) -> float:
        """Let the child finish (it needs no more input); return its peak RSS in MB."""
        peak = json.loads(self.expect("RESULT "))["peak_rss_mb"]
        self.proc.wait()
        return peak


def spread(values: list[float]) -> dict[str, float]:
    """Return median, min, max and (max - min) / median of `values`."""
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / med,
    }


def verdict(ratios: list[float]) -> str:
    """Say whether the goal is met, and whether every round agrees."""
    if min(ratios) >= GOAL:
        return f"MET (every round >= {GOAL})"
    if max(ratios) < GOAL:
        return f"NOT MET (every round < {GOAL})"
    side = "met" if statistics.median(ratios) >= GOAL else "not met"
    return f"UNRESOLVED (rounds fall on both sides of {GOAL}; the median says {side})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (one epoch each)")
    parser.add_argument("--images", type=int, default=1024, help="training images: one round's work")
    parser.add_argument("--imgsz", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="loader workers (0: all work in the process)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: no OpenMP spin-waits on a shared CPU)",
    )
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument(
        "--lean", action="store_true", help="also measure the engine without EMA and clipping"
    )
    parser.add_argument("--child", choices=["engine", "engine-lean", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return 0
    os.environ.setdefault(
        "TRAINER_ENGINE_DATA_DIR", str(Path(tempfile.gettempdir()) / "trainforge-bench-data")
    )
    flags = [f"--rounds={args.rounds}", f"--images={args.images}", f"--imgsz={args.imgsz}"]
    flags += [f"--batch={args.batch}", f"--workers={args.workers}", f"--device={args.device}"]
    flags += [f"--threads={args.threads}"] + (["--amp"] if args.amp else [])
    variants = ["plain", "engine"] + (["engine-lean"] if args.lean else [])
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        sides = {v: Side(v, flags, log) for v in variants}  # the first also generates the data set
        results = _paired_rounds(sides, args.rounds, print)
        rss = {v: side.close() for v, side in sides.items()}
    summary = _summary(args, results, rss, time.perf_counter() - started)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=2))
    return 0


def _paired_rounds(
    sides: dict[str, Side], rounds: int, say: Callable[[str], None]
) -> dict[str, list[dict[str, float]]]:
    """Run the warm-up round and `rounds` measured ones, alternating the order; return each side's rounds."""
    results: dict[str, list[dict[str, float]]] = {v: [] for v in sides}
    names = list(sides)
    for r in range(rounds + 1):
        order = names if r % 2 == 0 else names[::-1]
        for v in order:
            res = sides[v].round()
            if r == 0:
                continue  # warm-up: first-touch allocations and caches
            results[v].append(res)
            say(
                f"round {r} {v:12} {res['images'] / res['wall_s']:8.1f} img/s wall  "
                f"{res['images'] / res['cpu_s']:8.1f} img/CPU-s  ({res['wall_s']:.1f} s)"
            )
    return results


def _summary(
    args: argparse.Namespace, results: dict[str, list[dict[str, float]]], rss: dict[str, float], took_s: float
) -> dict[str, Any]:
    """Print and return the per-round ratios against plain, their median and spread, and the verdict."""
    summary: dict[str, Any] = {"settings": vars(args), "goal": GOAL, "peak_rss_mb": rss, "took_s": took_s}
    plain = results["plain"]
    steps = -(-args.images // args.batch)
    print(f"\n{args.rounds} paired rounds of {steps} steps ({args.images} images) each; took {took_s:.0f} s")
    for v in (v for v in results if v != "plain"):
        for clock in ("wall_s", "cpu_s"):
            # Throughput ratio of one round: same images on both sides, so plain time / engine time.
            ratios = [p[clock] / e[clock] for p, e in zip(plain, results[v], strict=True)]
            stats = spread(ratios)
            summary[f"{v}/plain {clock}"] = {"ratios": ratios, **stats, "verdict": verdict(ratios)}
            print(
                f"{v}/plain by {clock[:-2]:4}: median {stats['median']:.3f}  min {stats['min']:.3f}  "
                f"max {stats['max']:.3f}  spread {stats['spread']:.1%}  "
                f"rounds {' '.join(f'{x:.3f}' for x in ratios)}"
            )
            print(f"  goal >= {GOAL}: {verdict(ratios)}")
    print("peak RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    return summary


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
