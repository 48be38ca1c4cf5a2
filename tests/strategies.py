"""Hypothesis strategies shared by the test modules (policy rule sets, ops, malformed
policy text, op chains).  Append new strategies at the end, grouped by what they build."""

from __future__ import annotations

import functools
import json
import re
import typing
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from pairproxy.effects import (
    EFFECTS,
    KIND_EFFECTS,
    NAMELESS_KINDS,
    NOTEBOOK_KEY,
    TypeKey,
    class_key,
    module_key,
    type_key,
)

# --- policy files ------------------------------------------------------------------------

KINDS = tuple(KIND_EFFECTS)
DECISIONS = ("allow", "ask", "deny")

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_value(v: Any) -> str:
    """A TOML literal for the small set of values the strategies produce."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else json.dumps(k)


@dataclass
class PolicyText:
    """A generated policy: its TOML text, the rule tables as dicts, and the line of each
    ``[[rule]]`` header (what a verdict's ``rule`` must name)."""

    text: str
    rules: list[dict[str, Any]]
    default: str
    rule_lines: list[int]


def policy_text(rules: list[dict[str, Any]], default: str = "deny", roots: list[dict[str, Any]] | None = None,
                preamble: str = "") -> PolicyText:
    lines = [preamble.rstrip("\n")] if preamble else []
    lines += ["# generated", "[policy]", f"default = {toml_value(default)}", ""]
    for r in roots or []:
        lines.append("[[root]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in r.items()]
        lines.append("")
    rule_lines = []
    for r in rules:
        lines.append("[[rule]]")
        rule_lines.append(len(lines))
        lines += [f"{k} = {toml_value(v)}" for k, v in r.items()]
        lines.append("")
    return PolicyText("\n".join(lines) + "\n", rules, default, rule_lines)


ROOT_GLOBS = ["df", "d*", "*", "pd", "data", "?f"]
TYPE_GLOBS = [
    "pandas.DataFrame", "pandas.*", "builtins.object", "builtins.module", "notebook",
    "numpy.ndarray", "*Frame", "pandas", "os", "builtins.type", "pandas.core.generic.NDFrame",
]
OP_GLOBS = [*KINDS, "cell.*", "*item", "packages.*"]
NAME_GLOBS = ["to_csv", "to_*", "head", "q*", "query", "values", "x", "os", "pandas", "pandas.*", "c1", "*"]

ARG_CONDITIONS: list[dict[str, Any]] = [
    {"inplace": True},
    {"inplace": {"present": False}},
    {"expr": {"position": 0, "contains_none": ["@", "`"]}},
    {"expr": {"position": 0, "contains_any": "@"}},
    {"0": {"type": "builtins.str"}},
    {"0": {"one_of": [3, "a > 1"]}},
    {"how": ["left", "inner"]},
    {"expr": {"position": 0, "matches": "^a"}},
]


def _globs(pool: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(pool), st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))


@st.composite
def rule_tables(draw: Any) -> dict[str, Any]:
    """One ``[[rule]]`` table as a dict (always valid)."""
    r: dict[str, Any] = {}
    if draw(st.booleans()):
        r["root"] = draw(_globs(ROOT_GLOBS))
    if draw(st.booleans()):
        r["type"] = draw(_globs(TYPE_GLOBS))
    if draw(st.booleans()):
        r["op"] = draw(_globs(OP_GLOBS))
    if draw(st.booleans()):
        r["name"] = draw(_globs(NAME_GLOBS))
    if draw(st.booleans()):
        effs = draw(st.lists(st.sampled_from(EFFECTS), min_size=1, max_size=3, unique=True))
        r["effect"] = effs[0] if len(effs) == 1 and draw(st.booleans()) else effs
    if draw(st.integers(0, 3)) == 0:
        args: dict[str, Any] = {}
        for cond in draw(st.lists(st.sampled_from(ARG_CONDITIONS), min_size=1, max_size=2)):
            args.update(cond)
        r["args"] = args
    r["decision"] = draw(st.sampled_from(DECISIONS))
    return r


@st.composite
def policies(draw: Any, max_rules: int = 8) -> PolicyText:
    rules = draw(st.lists(rule_tables(), min_size=0, max_size=max_rules))
    return policy_text(rules, draw(st.sampled_from(DECISIONS)))


# --- ops as the membrane hands them to `Policy.decide` -----------------------------------


@functools.cache
def type_keys() -> list[TypeKey]:
    import os

    import numpy as np
    import pandas as pd

    return [
        type_key(pd.DataFrame), type_key(pd.Series), type_key(np.ndarray), type_key(list),
        module_key(pd), module_key(os), NOTEBOOK_KEY, class_key(pd.DataFrame),
        TypeKey(("polars.io", "builtins.module"), "polars.io", True),
    ]


@dataclass(frozen=True)
class Op:
    kind: str
    key: TypeKey
    member: str
    effect: str
    root: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] | None

    def decide_args(self) -> tuple[Any, ...]:
        return (self.kind, self.key, self.member, self.effect, self.root, self.args, self.kwargs)


