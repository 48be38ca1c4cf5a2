"""Helpers for the mirror-panel tests: chromium, screenshots, a marimo server with pairproxy."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "mirror_notebook.py"
CHROMIUM = Path(os.environ.get("PAIRPROXY_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: marimo resolves exactly the installed pairproxy executor (see tests/marimo/live_support.py)
REAL_EXECUTOR = {"MARIMO_CELL_EXECUTOR_ALLOWLIST": "pairproxy"}

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (run `make browser`: Debian's chromium drives the "
                    "mirror-panel tests; playwright's browser downloads are not used)")


def screenshot(target: Any, name: str) -> Path:
    """Save a screenshot of a page or an element as artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


# one helper for both suites: tests/marimo/live_support.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "marimo"))
from live_support import write_policy as write_policy  # noqa: E402 - re-exported for the tests
