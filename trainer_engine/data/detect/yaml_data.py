"""Read a detection data YAML (`path`, `train`, `val`, `names`) into a checked dict of absolute paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer_engine.data.detect.synthetic import PREFIX as SYNTHETIC_PREFIX
from trainer_engine.data.detect.synthetic import synthetic_shapes
from trainer_engine.data.errors import DatasetError
from trainer_engine.utils.yaml_file import read_yaml

EXAMPLE = "path: my_set\ntrain: images/train\nval: images/val\nnames: {0: cat, 1: dog}"


def check_det_dataset(data: str | Path | dict[str, Any], single_cls: bool = False) -> dict[str, Any]:
    """Return the dataset dict with `train`/`val` as absolute paths, `names` as {int: str} and `nc`.

    `label_nc` is the class count label files are checked against; with `single_cls` the set is
    presented as one class (`nc=1`) while labels are still checked against the real names.
    """
    if isinstance(data, str) and data.startswith(SYNTHETIC_PREFIX):
        data = synthetic_shapes(data)
    if isinstance(data, dict):
        cfg, where = dict(data), "data dict"
        base = Path(cfg.get("path") or ".")
    else:
        cfg, where = _read_yaml(Path(data)), str(data)
        root = cfg.get("path")
        base = Path(root) if root else Path(data).parent
        if not base.is_absolute():
            # A relative `path` is taken from the YAML's folder, so the set can be moved as a whole.
            base = (Path(data).parent / base).resolve()
    missing = [k for k in ("train", "val", "names") if k not in cfg]
    if missing:
        raise DatasetError(
            f"{where}: missing key(s) {', '.join(missing)}; a detection data YAML looks like:\n{EXAMPLE}"
        )
    cfg["names"] = _names(cfg["names"], where)
    if "nc" in cfg:
        nc = _int(cfg["nc"])
        if nc is None:
            raise DatasetError(f"{where}: nc must be an integer (the number of classes) or left out")
        if nc != len(cfg["names"]):
            raise DatasetError(
                f"{where}: nc={nc} but names lists {len(cfg['names'])} classes; make them agree or drop nc"
            )
    cfg["nc"] = cfg["label_nc"] = len(cfg["names"])
    if single_cls:
        cfg["names"], cfg["nc"] = {0: "object"}, 1
    cfg["path"] = str(base)
    for split in ("train", "val", "test"):
        if cfg.get(split) is not None:
            cfg[split] = _split_paths(base, cfg[split], split, where)
    return cfg


def _read_yaml(path: Path) -> dict[str, Any]:
    """Load a YAML file that must hold a mapping."""
    if not path.is_file():
        raise DatasetError(f"data file '{path}' does not exist; pass a data YAML, a dict or synthetic:shapes")
    cfg = read_yaml(path, DatasetError)
    if not isinstance(cfg, dict):
        raise DatasetError(f"{path}: expected a mapping with train, val and names; got {type(cfg).__name__}")
    return cfg


def _names(names: Any, where: str) -> dict[int, str]:
    """Normalise class names given as a list or an {index: name} mapping."""
    if isinstance(names, list):
        out = dict(enumerate(str(n) for n in names))
    elif isinstance(names, dict):
        if any(_int(k) is None for k in names):
            raise DatasetError(f"{where}: names must map integer indices to names, like {{0: cat, 1: dog}}")
        out = {int(k): str(v) for k, v in names.items()}
    else:
        raise DatasetError(
            f"{where}: names must be a list or a mapping of index to name, not a {type(names).__name__}"
        )
    if not out:
        raise DatasetError(f"{where}: names is empty; list at least one class")
    if sorted(out) != list(range(len(out))):
        raise DatasetError(f"{where}: names indices must be the integers 0..{len(out) - 1} without gaps")
    return out


def _int(value: Any) -> int | None:
    """Return `value` as an int, or None; int() would quote the file's text in its error."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _split_paths(base: Path, value: Any, split: str, where: str) -> list[str]:
    """Resolve a split's image folder(s) or list file(s) against the dataset root and check they exist."""
    values = value if isinstance(value, list) else [value]
    out = []
    for item in values:
        path = Path(item)
        path = path if path.is_absolute() else base / path
        if not path.exists():
            raise DatasetError(f"{where}: {split} path '{path}' does not exist; fix '{split}:' or 'path:'")
        out.append(str(path))
    return out
