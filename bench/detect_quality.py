"""Benchmark: mAP of the n-scale detector trained on synthetic:shapes (128 px) within 10 minutes of CPU.

Run: python bench/detect_quality.py [--minutes 9] [--epochs 40] [--threads 1] [--workers 1] [--data ...]
Prints mAP50 and mAP50-95 after every epoch with the wall time, then the evaluation of best.pt.
Goal: mAP50 >= 0.80 and mAP50-95 >= 0.50 on the val split, the whole run under 10 minutes.
`epochs` is an upper bound: the engine's `time` limit re-sizes the schedule to what fits.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from trainer_engine.models.detect import DetectionTrainer

DATA = "synthetic:shapes?train=1000&val=200&size=128&seed=0"


def overrides(args: argparse.Namespace, project: str) -> dict[str, object]:
    """Return the run's settings: a short AdamW schedule, one optimizer step per batch of 16."""
    return {
        "model": "tiny-det-n.yaml",
        "data": args.data,
        "imgsz": 128,
        "epochs": args.epochs,
        "time": args.minutes / 60,
        "batch": 16,
        "nbs": 16,  # no gradient accumulation: a short run needs every optimizer step it can get
        "workers": args.workers,
        "close_mosaic": args.close_mosaic,
        "optimizer": "AdamW",
        "lr0": args.lr0,
        "cos_lr": True,
        "warmup_epochs": 1.0,
        "seed": 0,
        "device": "cpu",
        "project": project,
        "name": "bench",
        "plots": False,
        "verbose": False,
    }


def main() -> None:
    """Train, printing the curve, and report the final metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--minutes", type=float, default=9.0, help="training time limit (the engine's `time`)"
    )
    parser.add_argument("--lr0", type=float, default=0.002)
    parser.add_argument("--close-mosaic", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads; 1 leaves a core to the loader worker"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def curve(trainer: DetectionTrainer) -> None:
        m = trainer.metrics
        print(
            f"epoch {trainer.epoch + 1:3d}/{trainer.epochs}  mAP50 {m['metrics/mAP50(B)']:.3f}  "
            f"mAP50-95 {m['metrics/mAP50-95(B)']:.3f}  mosaic {trainer.train_loader.dataset.mosaic:.0f}  "
            f"wall {time.perf_counter() - start:6.1f}s",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as project:
        trainer = DetectionTrainer(overrides=overrides(args, project))
        trainer.add_callback("on_fit_epoch_end", curve)
        trainer.train()
    wall = time.perf_counter() - start
    m = trainer.metrics
    map50, map5095 = m["metrics/mAP50(B)"], m["metrics/mAP50-95(B)"]
    print(
        f"best.pt: mAP50 {map50:.3f}  mAP50-95 {map5095:.3f}  "
        f"P {m['metrics/precision(B)']:.3f}  R {m['metrics/recall(B)']:.3f}"
    )
    print(f"wall {wall:.0f}s ({wall / 60:.1f} min), {trainer.epoch + 1} epochs, stop: {trainer.stop_reason}")
    goal = map50 >= 0.80 and map5095 >= 0.50 and wall <= 600
    print(f"goal mAP50 >= 0.80, mAP50-95 >= 0.50 in <= 10 min: {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
