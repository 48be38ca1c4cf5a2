"""``pairproxy log show FILE`` (a readable timeline) and ``pairproxy log verify FILE``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import msgspec

from .. import ops as O
from ..errors import LogError
from ..oplog import Header, read_log, verify
from ..provenance import Provenance

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser("log", help="show or verify an op log",
                       description="Read an op log: a timeline of what the agent did, or a check of its hash chain.")
    logsub = p.add_subparsers(dest="log_command", metavar="ACTION")
    p.set_defaults(func=lambda args: _usage(p))

    show = logsub.add_parser(
        "show", help="print a readable timeline",
        description="One line per op: seq, time, actor, decision, target ref@version, the op as "
                    "Python-like text, its result and rule.  Filters combine (all must hold).  The log "
                    "is verified too: exit 1 if it fails (the records shown may have been altered).",
    )
    show.add_argument("file", help="the op log (JSON lines or msgpack)")
    show.add_argument("--object", action="append", default=[], metavar="NAME|@REF",
                      help="only ops on this notebook object (and values derived from it), or on this ref")
    show.add_argument("--decision", action="append", default=[], metavar="D",
                      help="only ops with this decision: allow, deny, ask (repeat or comma-separate)")
    show.add_argument("--kind", action="append", default=[], metavar="K",
                      help="only ops of this kind: attr, call, getitem, exec, ... (repeat or comma-separate)")
    show.add_argument("--json", action="store_true", help="print the matching records as JSON lines")
    show.add_argument("--no-code", action="store_true", help="do not print the code of each execution")
    show.set_defaults(func=cmd_show)

    ver = logsub.add_parser(
        "verify", help="check the header, seals and hash chain",
        description="Exit 0 when the log is intact, 1 naming the first bad record (line, seq, what is wrong).  "
                    "A log that ends without its seal (a session still running or killed, or a file cut "
                    "between two entries) is intact as far as it goes: --sealed refuses it.",
    )
    ver.add_argument("file", help="the op log")
    ver.add_argument("--sealed", action="store_true",
                     help="exit 1 unless every session in the log closed with its seal (for a log that "
                          "should be complete: nothing cut off its end)")
    ver.set_defaults(func=cmd_verify)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return EXIT_USAGE


def _split(values: Iterable[str]) -> set[str]:
    return {v.strip() for text in values for v in text.split(",") if v.strip()}


# --- verify ------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        v = verify(args.file)
    except LogError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not v.ok:
        print(f"TAMPERED OR DAMAGED: {v.describe()}", file=sys.stderr)
        return EXIT_PROBLEM
    print(v.describe())
    if args.sealed and v.unsealed:
        why = [f"segment {n} of {v.segments} is format 1, written before seals: where it ends cannot be checked"
               if v.old_format(n) else
               f"segment {n} of {v.segments} ends without a seal: its session did not close (still running, "
               "or killed), or entries were cut off its end; the records it holds verify"
               for n in v.unsealed]
        print(f"NOT SEALED: {v.path}: " + "; ".join(why), file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


# --- show --------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    decisions = _split(args.decision)
    kinds = _split(args.kind)
    unknown = kinds - set(O.KINDS)
    if unknown:
        print(f"error: unknown op kind {', '.join(sorted(unknown))}; kinds: {', '.join(sorted(O.KINDS))}",
              file=sys.stderr)
        return EXIT_USAGE
    bad = decisions - {"allow", "deny", "ask"}
    if bad:
        print(f"error: unknown decision {', '.join(sorted(bad))}; decisions: allow, deny, ask", file=sys.stderr)
        return EXIT_USAGE
    try:
        reader = read_log(args.file)
        status = show(reader, sys.stdout, objects=args.object, decisions=decisions, kinds=kinds,
                      as_json=args.json, code=not args.no_code)
        v = verify(args.file)  # the timeline reads records as they are: say if they were altered
        if not v.ok:
            print(f"TAMPERED OR DAMAGED: {v.describe()}; the records shown may not be what was recorded",
                  file=sys.stderr)
            return EXIT_PROBLEM
        return status
    except LogError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE if e.line is None else EXIT_PROBLEM
    except BrokenPipeError:  # `pairproxy log show x | head`
        return EXIT_OK


def show(
    reader: Any, out: TextIO, *, objects: Iterable[str] = (), decisions: set[str] | None = None,
    kinds: set[str] | None = None, as_json: bool = False, code: bool = True,
) -> int:
    """Print the timeline of `reader`'s records to `out`.  Returns the exit status."""
    prov = Provenance()
    segment = -1
    keep = _filter(prov, list(objects), decisions or set(), kinds or set())
    enc = msgspec.json.Encoder()
    shown = 0
    for rec in reader:
        if reader.segment != segment:
            segment = reader.segment
            prov = Provenance()
            keep = _filter(prov, list(objects), decisions or set(), kinds or set())
            if not as_json:
                out.write(_banner(reader.headers[segment], segment) + "\n")
        prov.add(rec)
        if not keep(rec):
            continue
        shown += 1
        if as_json:
            out.write(enc.encode(rec).decode() + "\n")
        else:
            out.write(line_of(rec, prov, code) + "\n")
    if reader.truncated is not None:
        t = reader.truncated
        print(f"note: {reader.path}: {reader.unit} {t.line} is a truncated entry ({t.size} bytes, a crash "
              "mid-write); skipped", file=sys.stderr)
    if not as_json and segment < 0:
        out.write("(no records)\n")
    return EXIT_OK


