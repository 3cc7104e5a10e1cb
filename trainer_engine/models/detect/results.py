"""What the detection predictor returns per image: boxes in original pixels, scores and classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Boxes:
    """Detections of one image as an (n, 6) tensor of x1 y1 x2 y2 (original pixels), score, class."""

    data: torch.Tensor

    @property
    def xyxy(self) -> torch.Tensor:
        """Boxes (n, 4) as x1 y1 x2 y2 in original image pixels."""
        return self.data[:, :4]

    @property
    def conf(self) -> torch.Tensor:
        """Scores (n,)."""
        return self.data[:, 4]

    @property
    def cls(self) -> torch.Tensor:
        """Class indices (n,) as floats, the Ultralytics convention."""
        return self.data[:, 5]

    def __len__(self) -> int:
        return len(self.data)


@dataclass
class Results:
    """One image's detections (`boxes.xyxy`, `boxes.conf`, `boxes.cls`), its path, size and class names."""

    path: str
    orig_shape: tuple[int, int]  # (height, width)
    names: dict[int, str]
    boxes: Boxes

    def __len__(self) -> int:
        return len(self.boxes)

    def summary(self, decimals: int = 2) -> list[dict[str, Any]]:
        """Return one plain dict per detection: name, class, confidence and box."""
        rows = []
        for (x1, y1, x2, y2), conf, cls in zip(
            self.boxes.xyxy.tolist(), self.boxes.conf.tolist(), self.boxes.cls.tolist(), strict=True
        ):
            box = {
                k: round(v, decimals) for k, v in zip(("x1", "y1", "x2", "y2"), (x1, y1, x2, y2), strict=True)
            }
            rows.append(
                {
                    "name": self.names.get(int(cls), str(int(cls))),
                    "class": int(cls),
                    "confidence": round(conf, 4),
                    "box": box,
                }
            )
        return rows

    def __str__(self) -> str:
        counts: dict[str, int] = {}
        for row in self.summary():
            counts[row["name"]] = counts.get(row["name"], 0) + 1
        found = ", ".join(f"{n} {name}" for name, n in counts.items()) or "no detections"
        h, w = self.orig_shape
        return f"{self.path} ({w}x{h}): {found}"
