"""Policy file format: typed tables decoded with msgspec, source positions, and
validation into located problems (``file:line: field — message``).

tomllib parses; msgspec decodes each table into a frozen Struct (unknown keys refused);
`locate` finds the line of every table and key so that every problem, including
msgspec's, names where it is.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from .effects import EFFECTS, KIND_EFFECTS
from .policy_match import compile_condition, glob_problem

Decision = Literal["allow", "ask", "deny"]
Effect = Literal["read", "compute", "mutate", "io", "exec", "import", "notebook", "unknown"]
Globs = str | list[str]
KINDS = tuple(KIND_EFFECTS)

# --- the file model (decoded with msgspec from what tomllib parsed) ---------------------


class PolicyMeta(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[policy]``: what this policy is and what happens when no rule matches."""

    name: str = ""
    description: str = ""
    default: Decision = "deny"
    reason: str = ""
    hint: str = ""


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[limits]``: budgets per agent execution (one scratchpad call)."""

    max_ops: Annotated[int, msgspec.Meta(ge=1)] | None = None
    wall_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None


class RootSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[[root]]``: the rights a notebook object starts with, by name and/or type."""

    rights: list[Effect]
    name: Globs | None = None
    type: Globs | None = None
    reason: str = ""


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[[rule]]``: a decision for the ops it matches."""

    decision: Decision
    root: Globs | None = None
    type: Globs | None = None
    op: Globs | None = None
    name: Globs | None = None
    effect: Effect | list[Effect] | None = None
    args: dict[str, Any] | None = None
    reason: str = ""
    hint: str = ""


class EffectSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[[effect]]``: classify calls of `name` on `type` (consulted before the built-in
    catalogue); `path` names the destination parameter of a writer (io only when given)."""

    type: Globs
    name: Globs
    effect: Effect
    path: str | None = None


_TABLES: dict[str, Any] = {
    "policy": PolicyMeta, "limits": Limits, "root": RootSpec, "rule": RuleSpec, "effect": EffectSpec,
}
_ARRAYS = ("root", "rule", "effect")


class Problem(NamedTuple):
    """One thing wrong with a policy file, located for the owner."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:"
        return f"{where} {self.field} — {self.message}" if self.field else f"{where} {self.message}"


# --- where things are in the source ------------------------------------------------------
#
# tomllib gives no positions, so a small scanner walks the (already valid) text and
# notes the line of every table header and key, keyed by a logical path such as
# ("rule", 3, "decision") with 0-based indices into arrays of tables.  It skips string
# contents, comments and multi-line arrays, so a line inside a value is never taken for
# a header.  Anything it cannot place falls back to the nearest enclosing table's line.

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_dotted(text: str) -> list[str] | None:
    """``a."b.c".d`` -> ["a", "b.c", "d"]; None if it is not a key."""
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        c = text[i]
        if c in "\"'":
            j = i + 1
            buf = []
            while j < n and text[j] != c:
                if c == '"' and text[j] == "\\" and j + 1 < n:
                    buf.append(text[j + 1])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            if j >= n:
                return None
            parts.append("".join(buf))
            i = j + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                return None
            parts.append(m.group())
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n:
            if text[i] != ".":
                return None
            i += 1
    return parts or None


def _key_end(line: str) -> int:
    """Index of the ``=`` ending a key at the start of `line`, or -1."""
    quote = ""
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                continue
        elif c in "\"'":
            quote = c
        elif c == "=":
            return i
        elif c == "#":
            return -1
    return -1


class _Scan:
    """Scanner state: the value text after a key may span lines (arrays, strings)."""

    def __init__(self) -> None:
        self.depth = 0
        self.ml = ""  # the open multi-line string delimiter, if any

    def value(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            if self.ml:
                j = text.find(self.ml, i)
                if j < 0:
                    return
                # a closing run may be longer than 3 (quotes just before the delimiter)
                k = j + 3
                while k < n and text[k] == self.ml[0]:
                    k += 1
                self.ml = ""
                i = k
                continue
            c = text[i]
            if c == "#":
                return
            if c in "\"'":
                if text.startswith(c * 3, i):
                    self.ml = c * 3
                    i += 3
                    continue
                j = i + 1
                while j < n and text[j] != c:
                    j += 2 if (c == '"' and text[j] == "\\") else 1
                i = j + 1
                continue
            if c in "[{":
                self.depth += 1
            elif c in "]}":
                self.depth = max(0, self.depth - 1)
            i += 1


def locate(text: str) -> dict[tuple[Any, ...], int]:
    """Line numbers (1-based) of table headers and keys, by logical path."""
    lines: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    scan = _Scan()
    for no, raw in enumerate(text.splitlines(), 1):
        if scan.ml or scan.depth:
            scan.value(raw)
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            array = line.startswith("[[")
            close = line.find("]]" if array else "]")
            names = _split_dotted(line[2 if array else 1 : close]) if close > 0 else None
            if names is None:
                continue
            path: list[Any] = []
            for depth, name in enumerate(names):
                path.append(name)
                last = depth == len(names) - 1
                if last and array:
                    k = tuple(path)
                    counts[k] = counts.get(k, -1) + 1
                    path.append(counts[k])
                elif tuple(path) in counts:
                    path.append(counts[tuple(path)])
            table = tuple(path)
            lines.setdefault(table, no)
            continue
        eq = _key_end(raw)
        if eq < 0:
            continue
        names = _split_dotted(raw[:eq])
        if names is None:
            continue
        for i in range(1, len(names) + 1):
            lines.setdefault((*table, *names[:i]), no)
        rest = raw[eq + 1 :]
        scan.value(rest)
        # keys of a one-line inline table: ``args = { inplace = true }``
        for m in re.finditer(r"[{,]\s*([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=", rest):
            lines.setdefault((*table, *names, m.group(1).strip("\"'")), no)
    return lines


def _line_of(lines: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    for i in range(len(path), 0, -1):
        no = lines.get(path[:i])
        if no is not None:
            return no
    return 1


def _field_text(path: tuple[Any, ...]) -> str:
    """("rule", 3, "decision") -> ``rule[4].decision`` (tables counted from 1)."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p + 1}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def as_list(v: Globs) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