@st.composite
def ops(draw: Any, realistic: bool = False) -> Op:
    """Any combination of kind, key, member, effect and root; `realistic` keeps to what
    the membrane produces: imports have a module key, the module's name and no root;
    notebook ops the notebook key and no root; data ops never the notebook key."""
    kind = draw(st.sampled_from(KINDS))
    effect = draw(st.sampled_from(sorted(KIND_EFFECTS[kind])))
    keys = type_keys()
    member = draw(st.sampled_from(["to_csv", "head", "query", "values", "x", "", "pandas", "os", "c1", "pandas.io"]))
    root = draw(st.sampled_from(["df", "data", "", "pd"]))
    if realistic:
        if kind == "import":
            key = draw(st.sampled_from([k for k in keys if k.is_module]))
            member, root = key.display, ""
        elif kind.startswith(("cell.", "packages.", "ui.")):
            key, root = NOTEBOOK_KEY, ""
        else:
            key = draw(st.sampled_from([k for k in keys if k is not NOTEBOOK_KEY]))
            if kind in NAMELESS_KINDS:
                member = ""
    else:
        key = draw(st.sampled_from(keys))
    args = draw(st.sampled_from([(), ("a > 1",), ("a > @b",), (3,), ("left",)]))
    kwargs = draw(st.sampled_from([None, {}, {"inplace": True}, {"inplace": False}, {"expr": "a"}, {"how": "left"}]))
    if realistic and kind != "call" and not kind.startswith(("cell.", "packages.", "ui.")):
        args, kwargs = (), None
    return Op(kind, key, member, effect, root, args, kwargs)


# --- malformed policy text ---------------------------------------------------------------

_TOML_CHARS = "[]{}=\"'#\n.,:tf0123-+_ abcxyz\\\t"


