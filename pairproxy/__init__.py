"""pairproxy: a control plane between an AI agent and the live objects of a marimo notebook."""

from __future__ import annotations

from . import hotpath, ops  # hotpath: picks the compiled attribute path when built
from .errors import LogError, PolicyDenied, PolicyError, ResourceLimit
from .inspection import describe, get_attr, list_attrs
from .oplog import read_log
from .proxy import is_proxy, unwrap
from .session import Session

__version__ = "0.1.0"


def load_policy(path):  # type: ignore[no-untyped-def]
    """Load and check a policy file (TOML).  A bad file raises `PolicyError`."""
    from .policy import load_policy as _load

    return _load(path)


def mirror(session=None, **options):  # type: ignore[no-untyped-def]
    """The mirror panel, for a marimo notebook cell: what the agent does, live, with
    approvals and the policy editor (`pairproxy.marimo.mirror`).  Imported on first use,
    so importing pairproxy stays light."""
    from .marimo.mirror import mirror as _mirror

    return _mirror(session, **options)


__all__ = [
    "LogError", "PolicyDenied", "PolicyError", "ResourceLimit", "Session", "__version__",
    "describe", "get_attr", "hotpath", "is_proxy", "list_attrs", "load_policy", "mirror", "ops", "read_log",
    "unwrap",
]
