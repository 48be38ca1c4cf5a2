"""Replay: re-run a recorded log against roots rebuilt from the notebook and compare.

Individual op records cannot be re-run on their own (a lambda passed to ``apply`` is in
the log only as ``<function <lambda>>``), but every agent execution starts with an
``exec`` record holding the agent's code.  Replay therefore runs the notebook's app to
get its globals back, re-runs each execution's code through a fresh `Session` (same
policy) against them, and compares the op stream it produces with the logged one,
record by record: kind, target ref@version, member/key/arguments, effect, decision,
rule, error type, the result (literal, or ref and type) and its fingerprint.  Records the
owner made between executions are applied as events: ``root`` (the owner wrapped a
value), ``grant`` (an ask was approved or denied, so the retry passes again), and
``policy`` (the policy was switched, when that file is still there with that hash).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import itertools
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from . import ops as O
from .fingerprint import SCHEME as FP_SCHEME
from .oplog import Header, LogReader, read_log, require_verified
from .provenance import Provenance
from .replay_compare import Divergence, ReplayReport, comparable, first_difference, normal

_notebook_numbers = itertools.count(1)


class ReplayError(Exception):
    """Replay cannot start or go on (no notebook, a root it does not define, ...)."""


# --- rebuilding the roots ------------------------------------------------------------------


def notebook_globals(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Run a marimo notebook's app (``outputs, defs = app.run()``) in this process and
    return its definitions: the roots agent code saw.

    Examples:
        >>> defs = notebook_globals("notebook.py")  # doctest: +SKIP
        >>> sorted(defs)
        ['df', 'pd']
    """
    p = Path(path)
    if not p.is_file():
        raise ReplayError(f"{p}: no such notebook file")
    name = f"_pairproxy_replay_notebook_{next(_notebook_numbers)}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ReplayError(f"{p}: cannot load as a Python module")
    module = importlib.util.module_from_spec(spec)
    # the notebook may import modules that sit next to it
    sys.path.insert(0, str(p.resolve().parent))
    try:
        spec.loader.exec_module(module)
        app = getattr(module, "app", None)
        if app is None or not callable(getattr(app, "run", None)):
            raise ReplayError(f"{p}: not a marimo notebook (it defines no `app`)")
        with contextlib.redirect_stdout(io.StringIO()):
            _, defs = app.run()
    except ReplayError:
        raise
    except Exception as e:
        raise ReplayError(f"{p}: running the notebook failed: {type(e).__name__}: {e}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(p.resolve().parent))
    return dict(defs)



class _Traced(list):  # type: ignore[type-arg]
    """The replay session's record list: remembers the agent's line for every record."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []

    def append(self, rec: Any) -> None:
        from .session import AGENT_FILE_PREFIX

        super().append(rec)
        f: Any = sys._getframe(1)
        line = 0
        for _ in range(64):
            if f is None:
                break
            if f.f_code.co_filename.startswith(AGENT_FILE_PREFIX):
                line = f.f_lineno
                break
            f = f.f_back
        self.lines.append(line)


# --- the replay ----------------------------------------------------------------------------


class _Logged(NamedTuple):
    line: int
    rec: O.Op


def _segments(reader: LogReader) -> Iterator[tuple[Header, list[_Logged]]]:
    current: list[_Logged] = []
    segment = 0
    for rec in reader:
        if reader.segment != segment:
            if current:
                yield reader.headers[segment], current
            current, segment = [], reader.segment
        current.append(_Logged(reader.line, rec))
    if current:
        yield reader.headers[segment], current


def needs_kernel(span: list[_Logged]) -> bool:
    """Whether an execution drove marimo's code mode (notebook ops need a live kernel)."""
    for lr in span:
        rec = lr.rec
        if O.kind(rec) in O.NOTEBOOK_KINDS:
            return True
        if isinstance(rec, O.Import) and rec.module.startswith("marimo._code_mode"):
            return True
    return False


def _first_new_ref(rec: O.Op) -> int | None:
    if isinstance(rec, O.Root):
        return rec.ref
    from .provenance import new_refs

    for r in new_refs(rec.out):
        return r.ref
    return None


def _is_event(rec: O.Op) -> bool:
    """Owner records that are applied, not compared (grants, policy changes)."""
    return rec.actor == "owner" and isinstance(rec, (O.Grant, O.PolicyEvent))


def _resolve_policy(policy: Any, header: Header, notes: list[str]) -> Any:
    from .policy import load_policy

    if isinstance(policy, (str, os.PathLike)):
        policy = load_policy(policy)
    if policy is None and header.policy_hash:
        if header.policy_path and Path(header.policy_path).is_file():
            candidate = load_policy(header.policy_path)
            if candidate.hash == header.policy_hash:
                return candidate
        raise ReplayError(
            f"the log was recorded under policy {header.policy_hash}"
            + (f" ({header.policy_path})" if header.policy_path else "")
            + ", which is not available with that content; pass --policy FILE"
        )
    got = getattr(policy, "hash", "") if policy is not None else ""
    if got != header.policy_hash:
        notes.append(f"replaying under policy {got or 'none'}, the log was recorded under "
                     f"{header.policy_hash or 'none'}: decisions and rules may differ")
    return policy


def replay(
    path: str | os.PathLike[str], *, notebook: str | os.PathLike[str] | None = None,
    roots: Mapping[str, Any] | None = None, policy: Any = None, progress: bool | None = None,
    check_chain: bool = True, scratchpad: bool | None = None,
) -> ReplayReport:
    """Re-run the executions recorded in log `path` and compare every op with the log.

    Args:
        path: the op log.
        notebook: a marimo notebook whose globals are the roots (default: the notebook
            named in the log header, when it exists).
        roots: objects by name, added to (or instead of) the notebook's globals.
        policy: a `Policy` or policy file (default: the recorded one, when its file is
            still there with the recorded hash; None when the log was recorded without).
        progress: show a progress bar (default: when stderr is a terminal).
        check_chain: refuse a log that fails `verify` (replaying a tampered log proves nothing).
        scratchpad: each execution starts from the notebook's globals and its bindings
            are dropped (marimo's scratchpad); default from the header's ``mode``.

    Raises:
        ReplayError: replay cannot start (no such notebook, a root the notebook does not
            define, the recorded policy is not available).
        LogError: the log is unreadable or fails verification.

    Examples:
        >>> report = replay("ops.jsonl", notebook="notebook.py")  # doctest: +SKIP
        >>> print(report.describe())
        42 ops replayed (5 executions), all match
    """
    if check_chain:
        require_verified(path, "replaying")
    reader = read_log(path)
    segments = list(_segments(reader))
    notes: list[str] = []
    if reader.truncated is not None:
        notes.append(f"the log ends in a truncated entry ({reader.unit} {reader.truncated.line}); skipped")
    base: dict[str, Any] = {}
    first = reader.headers[0] if reader.headers else None
    nb = notebook if notebook is not None else (first.notebook if first and first.notebook else None)
    if nb is not None:
        if notebook is None and not Path(nb).is_file():
            raise ReplayError(f"the log names notebook {nb}, which does not exist; pass --notebook")
        base.update(notebook_globals(nb))
        if first is not None and first.notebook_hash:
            from .oplog.format import file_hash

            if file_hash(str(nb)) != first.notebook_hash:
                notes.append(f"{nb} changed since the log was recorded (content hash differs)")
    if roots:
        base.update(roots)
    total = sum(len(s) for _, s in segments)
    bar = _progress(total, progress)
    ops = execs = 0
    try:
        for header, recs in segments:
            r = _SegmentReplay(str(path), header, recs, base, policy, notes, bar, scratchpad)
            div = r.run()
            ops += r.ops
            execs += r.execs
            for no, line, n in r.skipped:
                notes.append(f"exec #{no} (line {line}) drives marimo code mode, which needs a running "
                             f"kernel: not re-run, its {n} ops not compared")
            if div is not None:
                return ReplayReport(str(path), ops, execs, div, notes)
    finally:
        bar.close()
    return ReplayReport(str(path), ops, execs, None, notes)


def _run_async(coro: Any) -> Any:
    """Run `coro` to completion from synchronous code, also when this thread already runs
    an event loop (replay called from a notebook): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def target() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as e:  # handed to the caller's thread
            box.append((False, e))

    t = threading.Thread(target=target, name="pairproxy-replay")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


def _progress(total: int, show: bool | None) -> Any:
    from tqdm import tqdm

    if show is None:
        show = sys.stderr.isatty() and total > 2000
    return tqdm(total=total, unit="rec", desc="replay", disable=not show, file=sys.stderr, leave=False)


class _SegmentReplay:
    """Replays one segment (one recorded session) with one fresh session."""

    def __init__(
        self, path: str, header: Header, recs: list[_Logged], base: dict[str, Any], policy: Any,
        notes: list[str], bar: Any, scratchpad: bool | None,
    ) -> None:
        from .membrane import PASS, _type_kind
        from .session import Session

        self.path = path
        self.recs = recs
        self.base = base
        self.notes = notes
        self.bar = bar
        self.scratchpad = header.mode == "scratchpad" if scratchpad is None else scratchpad
        self.policy = _resolve_policy(policy, header, notes)
        if self.scratchpad:
            # a session in a marimo kernel judges marimo's and pairproxy's own objects by
            # fixed rules before the owner's policy (pairproxy.marimo.boundary)
            from .marimo.boundary import KernelPolicy

            self.policy = KernelPolicy(self.policy)
        self.same_policy = (getattr(self.policy, "hash", "") if self.policy is not None else "") == header.policy_hash
        actor = next((lr.rec.actor for lr in recs if isinstance(lr.rec, O.Exec)), "agent")
        self.session = Session(policy=self.policy, actor=actor)
        self.traced = _Traced()
        self.session._m.records = self.traced
        self.fingerprints = any(lr.rec.fp is not None for lr in recs)
        self.session._m.fingerprints = self.fingerprints
        self.session._m.fp_all = True
        #: how logged fingerprints are compared: whole, or (a log hashed under another
        #: fingerprint scheme) by type, shape and dtypes only
        self.fp_mode: bool | str = True
        if self.fingerprints and header.fingerprints != FP_SCHEME:
            self.fp_mode = "shape"
            notes.append(f"this log's content hashes were made by fingerprint scheme {header.fingerprints}, this "
                         f"version makes scheme {FP_SCHEME}: fingerprints compared by type, shape and dtypes only")
        self.ns: dict[str, Any] = {}
        # values that cross by value never show up as roots: give the code all of them
        self.passed = {k: v for k, v in base.items() if _type_kind(type(v)) == PASS}
        self.rooted: list[str] = []
        self.logged_prov = Provenance()
        self.replayed_prov = Provenance()
        self.ops = 0
        self.execs = 0
        #: owner roots made outside executions, compared at the next flush
        self.deferred: list[tuple[_Logged, int]] = []
        #: refs (logged numbering, inclusive ranges) minted by executions that could not
        #: be re-run; later logged refs are renumbered past them
        self.skipped_refs: list[tuple[int, int]] = []
        self.pending_skip: int | None = None
        self.skipped: list[tuple[int, int, int]] = []  # (exec no, line, ops)

    # --- driving ---------------------------------------------------------------------------

    def run(self) -> Divergence | None:
        i = 0
        recs = self.recs
        while i < len(recs):
            lr = recs[i]
            rec = lr.rec
            if isinstance(rec, O.Exec):
                j = i + 1
                while j < len(recs) and not isinstance(recs[j].rec, O.ExecEnd):
                    j += 1
                span = recs[i: j + 1]
                self.execs += 1
                div = self._exec(span)
                self.bar.update(len(span))
                if div is not None:
                    return div
                i = j + 1
                continue
            div = self._event(lr)
            self.bar.update(1)
            if div is not None:
                return div
            i += 1
        self.session.flush()  # what close() does: the last roots get their fingerprints
        return self._compare_deferred()

    def _event(self, lr: _Logged) -> Divergence | None:
        rec = lr.rec
        s = self.session
        start = len(self.traced)
        if isinstance(rec, O.Root) and rec.actor == "owner":
            s.wrap(self._root_value(rec.name, lr), rec.name)
            self.logged_prov.add(rec)
            if rec.name not in self.rooted:
                self.rooted.append(rec.name)
            # compared at the next flush, when both sessions have fingerprinted it
            self.deferred.append((lr, start))
            return None
        if isinstance(rec, O.Grant):
            try:
                if rec.answer == "deny":
                    s.deny(rec.ask)
                else:
                    s.grant(rec.ask, once=rec.answer != "always")
            except KeyError:
                return self._stop(lr, 0, "ask", rec.ask, None,
                                  f"grant #{rec.ask} {rec.answer}", "(no such approval was requested in the replay)")
            return self._compare_deferred()
        if isinstance(rec, O.PolicyEvent):
            self._policy_event(rec)
            s.flush()  # the recording session flushed with this owner record
            return self._compare_deferred()
        if isinstance(rec, O.ExecEnd):
            return None
        return self._stop(lr, 0, "", None, None, self.logged_prov.text(rec),
                          "(cannot replay: an op made outside any execution, by code the log does not hold)")

    def _compare_deferred(self) -> Divergence | None:
        """Compare the owner's roots made since the last flush (the session has flushed)."""
        deferred, self.deferred = self.deferred, []
        for lr, start in deferred:
            div = self._compare([lr], start, exec_no=0, limit=1)
            if div is not None:
                return div
        return None

    def _policy_event(self, rec: O.PolicyEvent) -> None:
        if rec.error or rec.message != "policy set":
            return  # reloads are judged by what the records carry
        from .policy import load_policy

        if rec.path and Path(rec.path).is_file():
            p = load_policy(rec.path)
            if p.hash == rec.hash:
                self.session.set_policy(p)
                return
        self.notes.append(f"seq {rec.seq}: the policy was switched to {rec.hash} ({rec.path or '?'}), "
                          "which is not available; continuing under the previous one")

    def _root_value(self, name: str, lr: _Logged) -> Any:
        if name in self.base:
            return self.base[name]
        raise ReplayError(
            f"{self.path}:{lr.line}: the log's root {name!r} is not defined by the notebook"
            " (pass --notebook, or roots= from Python)"
        )

    def _namespace(self, span: list[_Logged]) -> dict[str, Any]:
        # Roots the execution wrapped, in the order it wrapped them: the namespace gets them
        # in that order so refs are numbered as they were.
        names = []
        for lr in span:
            rec = lr.rec
            if not isinstance(rec, O.Root) or rec.actor != "owner":
                continue
            if rec.name not in self.base and rec.type == rec.name and rec.name in sys.modules:
                continue  # a module the session roots itself (the agent's builtins)
            self._root_value(rec.name, lr)
            names.append(rec.name)
            if rec.name not in self.rooted:
                self.rooted.append(rec.name)
        if self.scratchpad:
            ns = {n: self.base[n] for n in self.rooted}
            ns.update(self.passed)
            return ns
        for name in names:
            self.ns.setdefault(name, self.base[name])
        for name in self.rooted:  # roots the owner wrapped before (already known: no record)
            self.ns.setdefault(name, self.base[name])
        for k, v in self.passed.items():
            self.ns.setdefault(k, v)
        return self.ns

    def _exec(self, span: list[_Logged]) -> Divergence | None:
        code = span[0].rec.code  # type: ignore[attr-defined]
        if needs_kernel(span):
            return self._skip(span)
        ns = self._namespace(span)
        start = len(self.traced)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                _run_async(self._aexec(code, ns))
            except KeyboardInterrupt:
                raise
            except BaseException:  # compared through the exec.end record
                pass
        if not isinstance(span[-1].rec, O.ExecEnd):
            self.notes.append(f"the log ends inside exec #{self.execs} (line {span[0].line}): the recording "
                              "session stopped mid-execution; compared what was logged")
        return self._compare_deferred() or self._compare(span, start, self.execs, code)

    def _skip(self, span: list[_Logged]) -> Divergence | None:
        """An execution that drove marimo's code mode: it needs a running kernel, so it is
        not re-run.  Its roots are still wrapped (later code may use them) and refs it
        minted are numbered past in what follows."""
        div = self._compare_deferred()
        if div is not None:
            return div
        self._namespace(span)
        asks = self.session._m.asks
        for lr in span:
            self.logged_prov.add(lr.rec)
            rec = lr.rec
            if isinstance(rec, O.Root) and rec.actor == "owner" and rec.name in self.base:
                self.session.wrap(self.base[rec.name], rec.name)
            elif rec.decision == "ask":
                # keep approval numbers aligned: a placeholder the log's grant can answer
                n = len(asks) + 1
                text = self.logged_prov.text(rec)
                asks[n] = {"seq": -1, "key": ("not re-run", n), "exact": f"<not re-run #{n}>", "text": text,
                           "rule": rec.rule, "reason": "", "state": "pending"}
        ops = sum(1 for lr in span if not isinstance(lr.rec, (O.Exec, O.ExecEnd)))
        self.skipped.append((self.execs, span[0].line, ops))
        shift = sum(hi - lo + 1 for lo, hi in self.skipped_refs)
        self.pending_skip = self.session._m._next_ref + shift
        return None

    def _resolve_skip(self, logged: O.Op, replayed: O.Op) -> None:
        """At the first new ref after a skipped execution: how many refs it minted."""
        assert self.pending_skip is not None
        a = _first_new_ref(logged)
        b = _first_new_ref(replayed)
        if a is None or b is None:
            return
        shift = sum(hi - lo + 1 for lo, hi in self.skipped_refs)
        n = a - shift - b
        if n > 0:
            self.skipped_refs.append((self.pending_skip, self.pending_skip + n - 1))
        self.pending_skip = None

    def _translate_ref(self, r: int) -> int | str:
        shift = 0
        for lo, hi in self.skipped_refs:
            if lo <= r <= hi:
                return f"@{r}, made by an execution that was not re-run"
            if hi < r:
                shift += hi - lo + 1
        return r - shift

    def _translate(self, v: Any, top: bool = True) -> Any:
        """A `comparable` dict of a logged record with refs renumbered for the replay."""
        if isinstance(v, dict):
            out = {k: self._translate(x, False) for k, x in v.items()}
            if (top or v.get("type") == "ref") and isinstance(v.get("ref"), int) and v["ref"]:
                out["ref"] = self._translate_ref(v["ref"])
            return out
        if isinstance(v, list):
            return [self._translate(x, False) for x in v]
        return v

    async def _aexec(self, code: str, ns: dict[str, Any]) -> None:
        # `aexec` runs code with or without top-level await (the log does not say which
        # entry point ran it; the ops are the same).  The scratchpad hands its last value
        # to marimo's formatter through `for_display`, whose ops are part of the execution.
        display = None
        if self.scratchpad:
            from .marimo.display import for_display

            display = for_display
        await self.session.aexec(code, ns, display=display)

    # --- comparing -------------------------------------------------------------------------

    def _compare(
        self, span: list[_Logged], start: int, exec_no: int, code: str = "", limit: int | None = None,
    ) -> Divergence | None:
        logged = [lr for lr in span if not _is_event(lr.rec)]
        end = None if limit is None else start + limit
        replayed = [(i, r) for i, r in enumerate(self.traced[start:end], start) if not _is_event(r)]
        truncated = not isinstance(span[-1].rec, O.ExecEnd) and exec_no
        for n, lr in enumerate(logged):
            self.logged_prov.add(lr.rec)
            if n >= len(replayed):
                return self._stop(lr, exec_no, "", None, None, self.logged_prov.text(lr.rec),
                                  "(the replay made no such op)", code=code)
            i, rr = replayed[n]
            self.replayed_prov.add(rr)
            fp = self.fp_mode if self.fingerprints and lr.rec.fp is not None else False
            diff = None
            if self.pending_skip is not None:
                self._resolve_skip(lr.rec, rr)
            if self.skipped_refs:  # refs renumbered: compare field by field
                diff = first_difference(self._translate(comparable(lr.rec, rule=self.same_policy, fp=fp)),
                                        comparable(rr, rule=self.same_policy, fp=fp))
            elif normal(lr.rec, self.same_policy, fp) != normal(rr, self.same_policy, fp):
                # the slow path says which field, and forgives memory addresses in summaries
                diff = first_difference(comparable(lr.rec, rule=self.same_policy, fp=fp),
                                        comparable(rr, rule=self.same_policy, fp=fp))
            if diff is not None:
                return self._stop(lr, exec_no, diff[0], diff[1], diff[2], self._text(lr.rec, self.logged_prov),
                                  self._text(rr, self.replayed_prov), code=code, index=i)
            if not isinstance(lr.rec, (O.Exec, O.ExecEnd)):
                self.ops += 1
        if len(replayed) > len(logged) and not truncated:
            i, rr = replayed[len(logged)]
            self.replayed_prov.add(rr)
            last = span[-1]
            return self._stop(last, exec_no, "", None, None, "(the log has no such op)",
                              self._text(rr, self.replayed_prov), code=code, index=i)
        return None

    @staticmethod
    def _text(rec: O.Op, prov: Provenance) -> str:
        if isinstance(rec, O.Exec):
            return "exec"
        if isinstance(rec, O.Root):
            return f"{rec.name} = <{rec.type}>  (root)"
        text = prov.text(rec)
        extras = []
        if rec.decision != "allow":
            extras.append(rec.decision)
        if rec.error:
            extras.append(f"! {rec.error}")
        return text + (f"  [{', '.join(extras)}]" if extras else "")

    def _stop(
        self, lr: _Logged, exec_no: int, field: str, logged: Any, replayed: Any, logged_op: str,
        replayed_op: str, code: str = "", index: int | None = None,
    ) -> Divergence:
        line = self.traced.lines[index] if index is not None and index < len(self.traced.lines) else 0
        code_lines = code.splitlines()
        text = code_lines[line - 1] if 0 < line <= len(code_lines) else ""
        return Divergence(lr.rec.seq, lr.line, exec_no, line, text, field, logged, replayed,
                          logged_op, replayed_op)
