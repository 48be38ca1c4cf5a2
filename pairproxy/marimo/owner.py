"""The notebook owner's controls, for a notebook cell or marimo's scratchpad panel.

Owner code runs unmediated (cells the human runs, and the browser's scratchpad panel),
so it can answer the agent's approval requests::

    from pairproxy.marimo import owner
    owner.pending()          # approvals the agent is waiting for
    owner.grant(1)           # approval #1, for one retry of that exact op
    owner.grant(2, always=True)   # every later op of that kind on that member and root
    owner.deny(3)
    owner.set_policy("analyst")   # another policy from the agent's next op on
    print(owner.summary())   # the policy in force, in words

The mirror panel (``pairproxy.mirror()`` in a cell) offers the same controls as buttons,
plus the policy editor.  Agent code cannot import this module, nor the panel's
(`pairproxy.marimo.boundary`).
"""

from __future__ import annotations

from typing import Any

from . import live

__all__ = ["deny", "grant", "pending", "session", "set_policy", "summary"]


def session() -> Any:
    """The kernel's pairproxy Session (raises if no agent has run code yet)."""
    s = live.current_session()
    if s is None:
        raise RuntimeError(
            "pairproxy has no session in this kernel yet: it starts with the first agent "
            "scratchpad run (/api/kernel/execute, marimo pair execute)"
        )
    return s


def pending() -> list[dict[str, Any]]:
    """Approvals requested by ``ask`` rules and not answered yet, oldest first."""
    return session().pending()  # type: ignore[no-any-return]


def grant(ask: int, always: bool = False) -> str:
    """Approve request `ask`: the agent's retry of that exact op passes once, or (with
    ``always``) every later op of the same kind on the same member and root does."""
    s = session()
    s.grant(ask, once=not always)
    return f"approval #{ask} granted {'always' if always else 'once'}"


def deny(ask: int) -> str:
    """Refuse request `ask`; the agent's retry stays refused."""
    session().deny(ask)
    return f"approval #{ask} denied"


def set_policy(path: str) -> str:
    """Switch the agent's session to another policy file (or a shipped name) from its next
    op on; recorded in the log.  The fixed marimo rules (`pairproxy.marimo.boundary`) stay."""
    from ..policy import builtin_policy, load_policy
    from .boundary import KernelPolicy

    file = builtin_policy(path) if path in ("read_only", "analyst", "owner") else path
    policy = load_policy(file)
    session().set_policy(KernelPolicy(policy))
    return f"policy {policy.name} ({policy.hash}) in force"


def summary() -> str:
    """The policy in force, in words (what `pairproxy.marimo.capability.policy_summary`
    shows the agent)."""
    from ._summary import summarize

    return summarize()