# --- parsing and validation -------------------------------------------------------------

_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)")
_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")


def parse(path: Path, raw: bytes) -> tuple[dict[str, Any] | None, dict[tuple[Any, ...], int], list[Problem]]:
    """Decode and validate; returns (tables, lines, problems)."""
    file = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, {}, [Problem(file, line, "", f"not UTF-8 text: {e.reason} at byte {e.start}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_POS.search(str(e))
        line = int(m.group(1)) if m else 1
        return None, {}, [Problem(file, line, "", f"not valid TOML: {_TOML_POS.sub('', str(e)).strip()}")]
    except RecursionError:
        return None, {}, [Problem(file, 1, "", "not valid TOML: values nested too deeply")]
    try:
        lines = locate(text)
    except Exception:  # a scanner gap must not hide the real problem: fall back to line 1
        lines = {}
    problems: list[Problem] = []
    out: dict[str, Any] = {}

    def problem(p: tuple[Any, ...], msg: str) -> None:
        problems.append(Problem(file, _line_of(lines, p), _field_text(p), msg))

    for key in data:
        if key not in _TABLES:
            problem((key,), f"unknown table; a policy has {', '.join(f'[{t}]' if t not in _ARRAYS else f'[[{t}]]' for t in _TABLES)}")
    for key, cls in _TABLES.items():
        value = data.get(key)
        if key in _ARRAYS:
            if value is None:
                out[key] = []
                continue
            if not isinstance(value, list):
                problem((key,), f"write it as [[{key}]] tables")
                continue
            items = []
            for i, item in enumerate(value):
                items.append(_convert(cls, item, (key, i), problem))
            out[key] = items
        else:
            if value is None:
                out[key] = cls()
                continue
            out[key] = _convert(cls, value, (key,), problem)
    # meaning checks on every table that decoded, so one run lists every problem
    for i, r in enumerate(out.get("rule", [])):
        if r is not None:
            _check_rule(r, ("rule", i), problem)
    for i, r in enumerate(out.get("root", [])):
        for f in ("name", "type"):
            if r is not None:
                _check_globs(getattr(r, f), ("root", i, f), problem)
    for i, r in enumerate(out.get("effect", [])):
        if r is None:
            continue
        for f in ("type", "name"):
            _check_globs(getattr(r, f), ("effect", i, f), problem)
        if r.path is not None and not r.path.isidentifier():
            problem(("effect", i, "path"), f"{r.path!r} is not a parameter name")
    problems.sort(key=lambda p: p.line)
    return (None if problems else out), lines, problems


def _convert(cls: Any, value: Any, path: tuple[Any, ...], problem: Any) -> Any:
    """Decode one table into `cls`; report every bad key (msgspec alone stops at the first)."""
    if not isinstance(value, dict):
        problem(path, f"expected a table, got {type(value).__name__}")
        return None
    ok = True
    for k in value:
        if k not in cls.__struct_fields__:
            problem((*path, k), f"unknown key; {_TABLE_NAME[cls]} keys are {', '.join(cls.__struct_fields__)}")
            ok = False
    good: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        if f.name not in value:
            good[f.name] = None
            if f.required:
                problem(path, f"missing required key {f.name!r}")
                ok = False
            continue
        try:
            good[f.name] = msgspec.convert(value[f.name], f.type, strict=True)
        except msgspec.ValidationError as e:
            _report(e, (*path, f.name), problem)
            good[f.name] = None
            ok = False
    if ok:
        try:
            return msgspec.convert(value, cls, strict=True)
        except msgspec.ValidationError as e:  # no field failed alone: a table-level problem
            _report(e, path, problem)
    # The fields that did decode, so the meaning checks still look at them.
    return types.SimpleNamespace(**good)


def _report(e: msgspec.ValidationError, path: tuple[Any, ...], problem: Any) -> None:
    """msgspec's ``... - at `$.name[1]``` as a located problem."""
    msg = str(e)
    m = _MSGSPEC_PATH.search(msg)
    sub = _msgspec_path(m.group(1)) if m else ()
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    problem((*path, *sub), _friendlier(_MSGSPEC_PATH.sub("", msg), field))


_TABLE_NAME = {PolicyMeta: "[policy]", Limits: "[limits]", RootSpec: "[[root]]", RuleSpec: "[[rule]]", EffectSpec: "[[effect]]"}


def _msgspec_path(text: str) -> tuple[Any, ...]:
    """``.name[1]`` -> ("name",) (list positions are folded into their key's line)."""
    out: list[Any] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]|\[\"?([^\]\"]+)\"?\]", text):
        if m.group(1):
            out.append(m.group(1))
        elif m.group(3):
            out.append(m.group(3))
    return tuple(out)


_ALLOWED = {
    "decision": "allow, ask, deny", "default": "allow, ask, deny",
    "effect": ", ".join(EFFECTS), "rights": ", ".join(EFFECTS),
}


def _friendlier(text: str, field: Any) -> str:
    """msgspec's wording, in the owner's terms."""
    m = re.match(r"Invalid enum value (.+)", text)
    if m:
        allowed = _ALLOWED.get(str(field))
        return f"{m.group(1)} is not one of {allowed}" if allowed else f"invalid value {m.group(1)}"
    m = re.match(r"Expected `(.+)`, got `(.+)`", text)
    if m:
        want = m.group(1).replace("array", "list").replace("object", "table")
        return f"expected {want}, got {m.group(2).replace('array', 'list').replace('object', 'table')}"
    return text


def _check_globs(value: Globs | None, path: tuple[Any, ...], problem: Any) -> None:
    if value is None:
        return
    pats = [value] if isinstance(value, str) else value
    if not pats:
        problem(path, "an empty list matches nothing (leave the key out to match anything)")
    for p in pats:
        why = glob_problem(p)
        if why:
            problem(path, why)


def _check_rule(r: Any, path: tuple[Any, ...], problem: Any) -> None:
    for f in ("root", "type", "name"):
        _check_globs(getattr(r, f), (*path, f), problem)
    if r.op is not None:
        _check_globs(r.op, (*path, "op"), problem)
        for p in as_list(r.op):
            if not glob_problem(p) and not any(fnmatch.fnmatchcase(k, p) for k in KINDS):
                problem((*path, "op"), f"{p!r} names no op kind; kinds are {', '.join(KINDS)}")
    if isinstance(r.effect, list) and not r.effect:
        problem((*path, "effect"), "an empty list matches nothing (leave the key out to match anything)")
    if r.args is not None and not r.args:
        problem((*path, "args"), "an empty table: leave `args` out to match any arguments")
    for key, spec in (r.args or {}).items():
        for sub, msg in compile_condition(str(key), spec)[1]:
            problem((*path, "args", key, *((sub,) if sub else ())), msg)


