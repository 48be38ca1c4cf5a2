"""What agent code may touch of marimo and of pairproxy itself, whatever the policy says.

`KernelPolicy` wraps the owner's policy for a session that runs in a marimo kernel.  Before
the owner's rules are consulted it applies a few fixed rules, because these objects would
let agent code act on the notebook *outside* the membrane, where nothing is judged or
logged:

- **the code-mode context** (``cm.get_context()``): only its documented agent API is
  reachable (`CODE_MODE_API`); each mutator is judged as a notebook op by the gate
  (`pairproxy.marimo.gate`), so the owner's policy decides there.  ``ctx.globals``,
  ``ctx.graph``, ``ctx._kernel``, ``ctx.execute_command``, ``ctx.enqueue_command``,
  ``ctx.broadcast_raw_notification`` and the screenshot helpers are refused: they hand
  out the real kernel or run commands no op describes.  Private members of every
  code-mode object (``ctx.cells._ctx``, ``cell._cell``) are refused too.
- **marimo's runtime**: the kernel, its runtime context (``get_context().globals``, the
  thread-local kernel), graph, document, cell implementations, runners, streams and the
  entry-point registry are refused outright, and so is importing (or otherwise reaching)
  the modules that hold them (`INTERNAL_MODULES`).
- **pairproxy's own modules**: agent code may import only ``pairproxy.agent`` (inspection)
  and ``pairproxy.marimo.capability`` (what the session allows); the rest (sessions,
  the executor's hook switch, ``unwrap``) would be a way out of the membrane.

Each refusal is a `PolicyDenied` with rule ``pairproxy:marimo`` and a hint naming the
supported route.  Everything else goes to the owner's policy unchanged (or is allowed,
in audit-only mode).
"""

from __future__ import annotations

from typing import Any

from ..effects import ALL_RIGHTS, TypeKey
from ..membrane import ALLOW, Verdict

__all__ = ["CODE_MODE_API", "INTERNAL_MODULES", "INTERNAL_TYPES", "RULE", "KernelPolicy", "builtin_verdict"]

RULE = "pairproxy:marimo"

_CTX = "marimo._code_mode._context.AsyncCodeModeContext"
_PACKAGES = "marimo._code_mode._packages.Packages"
_CODE_MODE_PREFIX = "marimo._code_mode."
# marimo._code_mode swaps its module's class (to compute __doc__), so the module is keyed
# by that class rather than by its name.
_CM_MODULE_CLASS = "marimo._code_mode._CodeModeModule"

#: The code-mode context's members agent code may use (marimo's documented agent API).
CODE_MODE_API = frozenset({
    "create_cell", "edit_cell", "delete_cell", "move_cell", "run_cell", "set_ui_value",
    "packages", "install_packages", "cells", "find_cell_defining_object",
})
PACKAGES_API = frozenset({"add", "remove", "list"})

#: Types whose instances are marimo's runtime: no op on them is allowed to agent code.
INTERNAL_TYPES = frozenset({
    "marimo._runtime.runtime.Kernel",
    "marimo._runtime.context.types.RuntimeContext",
    "marimo._runtime.dataflow.graph.DirectedGraph",
    "marimo._runtime.runner.cell_runner.Runner",
    "marimo._messaging.notebook.document.NotebookDocument",
    "marimo._messaging.types.Stream",
    "marimo._ast.cell.CellImpl",
    "marimo._ast.app.InternalApp",
    "marimo._ast.cell_manager.CellManager",
    "marimo._entrypoints.registry.EntryPointRegistry",
})

#: Modules agent code may not import or reach (prefixes).  ``mo.output`` and ``mo.watch``
#: live under ``marimo._runtime`` and stay with the policy.
INTERNAL_MODULES = (
    "marimo._runtime", "marimo._server", "marimo._session", "marimo._messaging",
    "marimo._entrypoints", "marimo._ipc", "marimo._ast",
)
_PUBLIC_RUNTIME_MODULES = frozenset({"marimo._runtime.output", "marimo._runtime.watch"})

#: pairproxy modules agent code may import, and the links that lead to them.
AGENT_MODULES = frozenset({"pairproxy.agent", "pairproxy.marimo.capability"})
_PACKAGE_LINKS = {"pairproxy": frozenset({"agent", "marimo"}), "pairproxy.marimo": frozenset({"capability"})}

_API_HINT = (
    "use the code-mode API: ctx.create_cell / edit_cell / delete_cell / move_cell / run_cell, "
    "ctx.packages.add / remove, ctx.set_ui_value and ctx.cells to read cells; notebook "
    "values are already in your namespace by name (values made by ctx.run_cell appear "
    "there in your next call)"
)
_RUNTIME_HINT = (
    "work with the notebook's values by name and change the notebook through code mode "
    "(import marimo._code_mode as cm; async with cm.get_context() as ctx: ...)"
)
_PAIRPROXY_HINT = (
    "use pairproxy.agent (describe, list_attrs, get_attr) to inspect values and "
    "pairproxy.marimo.capability.policy_summary() to see what is allowed"
)

_WRITE_KINDS = frozenset({"setattr", "delattr", "setitem", "delitem"})


_ALLOW = Verdict("allow", RULE)


def _deny(reason: str, hint: str) -> Verdict:
    return Verdict("deny", RULE, reason, hint)


def _internal_module(name: str) -> bool:
    if name in _PUBLIC_RUNTIME_MODULES:
        return False
    return any(name == p or name.startswith(p + ".") for p in INTERNAL_MODULES)


