"""Run a transparency-corpus snippet directly and through a Session, and compare."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pairproxy as pp

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MARKER = "# --- agent ---"


@dataclass
class Outcome:
    stdout: str
    error: type[BaseException] | None
    error_text: str
    namespace: dict[str, Any]
    setup_names: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def snippets() -> list[Path]:
    return sorted(CORPUS.glob("*/*.py"))


def split(path: Path) -> tuple[str, str]:
    text = path.read_text()
    setup, _, agent = text.partition(MARKER)
    assert agent, f"{path}: no {MARKER!r} line"
    return setup, agent


def _setup(setup: str) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(compile(setup, "<setup>", "exec"), ns)
    ns.pop("__builtins__", None)
    return ns


def _run(path: Path, run: Any) -> Outcome:
    """Run agent code the way a notebook would: warnings shown (recorded), not raised."""
    setup, agent = split(path)
    ns = _setup(setup)
    names = set(ns)
    out = io.StringIO()
    err: BaseException | None = None
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run(agent, ns)
        except Exception as e:
            err = e
    for name in [n for n in ns if n.startswith("__")]:
        del ns[name]
    return Outcome(
        out.getvalue(), type(err) if err else None, str(err) if err else "", ns, names,
        [w.category.__name__ for w in caught],
    )


def run_direct(path: Path) -> Outcome:
    return _run(path, lambda agent, ns: exec(compile(agent, str(path), "exec"), ns))


def run_proxied(path: Path, policy: Any = None, session: pp.Session | None = None) -> tuple[Outcome, pp.Session]:
    s = session or pp.Session(policy=policy)
    return _run(path, s.exec), s


def equal(a: Any, b: Any) -> bool:
    """Value equality across the data libraries (proxies unwrapped first)."""
    a, b = pp.unwrap(a), pp.unwrap(b)
    if type(a) is not type(b):
        return False
    for attr in ("equals",):
        if hasattr(a, attr) and not isinstance(a, (str, bytes, type)):
            try:
                return bool(getattr(a, attr)(b))
            except TypeError:
                pass
    try:
        import numpy as np

        if isinstance(a, np.ndarray):
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    except ImportError:
        pass
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if hasattr(a, "collect") and hasattr(a, "explain"):  # a polars LazyFrame
        return bool(a.collect().equals(b.collect()))
    if isinstance(a, float) and a != a:
        return b != b
    if callable(a) and getattr(a, "__name__", "") == "<lambda>":
        return True  # agent-defined functions: identity differs by construction
    if type(a).__eq__ is object.__eq__ and a is not b:
        # no value equality (an RNG, say): compare the state it would pickle
        import pickle

        try:
            return pickle.dumps(a) == pickle.dumps(b)
        except Exception:
            return repr(a) == repr(b)
    try:
        return bool(a == b)
    except Exception:
        return False


def differences(direct: Outcome, proxied: Outcome) -> list[str]:
    """Everything that differs between the two runs, described for a failure message."""
    problems = []
    if direct.stdout != proxied.stdout:
        problems.append(f"stdout differs:\n--- direct\n{direct.stdout}\n--- proxied\n{proxied.stdout}")
    if direct.warnings != proxied.warnings:
        problems.append(f"warnings differ: direct {direct.warnings} vs proxied {proxied.warnings}")
    if direct.error is not proxied.error or direct.error_text != proxied.error_text:
        problems.append(
            f"exception differs: direct {direct.error} ({direct.error_text}) vs proxied "
            f"{proxied.error} ({proxied.error_text})"
        )
    dn = set(direct.namespace) - {"__builtins__"}
    pn = set(proxied.namespace) - {"__builtins__"}
    if dn != pn:
        problems.append(f"bindings differ: only direct {sorted(dn - pn)}, only proxied {sorted(pn - dn)}")
    for name in sorted(dn & pn):
        if name.startswith("__"):
            continue
        if not equal(direct.namespace[name], proxied.namespace[name]):
            kind = "setup object" if name in direct.setup_names else "new binding"
            problems.append(f"{kind} {name!r} differs: {direct.namespace[name]!r} vs {pp.unwrap(proxied.namespace[name])!r}")
    return problems
