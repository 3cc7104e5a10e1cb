"""Helpers shared by the engine: logging, devices, checkpoints, DDP, data loaders, files."""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("trainer_engine")

__all__ = ["LOGGER"]
