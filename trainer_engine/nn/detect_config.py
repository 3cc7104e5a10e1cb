"""Find and read detection model config files (`tiny-det-n.yaml` = `tiny-det.yaml` at scale n)."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

from trainer_engine.utils.yaml_file import read_yaml

MODELS_DIR = Path(__file__).resolve().parents[1] / "cfg" / "models"
_SCALED = re.compile(r"^(?P<base>.+)-(?P<scale>[a-z])$")


def resolve_model_yaml(name: str | Path) -> tuple[Path, str | None]:
    """Return the config file for a name or path and the scale its name asks for, if any."""
    path = Path(name)
    candidates = [path, MODELS_DIR / path.name]
    for cand in candidates:
        if cand.is_file():
            return cand, None
    match = _SCALED.match(path.stem)
    if match:
        for parent in (path.parent, MODELS_DIR):
            base = parent / f"{match['base']}{path.suffix or '.yaml'}"
            if base.is_file():
                return base, match["scale"]
    known = sorted(p.name for p in MODELS_DIR.glob("*det*.yaml"))
    raise FileNotFoundError(
        f"model config '{name}' not found as a path or under trainer_engine/cfg/models; "
        f"built-in detection configs: {', '.join(known)} (add a scale letter, e.g. tiny-det-n.yaml)"
    )


def load_model_cfg(cfg: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Load a model config (file name, path or dict) into a dict with its `scale` resolved."""
    if isinstance(cfg, dict):
        data = copy.deepcopy(cfg)
    else:
        path, scale = resolve_model_yaml(cfg)
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ValueError(f"model config '{cfg}' must hold a mapping, not a {type(data).__name__}")
        data["yaml_file"] = str(cfg)
        if scale:
            data["scale"] = scale
    scales = data.get("scales") or {}
    scale = data.get("scale") or (next(iter(scales)) if scales else None)
    if scales and scale not in scales:
        raise ValueError(f"model config has no scale '{scale}'; choose one of {sorted(scales)}")
    for key in ("backbone", "neck"):
        if key not in data:
            raise ValueError(f"model config is missing '{key}'; see trainer_engine/cfg/models/tiny-det.yaml")
    data["scale"] = scale
    return data


def scaled_arch(cfg: dict[str, Any]) -> tuple[list[int], list[int], int]:
    """Return backbone widths, backbone depths and neck depth after applying the config's scale."""
    depth_mul, width_mul, max_ch = cfg["scales"][cfg["scale"]] if cfg.get("scales") else (1.0, 1.0, 1 << 30)

    def width(c: int) -> int:
        # Round to a multiple of 8 so grouped kernels and channel splits stay aligned.
        return max(8, int(math.ceil(min(c, max_ch) * width_mul / 8) * 8))

    def depth(n: int) -> int:
        return max(1, round(n * depth_mul))

    widths = [width(c) for c in cfg["backbone"]["widths"]]
    depths = [depth(n) for n in cfg["backbone"]["depths"]]
    return widths, depths, depth(cfg["neck"]["depth"])
