"""Verification: headers, seals, seq order and the hash chain; the first problem found."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .. import ops as O
from ..errors import LogError
from .format import (
    GENESIS,
    BadEntry,
    Header,
    RawEntry,
    Seal,
    Truncation,
    entries,
    link,
    read_bytes,
    sniff,
    tail_token,
)

# --- verifying -----------------------------------------------------------------------------


class Problem(NamedTuple):
    """The first thing wrong with a log."""

    line: int
    seq: int | None
    message: str


class Verification(NamedTuple):
    """What `verify` found.  ``problem`` is None when the log is intact."""

    path: str
    format: str
    records: int
    segments: int
    sealed: list[bool]
    truncated: Truncation | None
    problem: Problem | None
    #: format of each segment (1: written before seals and self-checking links)
    formats: list[int] = []

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def unsealed(self) -> list[int]:
        """The numbers (from 1) of the segments that do not end with a seal: a session
        still running or that did not close, an end cut off, or a format-1 segment
        (written before seals, see `formats`)."""
        return [i + 1 for i, sealed in enumerate(self.sealed) if not sealed]

    def old_format(self, segment: int) -> bool:
        """Is `segment` (numbered from 1) format 1, written before seals existed?"""
        return segment <= len(self.formats) and self.formats[segment - 1] < 2

    def describe(self) -> str:
        """Human-readable result, one finding per line."""
        unit = "frame" if self.format == "msgpack" else "line"
        if self.problem is not None:
            p = self.problem
            seq = f" (seq {p.seq})" if p.seq is not None else ""
            return f"{self.path}: {unit} {p.line}{seq}: {p.message}"
        lines = [
            f"{self.path}: ok: {self.records} records in {self.segments} segment"
            f"{'s' if self.segments != 1 else ''}, chain intact"
        ]
        for n in self.unsealed:
            if self.old_format(n):
                lines.append(f"  note: segment {n} is format 1 (written before seals and self-checking "
                             "links): a change to its last record would not be seen")
            else:
                lines.append(f"  note: segment {n} is not sealed: its session is still running or did "
                             "not close (crash, kill); its records up to the last one verify")
        if self.truncated is not None:
            lines.append(f"  note: {unit} {self.truncated.line} is a truncated entry "
                         f"({self.truncated.size} bytes, a crash mid-write); skipped")
        return "\n".join(lines)


class _Chain:
    """The verifier's state while walking a log (see the module docstring)."""

    def __init__(self) -> None:
        self.running = ""
        self.format = 0
        self.expect = 0
        self.records = 0
        self.sealed: list[bool] = []
        self.formats: list[int] = []
        self.prev_raw: bytes | None = None

    def check(self, e: RawEntry) -> str | None:
        """What is wrong with entry `e`, or None; advances the chain."""
        v = e.value
        if type(v) is Header:
            return self._header(e, v)
        if not self.sealed:
            return "entry before any log header"
        if self.sealed[-1]:
            return "entry after its segment's seal (appended without a header, or moved)"
        if type(v) is Seal:
            return self._seal(e, v)
        return self._record(e, v)

    def _header(self, e: RawEntry, v: Header) -> str | None:
        self.format = v.format
        if v.format >= 2:
            want_after = tail_token(self.prev_raw) if self.prev_raw is not None else ""
            if v.after != want_after:
                if self.prev_raw is None:
                    return "the first header says it continues another log: the beginning of this file is missing"
                return ("this header does not continue the entry before it: that entry was altered, "
                        "or entries were removed or inserted here")
            if e.link is None or e.canon is None:
                return "header without a chain link (prev)"
            if e.link != link(v.after or GENESIS, e.canon):
                return "header altered: its bytes do not match its chain link"
            self.running = e.link
        else:
            self.running = link(GENESIS, e.raw)
        self.sealed.append(False)
        self.formats.append(v.format)
        self.expect = 0
        return None

    def _seal(self, e: RawEntry, v: Seal) -> str | None:
        if self.format < 2:
            return "seal in a format-1 segment"
        if e.link is None or e.canon is None or e.link != link(self.running, e.canon):
            return "seal altered, or the entry before it was removed or altered"
        if v.records != self.expect:
            return f"the seal counts {v.records} records, the segment holds {self.expect}: records were removed or added"
        self.running = e.link
        self.sealed[-1] = True
        return None

    def _record(self, e: RawEntry, v: O.Op) -> str | None:
        if v.seq != self.expect:
            return (f"seq {v.seq} where {self.expect} was expected: a record was removed, inserted "
                    "or moved before this one")
        if self.format >= 2:
            if e.link is None or e.canon is None:
                return "record without a chain link (prev)"
            if e.link != link(self.running, e.canon):
                return "record altered: its bytes do not match its chain link"
            self.running = e.link
        else:
            if v.prev != self.running:
                return "chain broken: prev does not match the record before it (that one or this one was altered)"
            self.running = link(self.running, e.raw)
        self.expect += 1
        self.records += 1
        return None


def verify(path: str | os.PathLike[str]) -> Verification:
    """Check a log's headers, seals and hash chain; report the first problem.

    A truncated last entry and unsealed segments are noted, not problems: they are what
    a crash (or a session still running) leaves.

    Examples:
        >>> v = verify("ops.jsonl")  # doctest: +SKIP
        >>> v.ok, v.records
        (True, 120)
    """
    p = Path(path)
    data = read_bytes(p)
    fmt = sniff(data)
    chain = _Chain()
    truncated: list[Truncation] = []

    def result(problem: Problem | None) -> Verification:
        return Verification(str(p), fmt, chain.records, len(chain.sealed), chain.sealed,
                            truncated[0] if truncated else None, problem, chain.formats)

    if not data:
        return result(Problem(1, None, "empty file: no log header"))
    try:
        for e in entries(data, truncated.append):
            what = chain.check(e)
            if what is not None:
                seq = e.value.seq if isinstance(e.value, O.Op) else None
                return result(Problem(e.line, seq, what))
            chain.prev_raw = e.raw
    except BadEntry as b:
        return result(Problem(b.line, None, b.message))
    if not chain.sealed:
        return result(Problem(1, None, "no complete log header (not a pairproxy op log, or cut off "
                                       "while writing its first line)"))
    return result(None)


def require_verified(path: str | os.PathLike[str], doing: str) -> None:
    """Raise `LogError` (naming the first problem and its line) unless the log at `path`
    verifies: `doing` says what is refused (``"replaying"``): working from altered records
    proves nothing about what the agent did."""
    v = verify(path)
    if not v.ok:
        raise LogError(f"not {doing} a log that fails verification: {v.describe()}", path=str(path),
                       line=v.problem.line if v.problem else None)
