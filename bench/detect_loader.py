"""Benchmark: images/s of the detection training loader (decode, letterbox, mosaic, augment, collate).

Run: python bench/detect_loader.py [--data synthetic:shapes] [--imgsz 128] [--batch 16] [--batches 40]
Prints the loader alone with workers=0, 1 and 2, the n-scale model's train step alone on real
batches, and both together (what a CPU epoch does), so one sees whether the loader limits an epoch.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import torch

from trainer_engine.cfg import get_cfg
from trainer_engine.data.detect import YOLODataset, batch_to_device, build_dataloader, check_det_dataset
from trainer_engine.nn.tasks import DetectionModel


def endless(loader: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield batches across epochs, as a training run does."""
    while True:
        yield from loader


def timed(batches: Iterator[dict[str, Any]], n: int, step: Any = None) -> float:
    """Return images/s over n batches after one warm-up batch (worker start-up excluded)."""
    step = step or (lambda b: None)
    step(next(batches))
    images, start = 0, time.perf_counter()
    for b in islice(batches, n):
        step(b)
        images += b["img"].shape[0]
    return images / (time.perf_counter() - start)


def train_step(model: DetectionModel, opt: torch.optim.Optimizer) -> Any:
    """Return a function running one forward, backward and optimizer step on a collated batch."""

    def step(batch: dict[str, Any]) -> None:
        loss, _ = model(batch_to_device(dict(batch), "cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    """Parse arguments, build the augmented training set and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:shapes")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the train step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = check_det_dataset(args.data)
    hyp = get_cfg(task="detect")  # the trainer's default augmentation (mosaic 1.0, affine, HSV, flip)
    dataset = YOLODataset(data["train"], args.imgsz, data["nc"], augment=True, hyp=hyp)
    model = DetectionModel("tiny-det-n.yaml", nc=data["nc"], verbose=False).train()
    step = train_step(model, torch.optim.AdamW(model.parameters(), lr=0.001))
    print(
        f"detect loader: {args.data} imgsz={args.imgsz} batch={args.batch} torch threads={args.threads}, "
        f"{args.batches} batches a figure"
    )
    loaders = {w: build_dataloader(dataset, args.batch, w, shuffle=True, seed=0) for w in (0, 1, 2)}
    for workers, loader in loaders.items():
        print(
            f"loader alone,        workers={workers}: {timed(endless(loader), args.batches):7.1f} images/s",
            flush=True,
        )
    cached = list(islice(endless(loaders[0]), 8))
    model_rate = timed(endless(cached), args.batches, step)
    print(f"train step alone (tiny-det-n):     {model_rate:7.1f} images/s", flush=True)
    for workers, loader in loaders.items():
        rate = timed(endless(loader), args.batches, step)
        share = f"{rate / model_rate:.0%} of the step alone"
        print(f"loader + train step, workers={workers}: {rate:7.1f} images/s ({share})")


if __name__ == "__main__":
    main()