def _import_verdict(module: str) -> Verdict | None:
    if module == "pairproxy" or module.startswith("pairproxy."):
        if module in AGENT_MODULES or module in _PACKAGE_LINKS:
            return _ALLOW
        return _deny(f"pairproxy's own module {module} is not available to agent code", _PAIRPROXY_HINT)
    if module == "marimo._code_mode":
        # Its mutators are judged one by one as notebook ops (cell.create, ...).
        return _ALLOW
    if _internal_module(module):
        return _deny(f"{module} is marimo's runtime; it would act on the notebook outside pairproxy",
                     _RUNTIME_HINT)
    return None


def _module_verdict(kind: str, module: str, member: str) -> Verdict | None:
    links = _PACKAGE_LINKS.get(module)
    if links is not None:
        if kind == "attr" and member in links:
            return _ALLOW
        return _deny(f"{module}.{member} is pairproxy's own internals", _PAIRPROXY_HINT)
    if module in AGENT_MODULES:
        if member.startswith("_") or kind in _WRITE_KINDS:
            return _deny(f"{module}.{member} is not part of the agent API", _PAIRPROXY_HINT)
        return _ALLOW
    if module.startswith("pairproxy"):
        return _deny(f"{module} is pairproxy's own internals", _PAIRPROXY_HINT)
    if module == "marimo" and kind == "attr" and member == "_code_mode":
        return _ALLOW
    if module == "marimo._code_mode":
        if member.startswith("_") or kind in _WRITE_KINDS:
            return _deny(f"marimo._code_mode.{member} is not part of code mode's agent API", _API_HINT)
        return _ALLOW
    if _internal_module(module):
        return _deny(f"{module} is marimo's runtime", _RUNTIME_HINT)
    return None


def builtin_verdict(kind: str, key: TypeKey, member: str) -> Verdict | None:
    """The fixed rules above for one op, or None to let the owner's policy decide.

    Pure: depends only on the op's kind, the target's type names and the member.
    """
    if kind == "import":
        return _import_verdict(member)
    if key.is_module:
        return _module_verdict(kind, key.display, member)
    names = key.names
    if _CM_MODULE_CLASS in names:
        return _module_verdict(kind, "marimo._code_mode", member)
    for n in names:
        if n in INTERNAL_TYPES:
            return _deny(f"{key.display} is part of marimo's runtime (the real kernel)", _RUNTIME_HINT)
        if n.startswith("pairproxy."):
            return _deny(f"{key.display} is pairproxy's own internals", _PAIRPROXY_HINT)
    if _CTX in names:
        if kind in ("with", "convert", "bool"):
            return _ALLOW
        if kind in ("attr", "call") and member in CODE_MODE_API:
            return _ALLOW
        what = f"ctx.{member}" if member else f"this use of the code-mode context ({kind})"
        return _deny(f"{what} is not available to agent code: it reaches the real kernel or "
                     "changes the notebook without a judged op", _API_HINT)
    if _PACKAGES in names:
        if kind in ("attr", "call") and member in PACKAGES_API:
            return _ALLOW
        if kind in ("convert", "bool"):
            return _ALLOW
        return _deny(f"ctx.packages.{member or kind} is not part of code mode's agent API",
                     "use ctx.packages.add(...), ctx.packages.remove(...) or ctx.packages.list()")
    if (member.startswith("_") or kind in _WRITE_KINDS) and any(n.startswith(_CODE_MODE_PREFIX) for n in names):
        return _deny(f"{key.display}.{member or kind} is private to marimo's code mode", _API_HINT)
    return None


class KernelPolicy:
    """The owner's policy (or None: allow and record everything) plus `builtin_verdict`.

    Looks like a `pairproxy.Policy` to the session and the membrane: ``decide``,
    ``root_rights``, ``hash``, ``path``, ``catalogue``, ``limits`` and
    ``reload_if_changed``; anything else is read from the wrapped policy.
    """

    def __init__(self, policy: Any = None) -> None:
        self.policy = policy
        self._fixed: dict[tuple[str, TypeKey, str], Verdict | None] = {}

    def decide(self, kind: str, key: TypeKey, member: str, effect: str, root: str,
               args: tuple[Any, ...] = (), kwargs: Any = None) -> Verdict:
        ck = (kind, key, member)
        try:
            v = self._fixed[ck]
        except KeyError:
            if len(self._fixed) > 1 << 16:
                self._fixed.clear()
            v = self._fixed[ck] = builtin_verdict(kind, key, member)
        if v is not None:
            return v
        if self.policy is None:
            return ALLOW
        return self.policy.decide(kind, key, member, effect, root, args, kwargs)  # type: ignore[no-any-return]

    def root_rights(self, name: str, obj: Any) -> tuple[int, str]:
        if self.policy is None:
            return ALL_RIGHTS, ""
        return self.policy.root_rights(name, obj)  # type: ignore[no-any-return]

    @property
    def hash(self) -> str:
        return str(getattr(self.policy, "hash", "") or "")

    @property
    def path(self) -> Any:
        return getattr(self.policy, "path", None)

    @property
    def catalogue(self) -> Any:
        return getattr(self.policy, "catalogue", None)

    @property
    def limits(self) -> Any:
        return getattr(self.policy, "limits", None)

    def reload_if_changed(self) -> tuple[bool, str | None]:
        reload = getattr(self.policy, "reload_if_changed", None)
        return reload() if reload is not None else (False, None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "policy":
            raise AttributeError(name)
        return getattr(self.policy, name)

    def __repr__(self) -> str:
        return f"<KernelPolicy {self.policy!r}>"