def _filter(prov: Provenance, objects: list[str], decisions: set[str], kinds: set[str]) -> Callable[[O.Op], bool]:
    refs = {int(o.lstrip("@")) for o in objects if o.lstrip("@").isdigit()}
    names = {o for o in objects if not o.lstrip("@").isdigit()}

    def keep(rec: O.Op) -> bool:
        k = O.kind(rec)
        if kinds and k not in kinds:
            return False
        if not kinds and objects and k in ("exec", "exec.end"):
            return False
        if decisions and rec.decision not in decisions:
            return False
        if objects:
            made = {r.ref for r in _made(rec)}
            if rec.ref in refs or made & refs:
                return True
            if names and rec.ref and prov.root_of(rec.ref) in names:
                return True
            return bool(isinstance(rec, O.Root) and rec.name in names)
        return True

    return keep


def _made(rec: O.Op) -> list[O.Ref]:
    from ..provenance import new_refs

    return list(new_refs(rec.out)) if isinstance(rec.out, (O.Ref, O.Seq)) else []


def _banner(h: Header, segment: int) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.created)) if h.created else "?"
    parts = [f"session {h.session}", f"started {when}", f"pairproxy {h.pairproxy}", f"python {h.python}"]
    if h.marimo:
        parts.append(f"marimo {h.marimo}")
    if h.notebook:
        parts.append(f"notebook {h.notebook}")
    parts.append(f"policy {h.policy_hash or 'none (record everything)'}"
                 + (f" ({h.policy_path})" if h.policy_path else ""))
    return f"── segment {segment + 1}: " + ", ".join(parts)


def _clock(t: float) -> str:
    if not t:
        return " " * 12
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def result_text(rec: O.Op, prov: Provenance) -> str:
    """What an op gave back: ``@7 pandas.Series (2,)`` or a literal."""
    out = rec.out
    if out is None and rec.fp is None:
        return ""
    if isinstance(out, O.Ref):
        text = f"@{out.ref}" + (f" {out.cls}" if out.cls else f"@{out.ver}")
    else:
        text = O.render_arg(out, prov.short_name)
        if len(text) > 60:
            text = text[:59] + "…"
    fp = rec.fp
    if fp is not None and fp.shape is not None:
        text += f" {fp.shape}" + (" sampled" if fp.sampled else "")
    return text


def line_of(rec: O.Op, prov: Provenance, code: bool = True) -> str:
    """One timeline line (plus the code of an ``exec`` record)."""
    k = O.kind(rec)
    target = f"@{rec.ref}@{rec.ver}" if rec.ref else ""
    decision = rec.decision if k not in ("exec", "exec.end", "root", "grant", "policy") else ""
    head = f"{rec.seq:>6}  {_clock(rec.t)}  {rec.actor:<6} {decision:<6} {target:<9} "
    if isinstance(rec, O.Exec):
        lines = rec.code.rstrip().splitlines() or [""]
        body = f"exec ({len(lines)} line{'s' if len(lines) != 1 else ''})"
        if code:
            body += "".join(f"\n{'':>38}│ {line}" for line in lines)
        return head + body
    text = prov.text(rec)
    if isinstance(rec, O.Root):
        text = f"{rec.name} = <{rec.type}>  (root)"
    res = result_text(rec, prov) if not isinstance(rec, (O.Root, O.ExecEnd)) else ""
    if res:
        text += f"  → {res}"
    if rec.error:
        text += f"  ! {rec.error}"
        if isinstance(rec, O.ExecEnd) and rec.message:
            msg = " ".join(rec.message.split())
            text += f": {msg if len(msg) <= 100 else msg[:99] + '…'}"
    if rec.rule and rec.decision != "allow":
        text += f"  [{rec.rule}]"
    return head + text
