"""describe / list_attrs / get_attr: one way for agent and human alike to look at a value.

The owner-side functions here never record; agent code reaches recorded versions of them
through ``pairproxy.agent`` (same text, one ``convert`` op each).
"""

from __future__ import annotations

import sys
from typing import Any

from .proxy import state_of

_ROWS = 5
_WIDTH = 100


def describe(x: Any) -> str:
    """A short, stable description: type, ref@version, shape, columns with dtypes, first rows.

    Examples:
        >>> import pandas as pd, pairproxy as pp
        >>> s = pp.Session()
        >>> print(pp.describe(s.wrap(pd.DataFrame({"a": [1, 2]}), name="df")).splitlines()[0])
        pandas.DataFrame  $.df  ref 1@0  2 rows × 1 column
    """
    st = state_of(x)
    obj = st.obj if st is not None else x
    head = _type_name(obj)
    if st is not None:
        head += f"  {st.m.path(st.ref)}  ref {st.ref}@{st.ver}"
        if st.rights != _all_rights():
            from .effects import rights_names

            head += f"  rights: {'/'.join(rights_names(st.rights))}"
    body = _body(obj)
    shape = body.pop(0) if body and body[0].startswith("@shape ") else None
    if shape:
        head += "  " + shape[len("@shape "):]
    return "\n".join([head, *body])


def _all_rights() -> int:
    from .effects import ALL_RIGHTS

    return ALL_RIGHTS


def _type_name(obj: Any) -> str:
    from .effects import key_of

    return key_of(obj).display


def _body(obj: Any) -> list[str]:
    pd = sys.modules.get("pandas")
    pl = sys.modules.get("polars")
    np = sys.modules.get("numpy")
    if pd is not None and isinstance(obj, pd.DataFrame):
        rows, cols = obj.shape
        lines = [f"@shape {rows} rows × {cols} column{'s' if cols != 1 else ''}", "columns:"]
        lines += [f"  {name!s:<24} {dtype}" for name, dtype in obj.dtypes.items()]
        lines += ["first rows:", _indent(obj.head(_ROWS).to_string(max_colwidth=30))]
        return lines
    if pd is not None and isinstance(obj, pd.Series):
        return [
            f"@shape {len(obj)} values, dtype {obj.dtype}, name {obj.name!r}",
            "first values:", _indent(obj.head(_ROWS).to_string()),
        ]
    if pl is not None and isinstance(obj, pl.DataFrame):
        rows, cols = obj.shape
        lines = [f"@shape {rows} rows × {cols} column{'s' if cols != 1 else ''}", "columns:"]
        lines += [f"  {name:<24} {dtype}" for name, dtype in obj.schema.items()]
        with pl.Config(tbl_rows=_ROWS, tbl_cols=12, fmt_str_lengths=30):
            lines += ["first rows:", _indent(str(obj.head(_ROWS)))]
        return lines
    if pl is not None and isinstance(obj, pl.Series):
        return [
            f"@shape {len(obj)} values, dtype {obj.dtype}, name {obj.name!r}",
            "first values:", _indent(str(obj.head(_ROWS).to_list())),
        ]
    if pl is not None and isinstance(obj, pl.LazyFrame):
        lines = ["@shape lazy (not collected)", "columns:"]
        lines += [f"  {name:<24} {dtype}" for name, dtype in obj.collect_schema().items()]
        return lines
    if np is not None and isinstance(obj, np.ndarray):
        flags = "" if obj.flags.writeable else ", read-only"
        return [f"@shape shape {obj.shape}, dtype {obj.dtype}{flags}",
                "first values:", _indent(repr(obj.ravel()[:_ROWS * 2]))]
    if isinstance(obj, (list, tuple, set, frozenset, dict)):
        text = repr(obj)
        return [f"@shape {len(obj)} items", _indent(text if len(text) <= _WIDTH * 3 else text[: _WIDTH * 3] + "…")]
    if isinstance(obj, type(sys)):
        public = [n for n in dir(obj) if not n.startswith("_")]
        return [f"@shape module, {len(public)} public names"]
    text = repr(obj)
    return [text if len(text) <= _WIDTH * 3 else text[: _WIDTH * 3] + "…"]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def list_attrs(x: Any) -> list[str]:
    """Public attribute names of the value (no leading underscore), sorted."""
    st = state_of(x)
    obj = st.obj if st is not None else x
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def get_attr(x: Any, name: str) -> Any:
    """Attribute `name` of the value.  Through a proxy it is an ordinary mediated
    attribute op (judged and recorded), so the answer matches what agent code sees."""
    return getattr(x, name)
