"""Values that name nothing on disk: the bundled models, torchvision classifiers and synthetic sets."""

from __future__ import annotations

import difflib
import re

from trainer_engine.cfg.model_names import TORCHVISION_CLASSIFIERS, bundled_configs
from trainforge.errors import Invalid
from trainforge.references.context import Context

SYNTHETIC = "synthetic"
# Each task's built-in generated data set (the engine parses and bounds its options).
SYNTHETIC_SETS = {"classify": "synthetic:classify", "detect": "synthetic:shapes"}
# A name holds no folder part and is no checkpoint file: it cannot point anywhere on disk.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_name(value: str) -> bool:
    """Return whether `value` is a bare model name rather than a path."""
    return bool(_NAME.match(value)) and not value.endswith((".pt", ".pth"))


def model_name(ctx: Context, value: str) -> str:
    """Return the bundled config file or torchvision name `value` names; refuse an unknown name."""
    configs = bundled_configs()
    if value in configs:
        # The file name: the engine finds it among its bundled configs.
        return configs[value]
    torchvision = ctx.task in ("classify", None)
    if torchvision and value in TORCHVISION_CLASSIFIERS:
        return value
    known = sorted(n for n in configs if not n.endswith(".yaml"))
    choices = known + (sorted(TORCHVISION_CLASSIFIERS) if torchvision else [])
    close = difflib.get_close_matches(value, choices, n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    classifiers = ", a torchvision classifier (resnet18, mobilenet_v3_small, ...)" if torchvision else ""
    raise Invalid(
        f"override 'model': unknown model {value!r}; {hint}use a bundled model ({', '.join(known)})"
        f"{classifiers} or a checkpoint such as job:<id>/best.pt",
        key="model",
    )


def synthetic(ctx: Context, value: str) -> str:
    """Return `value` when it names the synthetic set of the job's task."""
    name = value.partition("?")[0]
    task = next((t for t, prefix in SYNTHETIC_SETS.items() if prefix == name), None)
    sets = " or ".join(f"{prefix} ({t})" for t, prefix in SYNTHETIC_SETS.items())
    if task is None:
        raise Invalid(f"override 'data': unknown synthetic set {name!r}; use {sets}", key="data")
    if ctx.task is not None and ctx.task != task:
        raise Invalid(
            f"override 'data': {name} is the {task} task's synthetic set; "
            f"a {ctx.task} job uses {SYNTHETIC_SETS[ctx.task]}",
            key="data",
        )
    return value


def usage(key: str) -> list[str]:
    """Return the built-in ways to give `key`, for error messages."""
    if key == "data":
        return ["a built-in set (synthetic:classify, synthetic:shapes)"]
    if key == "model":
        return ["a bundled model (tiny-cls, tiny-det-n) or a torchvision classifier (resnet18, ...)"]
    return []
