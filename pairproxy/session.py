"""Session: wrap, exec, records; ties the proxies, the policy and the log together."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import sys
import types
import uuid
import weakref
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from . import ops as O
from .errors import PolicyDenied
from .guard import (
    AGENT_FILE_PREFIX,
    CLASS,
    EXC,
    GETATTR,
    LAST,
    LIMITS,
    AgentBuiltins,
    WallTimeExceeded,
    Watchdog,
    compile_agent,
    exception_types,
    guarded_getattr,
    proxied_class,
    reraise_limits,
)
from .membrane import PASS, Membrane, _perf, _qual, _type_kind

log = logging.getLogger("pairproxy")

AGENT_API = "pairproxy.agent"
_exec_numbers = itertools.count(1)


class Session:
    """One agent's mediated view of a namespace: proxies, a policy, an op log.

    Args:
        policy: a `Policy`, a path to a policy file, or None to allow and record
            everything (audit-only mode).
        log: path of the op log to append to, or None to keep records in memory only.
        actor: who ops are attributed to in records.
        notebook: path of the notebook this session serves (recorded in the log header).
        mode: recorded in the log header: ``"scratchpad"`` when every execution starts from
            the notebook's globals and its bindings are dropped afterwards (marimo).

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
        fingerprints: bool = True, mode: str = "",
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
            from .oplog import LogWriter, finalize

            self._log = LogWriter(
                Path(log), session=self.id, policy_hash=self._m.phash, notebook=notebook, fsync=fsync,
                policy_path=str(getattr(policy, "path", "") or "") or None, mode=mode,
            )
            # Records not yet flushed are written (and the log sealed) at interpreter exit
            # or when the session is collected without close().
            weakref.finalize(self, finalize, self._m, self._log)
        self._builtins: dict[str, Any] | None = None
        self._ns_globals: dict[int, tuple[MutableMapping[str, Any], dict[str, Any]]] = {}
        self._current_globals: dict[str, Any] | None = None
        #: callbacks run after every flush (`subscribe`)
        self._listeners: list[Callable[[Session], None]] = []
        #: seq of a refused op -> the `PolicyDenied` message agent code received, for
        #: refusals that ended an execution (the mirror panel shows them)
        self.refusal_messages: dict[int, str] = {}
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

    def exec(self, code: str, namespace: MutableMapping[str, Any], *,
             display: Callable[[Any], Any] | None = None) -> Any:
        """Run agent `code` against `namespace`, like a notebook cell.

        Namespace values are wrapped on the way in; names the code binds or rebinds land
        back in `namespace` (as proxies where they derive from proxied values).  Returns
        the value of the last expression statement, or None; with `display`, that value
        passed through ``display(value)`` inside the execution (its ops are part of it:
        marimo's scratchpad hands the real value to its formatter this way).  Exceptions
        propagate with their own type and message; the traceback ends at the agent's own
        line.  Code with top-level ``await`` needs `aexec`.
        """
        run = self._begin(code)
        try:
            try:
                self._prepare(run, code, namespace, allow_await=False)
                exec(run.code, run.globals)
                if display is not None:
                    run.globals[LAST] = display(run.globals.get(LAST))
            finally:
                self._stop_watchdog(run)
        except BaseException as e:
            # the agent's own exception, re-raised with a shorter traceback (not a new one)
            raise self._failed(run, e)  # noqa: B904
        return self._finish(run, namespace)

    async def aexec(self, code: str, namespace: MutableMapping[str, Any], *,
                    display: Callable[[Any], Any] | None = None) -> Any:
        """`exec` for code that may use top-level ``await`` (marimo code mode:
        ``async with cm.get_context() as ctx: ...``)."""
        run = self._begin(code)
        try:
            try:
                self._prepare(run, code, namespace, allow_await=True)
                result = eval(run.code, run.globals)
                if inspect.iscoroutine(result):
                    await self._within_budget(run, result)
                if display is not None:
                    run.globals[LAST] = display(run.globals.get(LAST))
            finally:
                self._stop_watchdog(run)
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
        run.globals = self.globals_for(namespace)
        run.before = dict(run.globals)
        self._current_globals = run.globals
        if self._m.wall_ns:
            self._m.deadline_ns = _perf() + self._m.wall_ns
            run.watchdog = Watchdog(self._m.wall_ns / 1e9).__enter__()

    @staticmethod
    async def _within_budget(run: _Run, coro: Any) -> None:
        """Await the agent's coroutine; with a wall-time budget, as a task of its own,
        which the watchdog cancels if the time runs out while the code is suspended (the
        thread is then running other tasks of the loop, which must not be interrupted)."""
        watchdog = run.watchdog
        if watchdog is None:
            await coro
            return
        task = asyncio.ensure_future(coro)
        loop = task.get_loop()
        watchdog.on_suspended = lambda: loop.call_soon_threadsafe(task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            if watchdog.fired and task.cancelled():
                raise WallTimeExceeded() from None
            raise

    @staticmethod
    def _stop_watchdog(run: _Run) -> None:
        """Stop the wall-time watchdog, if any, as soon as the agent's code has run: the
        bookkeeping after it (`_finish`, `_failed`) is never interrupted.  An interrupt
        that arrives while it stops is the execution's (the caller's ``except``)."""
        watchdog = run.watchdog
        if watchdog is not None:
            watchdog.__exit__(None, None, None)
            run.watchdog = None

    def _failed(self, run: _Run, e: BaseException) -> BaseException:
        """Record the failure; the exception to re-raise, its traceback trimmed to the
        agent's own frames."""
        self._keep_refusal_message(e)
        self._end(run, e)
        return e.with_traceback(trim_traceback(e.__traceback__))

    def _finish(self, run: _Run, namespace: MutableMapping[str, Any]) -> Any:
        g = run.globals
        value = g.pop(LAST, None)
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
        self._current_globals = None
        self._stop_watchdog(run)  # stopped already, unless an interrupt came as it stopped
        m.records.append(O.ExecEnd(
            seq=len(m.records), t=m._now(_perf()), actor=m.actor, effect="exec",
            policy=m.phash, dur=_perf() - run.p0, ops=len(m.records) - run.start - 1,
            error=_qual(type(error)) if error is not None else None,
            message=_short(str(error)) if error is not None else None,
        ))
        self.flush()
        # Results the agent no longer holds are let go now, as they would be without
        # proxies (a file written with open(...).write(...) is closed and flushed).
        m.sweep()

    def flush(self) -> None:
        """Fingerprint new results and write buffered records to the log (done at the end
        of every `exec`), then tell `subscribe`rs."""
        if self._m.pending_fp:
            self._m.fingerprint_pending()
        if self._log is not None:
            self._log.write(self._m.records)
        if self._listeners:
            self._notify()

    def subscribe(self, callback: Callable[[Session], None]) -> Callable[[], None]:
        """Call ``callback(session)`` after every flush: at the end of each agent
        execution, after each code-mode op and after each owner record (grant, deny,
        policy change).  Returns a function that unsubscribes.

        This is how the mirror panel updates without polling.  Callbacks run on the
        thread that flushed (the kernel's); one that raises is logged and kept, and never
        fails the agent's run.  No subscriber, no cost.
        """
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _notify(self) -> None:
        for cb in tuple(self._listeners):
            try:
                cb(self)
            except Exception:
                log.exception("pairproxy: a session subscriber failed (ignored)")

    def _keep_refusal_message(self, e: BaseException) -> None:
        # The refusal may be the exception itself or what agent code raised while
        # handling it (its __context__).
        cur: BaseException | None = e
        for _ in range(4):
            if cur is None:
                return
            if isinstance(cur, PolicyDenied) and cur.record is not None:
                self.refusal_messages[cur.record.seq] = str(cur)
                return
            cur = cur.__cause__ or cur.__context__

    def proxies(self) -> dict[int, Any]:
        """ref -> proxy of every value the session still holds (owner-side: the mirror
        panel describes them exactly as agent code would).  Values the agent let go of
        are not here."""
        from .proxy import state_of

        m = self._m
        roots = {id(px) for px in m._roots.values()}
        by_id = m._by_id
        out: dict[int, Any] = {}
        for i in list(by_id):
            px = by_id[i]
            # held by more than the identity map (this local and getrefcount's argument
            # aside): the map keeps dropped values whose real objects live on elsewhere
            if id(px) in roots or sys.getrefcount(px) > 3:
                st = state_of(px)
                if st is not None:
                    out[st.ref] = px
        return out

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
        max_ops = getattr(limits, "max_ops", None) if limits else None
        wall = getattr(limits, "wall_seconds", None) if limits else None
        # The membrane checks its budget (op count and deadline) only when max_ops is
        # set: a wall-time limit alone needs an op count that is never reached.
        self._m.max_ops = max_ops if max_ops is not None else (sys.maxsize if wall else None)
        self._m.wall_ns = int(wall * 1e9) if wall else 0

    def reload_policy(self) -> tuple[bool, str | None]:
        """Re-read the policy file now rather than at the agent's next execution (the
        owner just saved it).  Returns (changed, error): a bad file keeps the running
        policy and says why; either outcome is recorded."""
        return self._reload_if_changed()

    def _reload_if_changed(self) -> tuple[bool, str | None]:
        reload = getattr(self.policy, "reload_if_changed", None)
        if reload is None:
            return False, None
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
        return bool(changed), error

    # --- namespaces -----------------------------------------------------------------

    def globals_for(self, namespace: MutableMapping[str, Any]) -> dict[str, Any]:
        """The agent-side globals of `namespace`: its values as proxies, plus the guarded
        builtins.  One dict per namespace, kept across calls, so functions the agent
        defined in one call see the names bound in later ones (as in a notebook)."""
        entry = self._ns_globals.pop(id(namespace), None)
        g = entry[1] if entry is not None and entry[0] is namespace else {}
        self._ns_globals[id(namespace)] = (namespace, g)  # most recent last
        while len(self._ns_globals) > 16:  # marimo hands a fresh copy per call
            self._ns_globals.pop(next(iter(self._ns_globals)))
        m = self._m
        for name in [n for n in g if n not in namespace and n not in _HIDDEN_NAMES]:
            del g[name]
        for name, value in namespace.items():
            if name in _HIDDEN_NAMES:
                continue
            if name.startswith("__") and name.endswith("__"):
                g[name] = value if _type_kind(type(value)) == PASS else None
                continue
            if g.get(name) is not value:
                g[name] = m.root(value, name)
        if self._builtins is None:
            self._builtins = AgentBuiltins(self).build()
        g["__builtins__"] = self._builtins
        g[EXC] = exception_types
        g[LIMITS] = reraise_limits
        g[GETATTR] = guarded_getattr
        g[CLASS] = proxied_class
        g.setdefault("__name__", "__main__")
        return g

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
            # any import): its functions need the proxies, not the real objects.  A plain
            # ``import pairproxy.agent`` binds ``pairproxy``: give it a stand-in package
            # holding only ``agent``, never the real one (it has `unwrap`).
            self._m.import_(name, names, do_import)
            agent = sys.modules[AGENT_API]
            if names:
                return agent
            package = types.ModuleType("pairproxy", "pairproxy, as agent code sees it")
            package.agent = agent  # type: ignore[attr-defined]
            return package
        return self._m.import_(name, names, do_import)

    def __repr__(self) -> str:
        return f"<pairproxy.Session {self.id} policy={self._m.phash or 'none'} records={len(self.records)}>"


_HIDDEN_NAMES = frozenset({"__builtins__", LAST, EXC, LIMITS, GETATTR, CLASS})


class _Run:
    """One agent execution under way."""

    __slots__ = ("p0", "start", "filename", "code", "globals", "before", "watchdog")

    def __init__(self, p0: int, start: int, filename: str) -> None:
        self.p0 = p0
        self.start = start
        self.filename = filename
        self.code: Any = None
        self.globals: dict[str, Any] = {}
        self.before: dict[str, Any] = {}
        self.watchdog: Watchdog | None = None


def _short(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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

