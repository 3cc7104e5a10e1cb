"""Run configuration: defaults, validation of overrides, and the schema the service shows users (no torch)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from trainer_engine.cfg.args import FIELDS, MODES, TASK_NAMES, TrainArgs
from trainer_engine.cfg.defaults import DEFAULT_CFG_PATH, default_values, help_texts
from trainer_engine.cfg.model_names import MODEL_CFG_DIR
from trainer_engine.cfg.validate import ConfigError, check_value, key_type, type_name, unknown_key_error

__all__ = [
    "DEFAULT_CFG_PATH",
    "MODES",
    "TASKS",
    "ConfigError",
    "TrainArgs",
    "get_cfg",
    "model_cfg_path",
    "override_schema",
    "parse_key_values",
    "parse_value",
]

# Task name -> "module:Class" of its trainer; strings so that importing this module needs no torch.
TASKS = {
    "classify": "trainer_engine.models.classify:ClassificationTrainer",
    "detect": "trainer_engine.models.detect:DetectionTrainer",
}
assert set(TASKS) == set(TASK_NAMES)  # one list of tasks, two spellings for two import needs


def get_cfg(
    cfg: str | Path | Mapping[str, Any] | TrainArgs | None = None,
    overrides: Mapping[str, Any] | None = None,
    task: str | None = None,
) -> TrainArgs:
    """Merge defaults, `cfg` (a yaml file, dict or TrainArgs) and `overrides` into validated TrainArgs."""
    values = default_values()
    values.update(_known(_as_dict(cfg), "config key"))
    values.update(_known(dict(overrides or {}), "override"))
    if task is not None:
        values["task"] = task
    checked, errors = {}, []
    for name in FIELDS:
        try:
            checked[name] = check_value(name, values[name])
        except ConfigError as e:
            errors.append(e)
    if errors:
        raise ConfigError(errors[0].key, errors[0].message, errors)
    return TrainArgs(**checked)


def _as_dict(cfg: str | Path | Mapping[str, Any] | TrainArgs | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, TrainArgs):
        return cfg.to_dict()
    if isinstance(cfg, str | Path):
        path = Path(cfg)
        if not path.is_file():
            raise ConfigError(
                "cfg", f"config file '{path}' does not exist; pass a .yaml file of key: value lines"
            )
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                "cfg", f"config file '{path}' must hold key: value lines, not {type(loaded).__name__}"
            )
        return loaded
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ConfigError("cfg", f"cfg must be a yaml path, a dict or TrainArgs, not {type(cfg).__name__}")


def _known(values: dict[str, Any], what: str) -> dict[str, Any]:
    errors = [unknown_key_error(str(k), FIELDS, what) for k in values if k not in FIELDS]
    if errors:
        raise ConfigError(errors[0].key, errors[0].message, errors)
    return values


def override_schema(task: str | None = None) -> dict[str, dict[str, Any]]:
    """Return key -> {"type", "default", "help", ...limits} for every key that applies to `task`."""
    if task is not None and task not in TASKS:
        raise unknown_key_error(task, TASKS, "task")
    defaults, helps = default_values(), help_texts()
    schema = {}
    for name, field in FIELDS.items():
        tasks = field.metadata.get("tasks")
        if task is not None and tasks is not None and task not in tasks:
            continue
        entry = {"type": type_name(key_type(name)), "default": defaults[name], "help": helps.get(name, "")}
        entry.update(_limits(field))
        schema[name] = entry
    return schema


def _limits(field: dataclasses.Field) -> dict[str, Any]:
    meta = field.metadata
    out: dict[str, Any] = {}
    if "choices" in meta:
        out["choices"] = list(meta["choices"])
    for op, name in (("ge", "minimum"), ("gt", "exclusive_minimum"), ("le", "maximum")):
        if op in meta:
            out[name] = meta[op]
    if "tasks" in meta:
        out["tasks"] = sorted(meta["tasks"])
    return out


def model_cfg_path(name: str | Path) -> Path | None:
    """Return the model config file `name` names (a path, or a file in cfg/models/), else None."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        return None
    if path.is_file():
        return path
    bundled = MODEL_CFG_DIR / path.name
    return bundled if bundled.is_file() else None


def parse_key_values(args: list[str]) -> dict[str, Any]:
    """Parse CLI `key=value` words into typed values (`epochs=3` -> 3, `device=0,1` -> "0,1")."""
    out: dict[str, Any] = {}
    for arg in args:
        key, sep, raw = arg.partition("=")
        if not sep or not key:
            raise ConfigError(key or arg, f"argument '{arg}' is not key=value; write it like epochs=3")
        out[key.strip()] = parse_value(raw.strip())
    return out


def parse_value(raw: str) -> Any:
    """Turn one CLI value into None, a bool, an int, a float, a list, a mapping or a string.

    `none`/`null`/empty is None and `true`/`false` a bool (any case); then an int, a float, a YAML
    `[...]` list or `{...}` mapping; anything else stays a string. Quote it to keep it one
    (`name='"none"'` in a shell).
    """
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    lowered = raw.lower()
    if lowered in ("none", "null", ""):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for number in (int, float):
        try:
            return number(raw)
        except ValueError:
            pass
    if raw[:1] in "[{":
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            message = f"cannot read {raw!r} as a YAML list or mapping: write it like [0,1] or {{a: 1}}"
            raise ConfigError(None, message) from e
    return raw
