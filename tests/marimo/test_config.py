"""Per-notebook configuration: precedence flags > env > pairproxy.toml beside the notebook
> [tool.pairproxy] in the nearest pyproject.toml > defaults; and ``pairproxy serve``'s use
of it (no server started here)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from pairproxy.cli import main
from pairproxy.commands import serve
from pairproxy.marimo import config as C
from pairproxy.policy import builtin_policy


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp/pyproject.toml ([tool.pairproxy]) and tmp/nbs/sales.py."""
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "sales.py").write_text("import marimo\napp = marimo.App()\n")
    return tmp_path / "nbs" / "sales.py"


def test_defaults(project: Path) -> None:
    c = C.resolve(project, env={})
    assert c.policy == builtin_policy("read_only")
    assert c.log == project.parent / "__marimo__" / "pairproxy" / "sales.ops.jsonl"
    assert c.fsync is False and c.notebook == project
    assert c.sources == {"policy": "default", "log": "default", "fsync": "default"}


def test_each_layer_and_precedence(project: Path) -> None:
    root = project.parent.parent
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.pairproxy]\npolicy = "analyst"\nlog = "logs/py.jsonl"\nfsync = true\n'
    )
    c = C.resolve(project, env={})
    assert c.policy == builtin_policy("analyst")
    assert c.log == root / "logs" / "py.jsonl"  # relative to the pyproject
    assert c.fsync is True and c.sources["log"] == f"{root / 'pyproject.toml'} [tool.pairproxy] (log)"

    (project.parent / "pairproxy.toml").write_text('policy = "owner"\n')  # beside: wins for policy
    c = C.resolve(project, env={})
    assert c.policy == builtin_policy("owner") and c.log == root / "logs" / "py.jsonl"

    env = {"PAIRPROXY_POLICY": "read_only", "PAIRPROXY_LOG": "memory"}  # env wins over files
    c = C.resolve(project, env=env)
    assert c.policy == builtin_policy("read_only") and c.log is None
    assert c.sources["policy"] == "env PAIRPROXY_POLICY"

    c = C.resolve(project, env=env, flags={"policy": "none", "log": str(root / "f.jsonl")})  # flags win
    assert c.policy is None and c.log == root / "f.jsonl" and c.sources["policy"] == "--policy"


def test_nearest_pyproject_with_a_pairproxy_table(project: Path) -> None:
    root = project.parent.parent
    (root / "pyproject.toml").write_text('[tool.pairproxy]\npolicy = "analyst"\n')
    (project.parent / "pyproject.toml").write_text('[project]\nname = "inner"\n')  # no table: skipped
    assert C.resolve(project, env={}).policy == builtin_policy("analyst")


def test_notebook_from_env(project: Path) -> None:
    c = C.resolve(None, env={"PAIRPROXY_NOTEBOOK": str(project)})
    assert c.notebook == project and c.log is not None and c.log.name == "sales.ops.jsonl"


@pytest.mark.parametrize(("text", "message"), [
    ("policy = [1]\n", "policy must be a non-empty string"),
    ("polcy = 'x'\n", "unknown key(s) polcy"),
    ("fsync = 'often'\n", "fsync must be true or false"),
    ("policy = \n", "not valid TOML"),
])
def test_bad_files_name_the_file_and_key(project: Path, text: str, message: str) -> None:
    (project.parent / "pairproxy.toml").write_text(text)
    with pytest.raises(C.ConfigError) as info:
        C.resolve(project, env={})
    assert message in str(info.value) and "pairproxy.toml" in str(info.value)


def test_unknown_shipped_policy_name_is_a_path(project: Path) -> None:
    c = C.resolve(project, env={"PAIRPROXY_POLICY": "strict"})
    assert c.policy == Path.cwd() / "strict"  # a relative path; loading it reports the problem


# --- pairproxy serve --------------------------------------------------------------------


def _args(argv: list[str]) -> argparse.Namespace:
    from pairproxy.cli import build_parser

    return build_parser().parse_args(["serve", *argv])


def test_serve_flags_before_or_after_the_notebook_and_marimo_options(project: Path) -> None:
    flags, rest = serve.parse(_args(["--log", "a.jsonl", str(project), "--port", "2718", "--policy",
                                     "analyst", "--headless"]))
    assert flags["policy"] == "analyst" and flags["log"] == "a.jsonl"
    assert rest == ["--port", "2718", "--headless"]


def test_serve_exports_the_resolved_configuration(project: Path) -> None:
    (project.parent / "pairproxy.toml").write_text('policy = "owner"\nlog = "x.jsonl"\n')
    cfg, env = serve.build(str(project), {"policy": "analyst"}, {"PAIRPROXY_POLICY": "read_only"})
    assert env["PAIRPROXY_POLICY"] == str(builtin_policy("analyst"))  # flag > env > file
    assert env["PAIRPROXY_LOG"] == str(project.parent / "x.jsonl")  # file, relative to it
    assert env["PAIRPROXY_NOTEBOOK"] == str(project) and env["PAIRPROXY_FSYNC"] == "0"


def test_serve_check_and_refusals(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARIMO_CELL_EXECUTOR_ALLOWLIST", raising=False)
    monkeypatch.delenv("MARIMO_CELL_EXECUTOR_DENYLIST", raising=False)
    for var in ("PAIRPROXY_POLICY", "PAIRPROXY_LOG", "PAIRPROXY_FSYNC"):
        monkeypatch.delenv(var, raising=False)
    assert main(["serve", str(project), "--check"]) == 0
    out = capsys.readouterr().out
    assert "read_only.toml  (default)" in out and "executor: pairproxy" in out

    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]]\ndecision = 'perhaps'\n")
    assert main(["serve", str(project), "--policy", str(bad)]) == 1
    assert f"{bad}:2" in capsys.readouterr().err

    monkeypatch.setenv("MARIMO_CELL_EXECUTOR_DENYLIST", "pairproxy")
    assert main(["serve", str(project)]) == 1
    assert "unmediated" in capsys.readouterr().err

    assert main(["serve", str(tmp_path / "missing.py")]) == 2


def test_serve_execs_marimo_with_the_environment(project: Path, tmp_path: Path) -> None:
    """serve replaces itself with `python -m marimo edit`: seen here through marimo's own
    --help, which exits at once."""
    p = subprocess.run([sys.executable, "-m", "pairproxy.cli", "serve", str(project), "--help-marimo"],
                       capture_output=True, text=True, timeout=60)
    # an option marimo does not know reaches marimo, which reports it
    assert p.returncode != 0 and "--help-marimo" in p.stderr
    assert "pairproxy: policy:" in p.stderr