@st.composite
def malformed_policy_text(draw: Any, base: str) -> str:
    """`base` (a valid policy) damaged by a few random edits, or random TOML-ish text."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(alphabet=_TOML_CHARS, max_size=200))
    text = base
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["delete", "insert", "line", "value", "key", "dup"]))
        n = len(text)
        i = draw(st.integers(0, max(0, n - 1)))
        if how == "delete":
            j = draw(st.integers(i, min(n, i + 20)))
            text = text[:i] + text[j:]
        elif how == "insert":
            text = text[:i] + draw(st.text(alphabet=_TOML_CHARS, min_size=1, max_size=8)) + text[i:]
        else:
            lines = text.split("\n")
            k = draw(st.integers(0, max(0, len(lines) - 1)))
            if how == "dup":
                lines.insert(k, lines[k] if lines else "")
            elif how == "line":
                lines[k] = draw(st.sampled_from([
                    "[[rule]]", "[rule]", "[[nope]]", "decision = 'maybe'", "effect = ['fly']",
                    "op = 'teleport'", "name = 'a b'", "type = '['", "bogus = 1", "args = {}",
                    "args = { x = { sometimes = 1 } }", "default = 3", "rights = ['read', 'x']",
                    "[limits]", "max_ops = -1", "wall_seconds = 'soon'", "[policy]", "root = []",
                    "[[effect]]", "effect = 'io'", "x = 1979-05-27", "args = { 0 = { matches = '(' } }",
                    "a = [[[[[[[[[[1]]]]]]]]]]", "\"quoted key\" = 1", "name.sub = 1",
                ]))
            elif how == "value" and "=" in lines[k]:
                key = lines[k].split("=", 1)[0]
                lines[k] = key + "= " + draw(st.sampled_from(
                    ["1", "true", "'x'", "[]", "{}", "[1, 'a']", "1.5", "{ a = 1 }", "-3", "'*'", "''"]
                ))
            elif how == "key" and "=" in lines[k]:
                value = lines[k].split("=", 1)[1]
                lines[k] = draw(st.sampled_from(["decison", "naem", "efect", "op", "type", "args"])) + " =" + value
            text = "\n".join(lines)
    return text


# --- op chains for capability attenuation --------------------------------------------------

#: (label, function on a proxy) steps applied to frames, series and arrays; a step that
#: does not apply to the value at hand raises and the chain just moves on.
CHAIN_STEPS: list[tuple[str, Any]] = [
    ("values", lambda x: x.values),
    ("iloc[0:3]", lambda x: x.iloc[0:3]),
    ("loc", lambda x: x.loc),
    ("attrs", lambda x: x.attrs),
    ("T", lambda x: x.T),
    ("columns", lambda x: x.columns),
    ("index", lambda x: x.index),
    ("['a']", lambda x: x["a"]),
    ("[0:2]", lambda x: x[0:2]),
    ("copy()", lambda x: x.copy()),
    ("head(2)", lambda x: x.head(2)),
    ("to_numpy()", lambda x: x.to_numpy()),
    ("abs()", lambda x: x.abs()),
    ("round(1)", lambda x: x.round(1)),
    ("+ 1", lambda x: x + 1),
    ("-x", lambda x: -x),
    ("sum()", lambda x: x.sum()),
    ("ravel()", lambda x: x.ravel()),
    ("iter", lambda x: next(iter(x))),
    ("describe()", lambda x: x.describe()),
]


def chains(max_size: int = 8) -> st.SearchStrategy[list[tuple[str, Any]]]:
    return st.lists(st.sampled_from(CHAIN_STEPS), min_size=1, max_size=max_size)


def rights_sets() -> st.SearchStrategy[list[str]]:
    """Root rights that always include read (so the chain can start)."""
    return st.lists(st.sampled_from([e for e in EFFECTS if e != "read"]), unique=True, max_size=7).map(
        lambda rest: ["read", *rest]
    )


# --- op records and logs (test_oplog*.py, test_replay*.py) ---------------------------------

_LOG_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30
)  # any unicode but lone surrogates (not encodable as UTF-8)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)


def encoded_args(depth: int = 2) -> st.SearchStrategy[Any]:
    """Encoded arguments/results as records hold them (`pairproxy.ops.Arg`)."""
    from pairproxy import ops as O

    scalar = st.one_of(
        st.none(), st.booleans(), _INT64, _FLOAT, _LOG_TEXT,
        st.builds(O.Ref, st.integers(0, 10_000), st.integers(0, 50), st.sampled_from(["", "pandas.DataFrame"])),
        st.builds(O.Opaque, st.sampled_from(["function", "numpy", "str", "pkg.Thing"]), _LOG_TEXT),
    )
    if depth <= 0:
        return scalar
    inner = encoded_args(depth - 1)
    return st.one_of(
        scalar,
        st.builds(O.Seq, st.sampled_from(["list", "tuple", "set", "frozenset"]), st.lists(inner, max_size=3)),
        st.lists(st.tuples(inner, inner), max_size=3).map(
            lambda kv: O.Map([k for k, _ in kv], [v for _, v in kv])
        ),
        st.builds(O.Slice, inner, inner, inner),
    )


def fingerprints() -> st.SearchStrategy[Any]:
    from pairproxy import ops as O

    return st.builds(
        O.Fingerprint, st.sampled_from(["pandas.DataFrame", "numpy.ndarray", "builtins.list"]),
        st.one_of(st.none(), st.lists(st.integers(0, 10**9), max_size=3).map(tuple)),
        st.one_of(st.none(), _LOG_TEXT), st.one_of(st.none(), st.text("0123456789abcdef", min_size=16, max_size=16)),
        st.integers(0, 10**6),
    )


#: strategies for op-record fields by name (fields not listed keep their defaults)
def _field_strategies() -> dict[str, st.SearchStrategy[Any]]:
    arg = encoded_args()
    short = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", max_size=12)
    return {
        "t": st.floats(0, 2e9), "actor": st.sampled_from(["agent", "owner", "agent-2"]),
        "ref": st.integers(0, 10_000), "ver": st.integers(0, 100),
        "effect": st.sampled_from(["read", "compute", "mutate", "io", "exec", "import", "notebook", "unknown"]),
        "decision": st.sampled_from(["allow", "deny", "ask"]), "rule": st.sampled_from(["", "p.toml:12", "capability"]),
        "policy": st.sampled_from(["", "46e203971ecf"]), "out": arg, "dur": st.integers(0, 10**10),
        "error": st.one_of(st.none(), st.sampled_from(["KeyError", "pairproxy.errors.PolicyDenied"])),
        "fp": st.one_of(st.none(), fingerprints()),
        "name": short, "type": short, "key": arg, "value": arg, "other": arg, "item": arg, "spec": arg,
        "arg": arg, "args": st.lists(arg, max_size=3).map(tuple),
        "kwargs": st.dictionaries(short, arg, max_size=3), "to": short, "module": short,
        "names": st.lists(short, max_size=3).map(tuple), "code": _LOG_TEXT, "ops": st.integers(0, 1000),
        "message": st.one_of(st.none(), _LOG_TEXT), "cell": short, "diff": _LOG_TEXT,
        "before": st.one_of(st.none(), short), "after": st.one_of(st.none(), short),
        "specs": st.lists(short, max_size=3).map(tuple), "element": short, "path": short,
        "hash": short, "ask": st.integers(0, 100), "answer": st.sampled_from(["once", "always", "deny"]),
    }


@st.composite
def op_record(draw: Any, seq: int = 0) -> Any:
    """One op record of any kind, with random field values."""
    import msgspec

    from pairproxy import ops as O

    cls = draw(st.sampled_from(sorted(O.KINDS.values(), key=lambda c: c.__name__)))
    strategies = _field_strategies()
    fields = {}
    for f in msgspec.structs.fields(cls):
        if f.name in ("seq", "prev"):
            continue
        if f.name in strategies and (f.required or draw(st.integers(0, 2))):
            value = draw(strategies[f.name])
            if value is None and type(None) not in typing.get_args(f.type):
                continue
            fields[f.name] = value
    return cls(seq=seq, **fields)


@st.composite
def op_records(draw: Any, min_size: int = 0, max_size: int = 20) -> list[Any]:
    """A session's records: random kinds, ``seq`` numbered from 0."""
    n = draw(st.integers(min_size, max_size))
    return [draw(op_record(seq=i)) for i in range(n)]


