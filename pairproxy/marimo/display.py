"""The scratchpad's output: proxies become the real values marimo's formatters expect.

marimo picks a formatter by ``type(obj).mro()``, so a proxy would render as
``<ObjectProxy at 0x...>``.  The last expression's value is therefore handed over as the
real object - after one ``convert`` op (``to="display"``) per proxy, judged by the policy
and recorded like any other read - so a proxied DataFrame renders as marimo's own table.
Proxies inside plain lists, tuples, sets and dicts are handed over the same way.
"""

from __future__ import annotations

from typing import Any

from ..proxy import PROXY_TYPES, state_of

__all__ = ["for_display"]

_MAX_DEPTH = 4
_MAX_ITEMS = 1000


def _identity(obj: Any) -> Any:
    return obj


def for_display(value: Any, depth: int = 0) -> Any:
    """The real value behind `value` for marimo's formatter.

    Raises `PolicyDenied` when the policy refuses to let a value be shown.

    Examples:
        >>> import pairproxy as pp
        >>> s = pp.Session()
        >>> real = [1, 2]
        >>> for_display(s.wrap(real, name="xs")) is real
        True
        >>> pp.ops.kind(s.records[-1]), s.records[-1].to
        ('convert', 'display')
    """
    t = type(value)
    if t in PROXY_TYPES:
        st = state_of(value)
        assert st is not None
        return st.m.convert(st, "display", _identity, None)
    if depth >= _MAX_DEPTH:
        return value
    if t is list or t is tuple or t is set or t is frozenset:
        if len(value) > _MAX_ITEMS:
            return value
        items = [for_display(x, depth + 1) for x in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else t(items)
    if t is dict:
        if len(value) > _MAX_ITEMS:
            return value
        pairs = [(k, for_display(v, depth + 1)) for k, v in value.items()]
        return value if all(v is value[k] for k, v in pairs) else dict(pairs)
    return value
