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


def test_readme_policy_example_loads_and_behaves_as_described(tmp_path) -> None:
    import pandas as pd
    import pytest

    import pairproxy as pp
    from pairproxy.policy_check import check_file

    toml = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert toml, "README has no policy example"
    path = tmp_path / "team.toml"
    path.write_text(toml.group(1))
    assert check_file(path) == []  # what `pairproxy policy check` reports
    s = pp.Session(policy=path)
    ns = {"sales": pd.DataFrame({"units": [1, 2]}), "pd": pd}
    assert s.exec("int(sales.units.sum())", ns) == 3
    with pytest.raises(pp.PolicyDenied, match="approval #1"):  # exports ask the owner
        s.exec(f"sales.to_csv({str(tmp_path / 'x.csv')!r})", ns)
    with pytest.raises(pp.PolicyDenied, match="cannot be changed in place"):
        s.exec("sales['more'] = 1", ns)
    with pytest.raises(pp.PolicyDenied, match="not on the list"):
        s.exec("import os", ns)
