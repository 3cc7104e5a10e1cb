"""`python -m trainer_engine TASK MODE key=value ...`: the Ultralytics-style command line.

python -m trainer_engine classify train data=synthetic:classify epochs=3 imgsz=32
python -m trainer_engine detect val model=runs/detect/train/weights/best.pt data=synthetic:shapes
python -m trainer_engine classify predict model=best.pt source=images/
python -m trainer_engine help          # every key with its default and help
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any

from trainer_engine.cfg import MODES, TASKS, ConfigError, get_cfg, override_schema, parse_key_values

USAGE = (
    "usage: python -m trainer_engine TASK MODE [key=value ...]\n"
    f"  TASK: {' | '.join(TASKS)}\n"
    f"  MODE: {' | '.join(MODES)}\n"
    "  e.g. python -m trainer_engine classify train data=synthetic:classify epochs=3 imgsz=32\n"
    "  python -m trainer_engine help   lists every key"
)
# Task -> (trainer, validator, predictor) class names in its package.
CLASSES = {
    "classify": ("ClassificationTrainer", "ClassificationValidator", "ClassificationPredictor"),
    "detect": ("DetectionTrainer", "DetectionValidator", "DetectionPredictor"),
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad input, with a message, never a traceback)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "help":
        for key, entry in override_schema().items():
            print(f"{key:16} {json.dumps(entry['default']):>14}  {entry['help']}")
        return 0
    if len(args) < 2 or args[0] not in TASKS or args[1] not in MODES:
        print(f"error: expected TASK MODE first, got {' '.join(args[:2])!r}\n{USAGE}", file=sys.stderr)
        return 2
    task, mode = args[0], args[1]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        overrides = parse_key_values(args[2:])
        get_cfg(overrides={**overrides, "mode": mode}, task=task)  # every bad key reported before work starts
        result = run(task, mode, overrides)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2, default=str))
    return 0


def run(task: str, mode: str, overrides: dict[str, Any]) -> Any:
    """Train, validate or predict; return what to print."""
    package = importlib.import_module(TASKS[task].partition(":")[0])
    trainer_name, validator_name, predictor_name = CLASSES[task]
    if mode == "train":
        trainer = getattr(package, trainer_name)(overrides=overrides)
        trainer.train()
        return {
            "save_dir": trainer.save_dir,
            "best": trainer.best,
            "last": trainer.last,
            "metrics": trainer.metrics,
        }
    if mode == "val":
        validator = getattr(package, validator_name)(
            args=get_cfg(overrides={**overrides, "mode": "val"}, task=task)
        )
        return validator()
    predictor = getattr(package, predictor_name)(overrides=overrides)
    return [r.summary() for r in predictor()]
