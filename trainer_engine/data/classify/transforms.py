"""Image transforms for classification: augmenting ones for training, deterministic ones for eval."""

from __future__ import annotations

from typing import Any

import torch
from torchvision import transforms as T

# ImageNet statistics: what torchvision networks (and weights saved from them) expect.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
AUTO_AUGMENT = ("randaugment", "autoaugment", "augmix", "none", "")


def classify_transforms(imgsz: int) -> T.Compose:
    """Resize the short side to imgsz, centre-crop a square, scale to [0,1] and normalise."""
    return T.Compose([T.Resize(imgsz), T.CenterCrop(imgsz), T.ToTensor(), T.Normalize(MEAN, STD)])


def classify_augmentations(imgsz: int, hyp: Any = None) -> T.Compose:
    """Build training augmentations from the hyperparameters: scale, flips, HSV, auto_augment, erasing."""

    def h(key: str, default: Any) -> Any:
        value = getattr(hyp, key, default) if hyp is not None else default
        return default if value is None else value

    scale = float(h("scale", 0.5))
    steps: list[Any] = [T.RandomResizedCrop(imgsz, scale=(max(0.08, 1.0 - scale), 1.0), antialias=True)]
    if h("fliplr", 0.5) > 0:
        steps.append(T.RandomHorizontalFlip(h("fliplr", 0.5)))
    if h("flipud", 0.0) > 0:
        steps.append(T.RandomVerticalFlip(h("flipud", 0.0)))
    steps += _auto_augment(str(h("auto_augment", "none")).lower())
    hsv = (h("hsv_v", 0.4), h("hsv_s", 0.7), h("hsv_h", 0.015))
    if any(hsv):
        steps.append(T.ColorJitter(brightness=hsv[0], saturation=hsv[1], hue=min(0.5, hsv[2])))
    steps += [T.ToTensor(), T.Normalize(MEAN, STD)]
    if h("erasing", 0.0) > 0:
        steps.append(T.RandomErasing(p=h("erasing", 0.0), value=0.0))
    return T.Compose(steps)


def _auto_augment(name: str) -> list[Any]:
    if name == "randaugment":
        return [T.RandAugment()]
    if name == "autoaugment":
        return [T.AutoAugment()]
    if name == "augmix":
        return [T.AugMix()]
    if name in ("none", ""):
        return []
    raise ValueError(
        f"auto_augment={name!r} is not known; use one of {', '.join(a for a in AUTO_AUGMENT if a)}"
    )


def denormalize(img: torch.Tensor) -> torch.Tensor:
    """Undo Normalize for display: CHW or BCHW tensor back to [0,1]."""
    mean = torch.tensor(MEAN, device=img.device).view(-1, 1, 1)
    std = torch.tensor(STD, device=img.device).view(-1, 1, 1)
    return (img * std + mean).clamp(0, 1)
