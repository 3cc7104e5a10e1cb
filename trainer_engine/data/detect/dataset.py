"""The YOLO-format detection dataset, its collate function and data loader."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from trainer_engine.data.detect import augment as aug
from trainer_engine.data.detect.labels import load_labels
from trainer_engine.data.errors import DatasetError


def _hyp(hyp: Any, key: str, default: float) -> float:
    """Read an augmentation setting from TrainArgs, a dict or nothing."""
    value = hyp.get(key) if isinstance(hyp, dict) else getattr(hyp, key, None)
    return default if value is None else float(value)


class YOLODataset(Dataset):
    """Images with `labels/*.txt` boxes; letterboxed to imgsz, augmented when training.

    An item is a dict: `img` (3, imgsz, imgsz) uint8, `cls` (n, 1), `bboxes` (n, 4) normalised
    cx cy w h, `im_file`, `ori_shape` (h, w) and `ratio_pad` (scale, (pad_x, pad_y)).
    """

    def __init__(
        self,
        img_path: str | list[str],
        imgsz: int = 640,
        nc: int = 80,
        augment: bool = False,
        hyp: Any = None,
        split: str = "train",
        fraction: float = 1.0,
        single_cls: bool = False,
        cache: bool | str = False,
    ) -> None:
        paths = [img_path] if isinstance(img_path, str) else list(img_path)
        found = load_labels(paths, nc, split)
        n = max(1, round(len(found.im_files) * fraction)) if fraction < 1 else len(found.im_files)
        self.im_files, self.shapes, self.labels = found.im_files[:n], found.shapes[:n], found.labels[:n]
        self.problems = found.problems
        if single_cls:
            self.labels = [np.c_[np.zeros(len(lb), np.float32), lb[:, 1:]] for lb in self.labels]
        if split == "train" and not sum(len(lb) for lb in self.labels):
            raise DatasetError(
                f"{split} split {paths} has {len(self.im_files)} images but no valid labels; "
                "check the labels/ folders next to images/ (problems were logged above)"
            )
        self.imgsz = imgsz
        self.augment = augment
        self.hyp = hyp
        self.mosaic = _hyp(hyp, "mosaic", 1.0) if augment else 0.0
        self.cache = cache in (True, "ram", "true")
        self._images: dict[int, Image.Image] = {}
        self._rng: np.random.Generator | None = None
        self._rng_pid = -1

    def __len__(self) -> int:
        """Return the number of usable images."""
        return len(self.im_files)

    def close_mosaic(self) -> None:
        """Turn mosaic off (the last `close_mosaic` epochs train on whole, undistorted images)."""
        self.mosaic = 0.0

    @property
    def rng(self) -> np.random.Generator:
        """A generator per process, seeded from torch so each loader worker draws differently."""
        if self._rng is None or self._rng_pid != os.getpid():
            self._rng = np.random.default_rng(torch.initial_seed() % 2**32)
            self._rng_pid = os.getpid()
        return self._rng

    def load_image(self, i: int) -> Image.Image:
        """Open image i as RGB, resized so its long side is imgsz (kept in memory when caching)."""
        if i in self._images:
            return self._images[i]
        try:
            with Image.open(self.im_files[i]) as im:
                img, _ = aug.resize_long(im.convert("RGB"), self.imgsz)
        except OSError as exc:
            raise DatasetError(
                f"{self.im_files[i]}: cannot read image ({exc}); remove or replace it"
            ) from exc
        if self.cache:
            self._images[i] = img
        return img

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Return one letterboxed (and, when training, augmented) sample."""
        labels = self.labels[i]
        cls = labels[:, 0].copy()
        if self.augment and self.rng.random() < self.mosaic:
            idx = [i, *self.rng.integers(0, len(self), 3)]
            tiles = [(self.load_image(j), self.labels[j][:, 1:], self.labels[j][:, 0]) for j in idx]
            img, boxes, cls = aug.mosaic4(tiles, self.imgsz, self.rng)
            img, boxes, cls = self._affine(img, boxes, cls)
            ratio_pad: tuple[Any, Any] = (1.0, (0.0, 0.0))
        else:
            loaded = self.load_image(i)  # already resized to imgsz on its long side
            img, _, pad = aug.letterbox(loaded, self.imgsz)
            boxes = aug.xywhn_to_xyxy(labels[:, 1:], loaded.width, loaded.height, *pad)
            if self.augment:
                img, boxes, cls = self._affine(img, boxes, cls)
            ratio_pad = (self.imgsz / max(self.shapes[i]), pad)
        if self.augment:
            img = aug.augment_hsv(
                img,
                self.rng,
                _hyp(self.hyp, "hsv_h", 0.015),
                _hyp(self.hyp, "hsv_s", 0.7),
                _hyp(self.hyp, "hsv_v", 0.4),
            )
            if self.rng.random() < _hyp(self.hyp, "fliplr", 0.5):
                img, boxes = aug.flip_lr(img, boxes)
            if self.rng.random() < _hyp(self.hyp, "flipud", 0.0):
                img, boxes = aug.flip_ud(img, boxes)
        s = img.shape[0]
        return {
            "img": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
            "cls": torch.from_numpy(cls.astype(np.float32)).view(-1, 1),
            "bboxes": torch.from_numpy(aug.xyxy_to_xywhn(boxes.astype(np.float32), s, s)).view(-1, 4),
            "im_file": self.im_files[i],
            "ori_shape": self.shapes[i],
            "ratio_pad": ratio_pad,
        }

    def _affine(self, img: np.ndarray, boxes: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, ...]:
        """Apply the random affine from the hyperparameters into an imgsz square."""
        return aug.random_affine(
            img,
            boxes,
            cls,
            self.imgsz,
            self.rng,
            degrees=_hyp(self.hyp, "degrees", 0.0),
            translate=_hyp(self.hyp, "translate", 0.1),
            scale=_hyp(self.hyp, "scale", 0.5),
            shear=_hyp(self.hyp, "shear", 0.0),
        )


def collate_fn(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images; concatenate boxes and classes with a `batch_idx` saying which image each belongs to."""
    return {
        "img": torch.stack([it["img"] for it in items]),
        "cls": torch.cat([it["cls"] for it in items]),
        "bboxes": torch.cat([it["bboxes"] for it in items]),
        "batch_idx": torch.cat([torch.full((len(it["cls"]),), float(i)) for i, it in enumerate(items)]),
        "im_file": [it["im_file"] for it in items],
        "ori_shape": [it["ori_shape"] for it in items],
        "ratio_pad": [it["ratio_pad"] for it in items],
    }


def batch_to_device(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """Move a collated batch's tensors to `device`, with images as floats in 0..1."""
    batch["img"] = batch["img"].to(device, non_blocking=True).float() / 255
    for key in ("cls", "bboxes", "batch_idx"):
        batch[key] = batch[key].to(device, non_blocking=True)
    return batch


def build_dataloader(
    dataset: Dataset, batch: int, workers: int, shuffle: bool = True, rank: int = -1, seed: int = 0
) -> DataLoader:
    """Return a DataLoader with the detection collate, capped workers and a DDP sampler when rank >= 0."""
    workers = max(0, min(workers, os.cpu_count() or 1, batch))
    sampler = DistributedSampler(dataset, shuffle=shuffle) if rank != -1 else None
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        generator=gen,
        # Workers restart every epoch so `close_mosaic()` on the dataset reaches them.
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        drop_last=False,
    )
