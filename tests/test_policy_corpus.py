"""The shared corpus under policies/read_only.toml: read-only snippets behave exactly as
without pairproxy; mutating ones are refused at their first write, naming the rule, and
leave every notebook object as it was."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from corpus_harness import _setup, differences, equal, run_direct, run_proxied, snippets, split

import pairproxy as pp
from pairproxy.policy import builtin_policy, load_policy

READ_ONLY = load_policy(builtin_policy("read_only"))

#: Every corpus snippet, classified by hand: True when its agent code only reads the
#: notebook's objects (it may build and change values of its own).
READ_ONLY_SNIPPETS = {
    "pandas/01_groupby_sales": False,         # sales["revenue"] = ...
    "pandas/02_filter_query": True,           # query without @: allowed
    "pandas/03_merge_pivot": True,
    "pandas/04_timeseries": True,
    "pandas/05_strings_categories": False,    # writes into a copy of raw: still raw's data
    "pandas/06_inplace_mutation": False,      # .loc[...] = , inplace=True, del
    "pandas/07_apply_lambda": False,          # scores["best"] = ...
    "pandas/08_describe_iteration": True,
    "pandas/09_numpy_interop": False,         # frame["z"] = ...
    "pandas/10_errors": False,                # t["zero"] = 0
    "pandas/11_multiindex_melt": True,
    "pandas/12_assign_chain": True,
    "polars/01_groupby_agg": True,
    "polars/02_filter_select": True,
    "polars/03_lazy": True,
    "polars/04_join_concat": True,
    "polars/05_expressions_window": True,
    "polars/06_pandas_roundtrip": True,
    "polars/07_strings_dates": True,
    "polars/08_iteration_errors": True,
}

#: The op each mutating snippet is refused at (the start of the refusal message).
FIRST_REFUSAL = {
    "pandas/01_groupby_sales": "$.sales['revenue'] = ",
    "pandas/05_strings_categories": "$.raw.dropna(subset=['email']).copy()['email'] = ",
    "pandas/06_inplace_mutation": "$.inventory.loc[$.inventory.qty == 0, 'status'] = 'out'",
    "pandas/07_apply_lambda": "$.scores['best'] = ",
    "pandas/09_numpy_interop": "$.frame['z'] = ",
    "pandas/10_errors": "$.t['zero'] = 0",
}

SNIPPETS = {f"{p.parent.name}/{p.stem}": p for p in snippets()}


def test_every_snippet_is_classified() -> None:
    assert set(SNIPPETS) == set(READ_ONLY_SNIPPETS)
    assert set(FIRST_REFUSAL) == {k for k, ro in READ_ONLY_SNIPPETS.items() if not ro}


@pytest.mark.parametrize("name", [k for k, ro in READ_ONLY_SNIPPETS.items() if ro])
def test_read_only_snippet_runs_unchanged(name: str) -> None:
    path = SNIPPETS[name]
    direct = run_direct(path)
    proxied, session = run_proxied(path, policy=READ_ONLY)
    assert not differences(direct, proxied), "\n".join(differences(direct, proxied))
    decided = [r for r in session.records if r.decision != "allow"]
    assert not decided, decided


def _snapshot(ns: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in ns.items()
            if not k.startswith("__") and not isinstance(v, type(pp))}


@pytest.mark.parametrize("name", [k for k, ro in READ_ONLY_SNIPPETS.items() if not ro])
def test_mutating_snippet_is_refused_and_changes_nothing(name: str) -> None:
    setup, agent = split(SNIPPETS[name])
    ns = _setup(setup)
    before = _snapshot(ns)
    s = pp.Session(policy=READ_ONLY)
    with pytest.raises(pp.PolicyDenied) as e:
        s.exec(agent, ns)
    text = str(e.value)
    assert text.startswith(FIRST_REFUSAL[name]), text
    assert "(mutate; rule read_only.toml:" in text and "Instead: " in text
    assert e.value.rule.startswith("read_only.toml:")
    for k, v in before.items():
        assert equal(ns[k], v), f"{name}: {k} changed"
    # the refusal is in the log
    refused = [r for r in s.records if r.decision == "deny"]
    assert len(refused) == 1 and refused[0].rule == e.value.rule


IO_SNIPPETS = {
    "pandas writer": ("df.to_csv({out!r})", "io"),
    "pandas parquet": ("df.to_parquet({out!r})", "io"),
    "numpy save": ("np.save({out!r}, df.values)", "io"),
    "numpy tofile": ("df.values.tofile({out!r})", "io"),
    "polars writer": ("pl.from_pandas(df).write_csv({out!r})", "io"),
    "polars sink": ("pl.from_pandas(df).lazy().sink_csv({out!r})", "io"),
    "builtin open": ("open({out!r}, 'w').write('x')", "io"),
    "pandas reader": ("pd.read_csv({src!r})", "io"),
    "polars scan": ("pl.scan_csv({src!r}).collect()", "io"),
    "pathlib": ("import pathlib\npathlib.Path({out!r}).write_text('x')", "import"),
    "os": ("import os\nos.remove({src!r})", "import"),
    "subprocess": ("import subprocess", "import"),
    "eval": ("eval('1 + 1')", "exec"),
}


@pytest.mark.parametrize("code,effect", [
    *IO_SNIPPETS.values(),
    # a writer handed to real code is called back through its proxy, so it is judged
    pytest.param("df.pipe(pd.DataFrame.to_csv, {out!r})", "io", id="writer handed to real code"),
], ids=[*IO_SNIPPETS.keys(), "writer handed to real code"])
def test_io_is_refused_and_touches_nothing(tmp_path: Path, code: str, effect: str) -> None:
    import numpy as np
    import pandas as pd
    import polars as pl

    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    out = tmp_path / "out.bin"
    df = pd.DataFrame({"a": [1, 2]})
    s = pp.Session(policy=READ_ONLY)
    with pytest.raises(pp.PolicyDenied) as e:
        s.exec(code.format(out=str(out), src=str(src)), {"df": df, "pd": pd, "np": np, "pl": pl})
    assert f"({effect}; rule read_only.toml:" in str(e.value), str(e.value)
    assert not out.exists() and src.read_text() == "a\n1\n"
