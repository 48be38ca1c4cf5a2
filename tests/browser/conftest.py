"""Fixtures for the mirror-panel tests: one headless chromium per module.

Debian's ``chromium`` (``make browser``) is driven by Python playwright with
``executable_path``; playwright's own browser downloads are never used.  When
``/usr/bin/chromium`` is absent the browser tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, require_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium with a fresh profile, closed after the module."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="pairproxy-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1400, "height": 1100},
            )
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
