"""pairproxy: your scratchpad code runs through capability-checked proxies.

Notebook values (``df``, ...) are proxies: use them as usual (``isinstance(df,
pd.DataFrame)`` holds); every operation is judged by the owner's policy and logged.

Inspect values::

    from pairproxy.agent import describe, list_attrs, get_attr
    print(describe(df))          # type, ref@version, shape, dtypes, first rows

What the policy allows::

    from pairproxy.marimo.capability import policy_summary
    print(policy_summary())      # policy file, hash, default, every rule in words

Refusals raise ``PolicyDenied`` saying what was refused, by which rule, and what to do
instead; nothing was changed.  ``ask`` rules answer "approval #N was requested": the
owner approves in the notebook (``pairproxy.marimo.owner.grant(N)`` or the panel); then
retry the same code.  Code-mode edits (``ctx.create_cell`` ...) are judged the same way,
and a refusal inside ``async with`` discards the whole batch.
"""

from __future__ import annotations

__all__ = ["policy_summary"]


def policy_summary() -> str:
    """What the active pairproxy session allows: policy file, hash, default decision, each
    rule in plain words (highest precedence first), and the fixed marimo rules."""
    from ._summary import summarize

    return summarize()