# --- agent programs (replay) -----------------------------------------------------------------

#: Statements over the roots built by `replay_roots()`; ``{n}`` is a small int, ``{i}`` a
#: fresh name suffix.  Each is deterministic, so a replay must reproduce every op.
AGENT_STATEMENTS: list[str] = [
    "x{i} = df.groupby('k')['v'].sum()",
    "x{i} = df[df['v'] > {n}]",
    "x{i} = df['v'] * {n} + df['w']",
    "df['c{n}'] = df['v'] + {n}",
    "x{i} = df.sort_values('v').head({n})",
    "x{i} = df.apply(lambda r: r['v'] * 2, axis=1)",
    "x{i} = df.assign(z=df['v'] - {n}).describe()",
    "x{i} = len(df), df.shape",
    "x{i} = list(df.columns)",
    "x{i} = df.iloc[0:{n}].to_dict()",
    "x{i} = pdf.filter(pdf['v'] > {n}).select(['k', 'v'])",
    "x{i} = pdf.group_by('k', maintain_order=True).agg(pl.col('v').sum())",
    "x{i} = pdf.with_columns((pl.col('v') * {n}).alias('v{n}'))",
    "x{i} = arr.reshape(-1, 2).sum(axis=0)",
    "x{i} = np.sort(arr)[::-1][:{n}]",
    "arr[{n} % len(arr)] = {n}",
    "lst.append({n})",
    "x{i} = sorted(lst)",
    "d['k{n}'] = [{n}, 'v']",
    "x{i} = dict(d)",
    "x{i} = df['nope{n}']",
    "x{i} = {n} in lst",
]


def replay_roots() -> dict[str, Any]:
    """Fresh roots for `agent_programs` (the same contents every call)."""
    import numpy as np
    import pandas as pd
    import polars as pl

    df = pd.DataFrame({"k": list("abcabcab"), "v": [3, 1, 4, 1, 5, 9, 2, 6], "w": [0.5] * 8})
    return {"df": df, "pdf": pl.from_pandas(df), "arr": np.arange(12), "lst": [3, 1, 2],
            "d": {"a": 1}, "pd": pd, "pl": pl, "np": np}


@st.composite
def agent_programs(draw: Any, max_execs: int = 5) -> list[str]:
    """A few executions of agent code, each one to three statements."""
    execs = []
    i = 0
    for _ in range(draw(st.integers(1, max_execs))):
        lines = []
        for _ in range(draw(st.integers(1, 3))):
            stmt = draw(st.sampled_from(AGENT_STATEMENTS))
            lines.append(stmt.format(i=i, n=draw(st.integers(1, 4))))
            i += 1
        execs.append("\n".join(lines))
    return execs
