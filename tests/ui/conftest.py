"""Fixtures of the dashboard tests: the system Chromium under Playwright, one per test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .browser import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Yield a headless Chromium (the system's); skip when there is none or Playwright is missing."""
    # CI sets TRAINFORGE_TEST_BROWSER=required: there a missing browser fails instead of skipping.
    required = os.environ.get("TRAINFORGE_TEST_BROWSER") == "required"
    try:
        from playwright import sync_api as playwright_api
    except ImportError:
        if required:
            raise
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    executable = chromium_path()
    if executable is None:
        message = "no system Chromium (apt-get install chromium, or set TRAINFORGE_CHROMIUM)"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
