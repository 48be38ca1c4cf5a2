"""The escape corpus against pairproxy: every published technique is contained.

Under the default policy (read_only.toml) no entry writes a file, changes the notebook's
objects, reads a secret into a string or binds a raw object.  Under owner.toml, which
allows io, exec and mutation, the membrane itself still holds: no entry ends with a raw
module, frame, code object, real builtins or unwrapped notebook object in its namespace.
"""

from __future__ import annotations

import gc

import pytest

import pairproxy as pp
from pairproxy.policy import builtin_policy

from .corpus import ESCAPES, Escape
from .plain import run, run_isolated

# Attacker code is sloppy with files (open(...).write(...)) and old APIs; its warnings
# are not pairproxy's.
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _run(escape: Escape, policy_name: str):
    if escape.lasting:  # what it installs must not stay in this process
        return run_isolated(escape, f"{__name__}:_run_here", policy_name)
    return _run_here(escape, policy_name)


def _run_here(escape: Escape, policy_name: str):
    session = pp.Session(policy=builtin_policy(policy_name))
    result = run(
        escape, exec_fn=session.exec, wrap=lambda ns: ns, is_proxy=pp.is_proxy,
        agent_globals=session.globals_for,
    )
    # Attacker code leaves files open inside reference cycles (its functions and their
    # globals); finalise them here, where their warnings are expected, not in a later test.
    del session
    gc.collect()
    return result


@pytest.mark.parametrize("escape", ESCAPES, ids=lambda e: e.id)
def test_contained_under_the_default_policy(escape: Escape) -> None:
    result = _run(escape, "read_only")
    assert not result.effects, (
        f"{escape.id} ({escape.category}) escaped: {sorted(result.effects)} {result.leaks[:3]}"
    )


@pytest.mark.parametrize("escape", ESCAPES, ids=lambda e: e.id)
def test_no_raw_object_reaches_agent_code_even_when_everything_is_allowed(escape: Escape) -> None:
    result = _run(escape, "owner")
    assert "leak" not in result.effects, f"{escape.id} leaked: {result.leaks[:3]}"


def test_pandas_string_evaluation_sees_the_agents_frame_not_pairproxys() -> None:
    import pandas as pd

    session = pp.Session(policy=builtin_policy("owner"))
    ns = {"df": pd.DataFrame({"a": [1, 5, 9]}), "pd": pd}
    assert session.exec("limit = 4\nlen(df.query('a > @limit'))", ns) == 2
    for name in ("self", "st", "m", "membrane"):
        with pytest.raises(Exception, match="not defined|UndefinedVariable|name"):
            session.exec(f"pd.eval('{name}', engine='python')", ns)
