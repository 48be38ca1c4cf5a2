"""Session: wrap, exec, records; ties the proxies, the policy and the log together."""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import os
import sys
import types
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from . import ops as O
from .membrane import PASS, Membrane, _perf, _qual, _type_kind
from .proxy import PROXY_TYPES, _get

AGENT_FILE_PREFIX = "<agent"
AGENT_API = "pairproxy.agent"
_LAST = "__pp_last__"
_EXC = "__pp_exc__"
_exec_numbers = itertools.count(1)


class Session:
    """One agent's mediated view of a namespace: proxies, a policy, an op log.

    Args:
        policy: a `Policy`, a path to a policy file, or None to allow and record
            everything (audit-only mode).
        log: path of the op log to append to, or None to keep records in memory only.
        actor: who ops are attributed to in records.
        notebook: path of the notebook this session serves (recorded in the log header).

    Examples:
        >>> import pandas as pd, pairproxy as pp
        >>> s = pp.Session()
        >>> ns = {"df": pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})}
        >>> s.exec("df.groupby('k')['v'].sum().to_dict()", ns)
        {'a': 4, 'b': 2}
        >>> [pp.ops.kind(r) for r in s.records][:3]
        ['exec', 'root', 'attr']
    """

    def __init__(
        self, policy: Any = None, log: str | os.PathLike[str] | None = None, *,
        actor: str = "agent", notebook: str | None = None, fsync: bool = False,
        fingerprints: bool = True,
    ) -> None:
        if isinstance(policy, (str, os.PathLike)):
            from .policy import load_policy

            policy = load_policy(policy)
        if policy is not None and not hasattr(policy, "decide"):
            raise TypeError(f"policy must be a pairproxy.Policy, a path or None, not {type(policy).__name__}")
        self.id = uuid.uuid4().hex[:12]
        self.policy = policy
        self._m = Membrane(policy, actor)
        self._m.fingerprints = fingerprints
        self.notebook = notebook
        self._log = None
        if log is not None:
            from .oplog import LogWriter

            self._log = LogWriter(
                Path(log), session=self.id, policy_hash=self._m.phash, notebook=notebook, fsync=fsync
            )
        if policy is not None:
            self._apply_limits()

    # --- the public surface ---------------------------------------------------------

    @property
    def records(self) -> list[O.Op]:
        """Every op record of this session, in order."""
        return self._m.records

    def wrap(self, obj: Any, name: str) -> Any:
        """A proxy for `obj`, registered as the root `name` (immutable scalars come back as
        themselves).  The same object always gives the same proxy."""
        return self._m.root(obj, name)

    def exec(self, code: str, namespace: MutableMapping[str, Any]) -> Any:
        """Run agent `code` against `namespace`, like a notebook cell.

        Namespace values are wrapped on the way in; names the code binds or rebinds land
        back in `namespace` (as proxies where they derive from proxied values).  Returns
        the value of the last expression statement, or None.  Exceptions propagate with
        their own type and message; the traceback ends at the agent's own line.  Code
        with top-level ``await`` needs `aexec`.
        """
        run = self._begin(code)
        try:
            self._prepare(run, code, namespace, allow_await=False)
            exec(run.code, run.globals)
        except BaseException as e:
            # the agent's own exception, re-raised with a shorter traceback (not a new one)
            raise self._failed(run, e)  # noqa: B904
        return self._finish(run, namespace)

    async def aexec(self, code: str, namespace: MutableMapping[str, Any]) -> Any:
        """`exec` for code that may use top-level ``await`` (marimo code mode:
        ``async with cm.get_context() as ctx: ...``)."""
        run = self._begin(code)
        try:
            self._prepare(run, code, namespace, allow_await=True)
            result = eval(run.code, run.globals)
            if inspect.iscoroutine(result):
                await result
        except BaseException as e:
            raise self._failed(run, e)  # noqa: B904
        return self._finish(run, namespace)

    def _begin(self, code: str) -> _Run:
        m = self._m
        p0 = _perf()
        start = len(m.records)
        m.records.append(O.Exec(seq=start, t=m._now(p0), actor=m.actor, effect="exec",
                                policy=m.phash, code=code))
        m._exec_start = start
        return _Run(p0, start, f"{AGENT_FILE_PREFIX}:{next(_exec_numbers)}>")

    def _prepare(self, run: _Run, code: str, namespace: MutableMapping[str, Any], allow_await: bool) -> None:
        self._reload_if_changed()
        run.code = compile_agent(code, run.filename, allow_await)
        run.globals = self._globals(namespace)
        run.before = dict(run.globals)
        if self._m.wall_ns:
            self._m.deadline_ns = _perf() + self._m.wall_ns

    def _failed(self, run: _Run, e: BaseException) -> BaseException:
        """Record the failure; the exception to re-raise, its traceback trimmed to the
        agent's own frames."""
        self._end(run, e)
        return e.with_traceback(trim_traceback(e.__traceback__))

    def _finish(self, run: _Run, namespace: MutableMapping[str, Any]) -> Any:
        g = run.globals
        value = g.pop(_LAST, None)
        for name, v in g.items():
            if name in _HIDDEN_NAMES:
                continue
            if name not in run.before or run.before[name] is not v:
                namespace[name] = v
        for name in run.before:
            if name not in g and name in namespace and name not in _HIDDEN_NAMES:
                del namespace[name]
        self._end(run, None)
        return value

    def _end(self, run: _Run, error: BaseException | None) -> None:
        m = self._m
        m.deadline_ns = None
        m.records.append(O.ExecEnd(
            seq=len(m.records), t=m._now(_perf()), actor=m.actor, effect="exec",
            policy=m.phash, dur=_perf() - run.p0, ops=len(m.records) - run.start - 1,
            error=_qual(type(error)) if error is not None else None,
            message=_short(str(error)) if error is not None else None,
        ))
        self.flush()

    def flush(self) -> None:
        """Write buffered records to the log (done at the end of every `exec`)."""
        if self._log is not None:
            self._log.write(self._m.records)

    def close(self) -> None:
        self.flush()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- approvals ------------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        """Approvals requested by ``ask`` rules and not yet answered, oldest first."""
        return [
            {"id": n, "op": info["text"], "rule": info["rule"], "reason": info["reason"], "seq": info["seq"]}
            for n, info in self._m.asks.items() if info["state"] == "pending"
        ]

    def grant(self, ask: int, once: bool = True) -> None:
        """Approve request `ask`: the agent's retry of the same op passes (``once``), or
        every later op of the same kind on the same member and root does (``once=False``)."""
        self._check_ask(ask)
        self._m.grant(ask, once)
        self._owner_record(O.Grant, ask=ask, answer="once" if once else "always")

    def deny(self, ask: int) -> None:
        """Refuse request `ask`; the agent's retry stays refused."""
        self._check_ask(ask)
        self._m.asks[ask]["state"] = "denied"
        self._owner_record(O.Grant, ask=ask, answer="deny")

    def _check_ask(self, ask: int) -> None:
        if ask not in self._m.asks:
            known = ", ".join(f"#{n}" for n in self._m.asks) or "none"
            raise KeyError(f"no approval #{ask} was requested in this session (requested: {known})")

    def _owner_record(self, cls: Any, **fields: Any) -> None:
        m = self._m
        p0 = _perf()
        m.records.append(cls(seq=len(m.records), t=m._now(p0), actor="owner", policy=m.phash, **fields))
        self.flush()

    # --- policy ---------------------------------------------------------------------

    def set_policy(self, policy: Any) -> None:
        """Switch to another policy from the next op on (recorded)."""
        self.policy = policy
        self._m.set_policy(policy)
        self._apply_limits()
        self._owner_record(O.PolicyEvent, path=str(getattr(policy, "path", "") or ""),
                           hash=self._m.phash, message="policy set")

    def _apply_limits(self) -> None:
        limits = getattr(self.policy, "limits", None)
        self._m.max_ops = getattr(limits, "max_ops", None) if limits else None
        wall = getattr(limits, "wall_seconds", None) if limits else None
        self._m.wall_ns = int(wall * 1e9) if wall else 0

    def _reload_if_changed(self) -> None:
        reload = getattr(self.policy, "reload_if_changed", None)
        if reload is None:
            return
        changed, error = reload()
        if changed or error:
            m = self._m
            m.set_policy(self.policy)
            self._apply_limits()
            self._owner_record(
                O.PolicyEvent, path=str(self.policy.path), hash=m.phash,
                message=f"reload rejected, keeping {m.phash}: {error}" if error else "reloaded",
                error="PolicyError" if error else None,
            )

    # --- namespaces -----------------------------------------------------------------

    def _globals(self, namespace: MutableMapping[str, Any]) -> dict[str, Any]:
        m = self._m
        g: dict[str, Any] = {}
        for name, value in namespace.items():
            if name in _HIDDEN_NAMES:
                continue
            if name.startswith("__") and name.endswith("__"):
                g[name] = value if _type_kind(type(value)) == PASS else None
                continue
            g[name] = m.root(value, name)
        g["__builtins__"] = self._builtins()
        g[_EXC] = _exception_types
        g.setdefault("__name__", "__main__")
        return g

    def _builtins(self) -> dict[str, Any]:
        b = dict(builtins.__dict__)
        b["__import__"] = self._import
        return b

    def _import(self, name: str, globals: Any = None, locals: Any = None,
                fromlist: Any = (), level: int = 0) -> Any:
        if level:
            raise ImportError("relative imports are not available to agent code")
        names = tuple(fromlist or ())

        def do_import() -> Any:
            mod = __import__(name, None, None, names, 0)
            # `import a.b` binds `a`; `from a.b import c` needs `a.b` itself.
            return sys.modules[name] if names else mod

        if name == AGENT_API:
            # The inspection facade is handed over as itself (judged and recorded like
            # any import): its functions need the proxies, not the real objects.
            self._m.import_(name, names, do_import)
            return sys.modules[AGENT_API]
        return self._m.import_(name, names, do_import)

    def __repr__(self) -> str:
        return f"<pairproxy.Session {self.id} policy={self._m.phash or 'none'} records={len(self.records)}>"


