"""Chromium from the system's packages, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Root in a container needs --no-sandbox; without the networking flags Chromium keeps calling home
# (updates, sync, QUIC probes) and floods the log with refused connections on an offline machine.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Return the system Chromium (TRAINFORGE_CHROMIUM, else /usr/bin/chromium on PATH), or None."""
    configured = os.environ.get("TRAINFORGE_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")
