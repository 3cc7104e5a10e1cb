"""What a worker trains on: its devices, declared by the operator or found by torch in a subprocess.

The Celery parent never imports torch: its prefork pool forks training supervisors, and CUDA does
not survive a fork. The probe runs in a throw-away interpreter that exits once it has printed.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

# "cpu", or "<count>x<name>:<memory GB>" such as "2xA100:80" (the memory of each device).
DECLARED_RE = re.compile(
    r"^(?P<count>[1-9][0-9]?)x(?P<name>[A-Za-z0-9 _.-]{1,100}):(?P<mem>[0-9]+(\.[0-9]+)?)$"
)
DECLARED_FORMAT = "'cpu' or '<count>x<name>:<memory GB>', e.g. '2xA100:80'"

PROBE = """
import json, torch
found = []
if torch.cuda.is_available():
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1)})
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Inventory:
    """A worker's devices: kind "cpu" (no GPU) or "cuda" with the count, name and per-device memory."""

    kind: str
    gpus: int
    name: str | None
    memory_gb: float | None
    source: str

    @classmethod
    def cpu(cls, source: str) -> Inventory:
        """Return the inventory of a worker without GPUs."""
        return cls("cpu", 0, None, None, source)


def parse_declared(text: str) -> Inventory:
    """Parse a declared inventory ("cpu" or "2xA100:80"); ValueError naming the format otherwise."""
    value = text.strip()
    if value.lower() == "cpu":
        return Inventory.cpu("declared")
    match = DECLARED_RE.match(value)
    if match is None:
        raise ValueError(f"cannot read worker devices {text!r}: use {DECLARED_FORMAT}")
    mem = float(match["mem"])
    if mem <= 0:
        raise ValueError(f"worker devices {text!r}: the memory must be more than 0 GB; use {DECLARED_FORMAT}")
    return Inventory("cuda", int(match["count"]), match["name"], mem, "declared")


def detect(timeout_s: float = 120.0) -> Inventory:
    """Ask torch, in a subprocess, which CUDA devices this process may use (CUDA_VISIBLE_DEVICES)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=timeout_s, check=True
        )
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        log.error("device probe failed (%s); this worker registers as CPU only", exc)
        return Inventory.cpu("detected")
    if not found:
        return Inventory.cpu("detected")
    names = sorted({d["name"] for d in found})
    return Inventory(
        "cuda", len(found), " / ".join(names), min(float(d["memory_gb"]) for d in found), "detected"
    )


def resolve(declared: str | None) -> Inventory:
    """Return the declared inventory when the operator gave one, else what torch finds."""
    return parse_declared(declared) if declared else detect()
