"""What agent code imports to look at values: ``from pairproxy.agent import describe``.

The same text the notebook owner sees (`pairproxy.describe`), recorded as one ``convert``
op on the value.  The module holds nothing but these functions: agent code gets the
module itself, so its namespace must not offer a way around the membrane.
"""

from __future__ import annotations

from typing import Any


def describe(x: Any) -> str:
    """Type, ref@version, shape, columns with dtypes and first rows of a value."""
    from . import inspection

    return _recorded(x, "describe", inspection.describe)


def list_attrs(x: Any) -> list[str]:
    """Public attribute names of a value."""
    from . import inspection

    return list(_recorded(x, "list_attrs", inspection.list_attrs))


def get_attr(x: Any, name: str) -> Any:
    """Attribute `name` of a value (an ordinary, mediated attribute op)."""
    from . import inspection

    return inspection.get_attr(x, name)


def _recorded(x: Any, what: str, fn: Any) -> Any:
    from .proxy import state_of

    st = state_of(x)
    if st is None:
        return fn(x)
    return st.m.convert(st, what, lambda _obj: fn(x), None)


__all__ = ["describe", "get_attr", "list_attrs"]
