"""The typed configuration object: one field per key of default.yaml, with its type and its limits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

TASK_NAMES = ("classify", "detect")
MODES = ("train", "val", "predict")
OPTIMIZERS = ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp", "auto")
DETECT = frozenset({"detect"})
CLASSIFY = frozenset({"classify"})


def key(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | None = None,
    tasks: frozenset[str] | None = None,
) -> Any:
    """Declare a config field's limits; its default comes from default.yaml."""
    limits = {"ge": ge, "gt": gt, "le": le, "choices": choices, "tasks": tasks}
    return dataclasses.field(metadata={k: v for k, v in limits.items() if v is not None})


def unit(tasks: frozenset[str] | None = None) -> Any:
    """Declare a field that holds a fraction in [0, 1]."""
    return key(ge=0.0, le=1.0, tasks=tasks)


@dataclass
class TrainArgs:
    """Validated configuration of one run; build it with `get_cfg`, read it as attributes."""

    task: str | None = key(choices=TASK_NAMES)
    mode: str = key(choices=MODES)
    model: str | None = key()
    data: str | None = key()
    epochs: int = key(ge=1)
    time: float | None = key(gt=0)
    patience: int = key(ge=0)
    batch: int = key(ge=1)
    imgsz: int = key(ge=8)
    save: bool = key()
    save_period: int = key(ge=-1)
    cache: bool | str = key(choices=(False, True, "ram", "disk"))
    device: str | None = key()
    world_size: int | None = key(ge=1)
    workers: int = key(ge=0)
    project: str | None = key()
    name: str | None = key()
    exist_ok: bool = key()
    pretrained: bool | str = key()
    optimizer: str = key(choices=OPTIMIZERS)
    verbose: bool = key()
    seed: int = key(ge=0)
    deterministic: bool = key()
    single_cls: bool = key()
    rect: bool = key(tasks=DETECT)
    cos_lr: bool = key()
    close_mosaic: int = key(ge=0, tasks=DETECT)
    resume: bool | str = key()
    amp: bool = key()
    fraction: float = key(gt=0.0, le=1.0)
    profile: bool = key()
    freeze: int | list[int] | None = key(ge=0)
    ema: bool = key()
    clip_grad: float = key(ge=0.0)

    val: bool = key()
    split: str = key(choices=("train", "val", "test"))
    save_json: bool = key()
    conf: float | None = unit()
    iou: float = unit(DETECT)
    max_det: int = key(ge=1, tasks=DETECT)
    nms: bool = key(tasks=DETECT)
    agnostic_nms: bool = key(tasks=DETECT)
    classes: list[int] | None = key(ge=0)
    half: bool = key()
    plots: bool = key()
    source: str | list[str] | None = key()
    save_txt: bool = key()
    save_conf: bool = key()
    augment: bool = key()

    lr0: float = key(gt=0.0)
    lrf: float = key(gt=0.0, le=1.0)
    momentum: float = unit()
    weight_decay: float = key(ge=0.0)
    warmup_epochs: float = key(ge=0.0)
    warmup_momentum: float = unit()
    warmup_bias_lr: float = key(ge=0.0)
    nbs: int = key(ge=1)
    box: float = key(ge=0.0, tasks=DETECT)
    cls: float = key(ge=0.0, tasks=DETECT)
    dfl: float = key(ge=0.0, tasks=DETECT)
    label_smoothing: float = unit()
    dropout: float = key(ge=0.0, le=1.0, tasks=CLASSIFY)

    hsv_h: float = unit()
    hsv_s: float = unit()
    hsv_v: float = unit()
    degrees: float = key(ge=0.0, le=180.0)
    translate: float = unit()
    scale: float = key(ge=0.0)
    shear: float = key(ge=0.0, le=180.0)
    perspective: float = key(ge=0.0, le=0.001)
    flipud: float = unit()
    fliplr: float = unit()
    bgr: float = unit()
    mosaic: float = unit(DETECT)
    mixup: float = unit(DETECT)
    copy_paste: float = unit(DETECT)
    auto_augment: str | None = key(
        choices=("randaugment", "autoaugment", "augmix", "none", None), tasks=CLASSIFY
    )
    erasing: float = key(ge=0.0, le=0.9, tasks=CLASSIFY)

    def to_dict(self) -> dict[str, Any]:
        """Return the keys and their values as plain JSON-able values."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def copy(self, **changes: Any) -> TrainArgs:
        """Return a copy with some keys replaced (not re-validated; use get_cfg for user input)."""
        return dataclasses.replace(self, **changes)

    def get(self, name: str, default: Any = None) -> Any:
        """Return a key's value, or `default` when there is no such key."""
        return getattr(self, name, default)

    def __contains__(self, name: str) -> bool:
        return name in FIELD_NAMES


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


FIELDS = {f.name: f for f in dataclasses.fields(TrainArgs)}
FIELD_NAMES = frozenset(FIELDS)
