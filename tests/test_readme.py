"""The README's example runs as written and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _first_python_block() -> str:
    match = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README has no python example"
    return match.group(1)


def test_readme_example_output_is_what_it_says(monkeypatch) -> None:
    code = _first_python_block()
    expected = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    assert len(expected) >= 4
    monkeypatch.chdir(README.parent)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().splitlines() == expected
