"""A small CNN for classification built from a model config file (a list of named layers, no code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class Conv(nn.Module):
    """Conv2d without bias, then BatchNorm and SiLU; 'same' padding for odd kernels."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve, normalise, activate."""
        return self.act(self.bn(self.conv(x)))


class ResBlock(nn.Module):
    """Two 3x3 Convs with an identity shortcut; keeps channels and resolution."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1 = Conv(c, c, 3, 1)
        self.cv2 = Conv(c, c, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the block's output to its input."""
        return x + self.cv2(self.cv1(x))


class Classify(nn.Module):
    """Global average pool, dropout, linear layer to `nc` logits."""

    def __init__(self, c_in: int, nc: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(p=dropout, inplace=True)
        self.linear = nn.Linear(c_in, nc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape (batch, nc)."""
        return self.linear(self.drop(self.pool(x).flatten(1)))


def _conv(c_in: int, args: list[Any]) -> tuple[nn.Module, int]:
    c_out, *rest = args
    return Conv(c_in, int(c_out), *(int(a) for a in rest)), int(c_out)


def _res(c_in: int, args: list[Any]) -> tuple[nn.Module, int]:
    return ResBlock(c_in), c_in


def _maxpool(c_in: int, args: list[Any]) -> tuple[nn.Module, int]:
    k = int(args[0]) if args else 2
    return nn.MaxPool2d(k, k), c_in


# Layer name -> builder(c_in, args) -> (module, c_out). Only these names are accepted: a config is data.
LAYERS: dict[str, Callable[[int, list[Any]], tuple[nn.Module, int]]] = {
    "Conv": _conv,
    "ResBlock": _res,
    "MaxPool": _maxpool,
}


class ModelConfigError(ValueError):
    """A model config file is malformed; the message says which layer and how to fix it."""


def build_cnn(cfg: dict[str, Any], nc: int, ch: int = 3) -> nn.Sequential:
    """Build `backbone` layers then a Classify head from a config dict."""
    layers = cfg.get("backbone")
    if not isinstance(layers, list) or not layers:
        raise ModelConfigError(
            "model config needs a non-empty 'backbone' list of [Layer, [args]] entries, "
            f"e.g. '- [Conv, [16, 3, 2]]'; layers: {', '.join(LAYERS)}"
        )
    modules: list[nn.Module] = []
    c = ch
    for i, entry in enumerate(layers):
        module, c = _build_layer(i, entry, c)
        modules.append(module)
    head = cfg.get("head") or {}
    if not isinstance(head, dict):
        raise ModelConfigError(f"model config 'head' must be a mapping like {{dropout: 0.0}}, got {head!r}")
    modules.append(Classify(c, nc, float(head.get("dropout", 0.0))))
    return nn.Sequential(*modules)


def _build_layer(i: int, entry: Any, c_in: int) -> tuple[nn.Module, int]:
    if not (isinstance(entry, list | tuple) and entry and isinstance(entry[0], str)):
        raise ModelConfigError(f"backbone layer {i}: expected [Layer, [args]], got {entry!r}")
    name, args = entry[0], list(entry[1]) if len(entry) > 1 else []
    if name not in LAYERS:
        raise ModelConfigError(f"backbone layer {i}: unknown layer {name!r}; use one of {', '.join(LAYERS)}")
    try:
        return LAYERS[name](c_in, args)
    except (TypeError, ValueError, IndexError) as e:
        raise ModelConfigError(f"backbone layer {i} ({name}): bad arguments {args!r}: {e}") from e