_HIDDEN_NAMES = frozenset({"__builtins__", _LAST, _EXC})


class _Run:
    """One agent execution under way."""

    __slots__ = ("p0", "start", "filename", "code", "globals", "before")

    def __init__(self, p0: int, start: int, filename: str) -> None:
        self.p0 = p0
        self.start = start
        self.filename = filename
        self.code: Any = None
        self.globals: dict[str, Any] = {}
        self.before: dict[str, Any] = {}


def _exception_types(spec: Any) -> Any:
    """`except` needs real exception classes: unwrap proxied ones (``pl.exceptions.X``)."""
    if type(spec) in PROXY_TYPES:
        real = _get(spec).obj
        if isinstance(real, type) and issubclass(real, BaseException):
            return real
        if isinstance(real, tuple):
            return tuple(_exception_types(x) for x in real)
        return real
    if type(spec) is tuple:
        return tuple(_exception_types(x) for x in spec)
    return spec


def _short(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- compiling agent code ---------------------------------------------------------------


class _AgentTransform(ast.NodeTransformer):
    """Rewrites that keep agent code's meaning through proxies: ``except X`` gets a real
    exception class even when ``X`` is proxied (``except pl.exceptions.X``)."""

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        if node.type is not None:
            node.type = ast.copy_location(
                ast.Call(func=ast.Name(_EXC, ast.Load()), args=[node.type], keywords=[]), node.type
            )
        return node


def compile_agent(code: str, filename: str, allow_await: bool = False) -> types.CodeType:
    """Compile agent code like a notebook cell: the last expression's value is kept.
    With `allow_await`, top-level ``await`` is allowed (the code object is then run
    with ``eval`` and may return a coroutine)."""
    tree = ast.parse(code, filename, "exec")
    tree = _AgentTransform().visit(tree)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        tree.body[-1] = ast.copy_location(
            ast.Assign(targets=[ast.Name(_LAST, ast.Store())], value=last.value), last
        )
    ast.fix_missing_locations(tree)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if allow_await else 0
    return compile(tree, filename, "exec", flags=flags, dont_inherit=True)


def trim_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Keep only the agent's own frames: errors read as if raised by the agent's line.

    Library and pairproxy frames in between are dropped (the exception's type and
    message are untouched).  With no agent frame at all (a syntax error), keep it as is.
    """
    frames: list[types.TracebackType] = []
    cur = tb
    while cur is not None:
        if cur.tb_frame.f_code.co_filename.startswith(AGENT_FILE_PREFIX):
            frames.append(cur)
        cur = cur.tb_next
    if not frames:
        return tb
    for a, b in zip(frames, frames[1:], strict=False):
        a.tb_next = b
    frames[-1].tb_next = None
    return frames[0]

