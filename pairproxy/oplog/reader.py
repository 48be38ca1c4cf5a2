"""The log reader: records back as the same structs, headers aside, a cut-off tail skipped."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import msgspec

from .. import ops as O
from ..errors import LogError
from .format import (
    FRAME,
    HEADER_JSON,
    HEADER_MSGPACK,
    LINK_LEN,
    BadEntry,
    Header,
    Seal,
    Truncation,
    read_bytes,
    sniff,
    values,
)

log = logging.getLogger("pairproxy.oplog")


class LogReader:
    """Iterator over the records of a log file (`read_log`); headers and seals are kept
    aside.

    Attributes:
        path: the file.
        format: ``"json"`` or ``"msgpack"``.
        headers: one `Header` per segment read so far.
        sealed: per segment, whether its `Seal` was read.
        truncated: a `Truncation` when the file ends in a cut-off entry (skipped), else None.
        line: line (JSON) or frame (msgpack) number of the record last returned.
        segment: index of the segment of the record last returned.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        data = read_bytes(self.path)
        self.format = sniff(data)
        self.headers: list[Header] = []
        self.sealed: list[bool] = []
        self.truncated: Truncation | None = None
        self.line = 0
        self.segment = -1
        self._it = self._records(data)

    @property
    def unit(self) -> str:
        return "frame" if self.format == "msgpack" else "line"

    def _on_truncated(self, t: Truncation) -> None:
        self.truncated = t
        log.warning("%s: %s %d is a truncated entry (%d bytes; a crash mid-write?); skipped",
                    self.path, self.unit, t.line, t.size)

    def _records(self, data: bytes) -> Iterator[O.Op]:
        path = self.path
        try:
            for line, v in values(data, self._on_truncated):
                if type(v) is Header:
                    self.headers.append(v)
                    self.sealed.append(False)
                    self.segment += 1
                    continue
                if not self.headers:
                    raise BadEntry(line, "not a pairproxy op log (no log header)")
                if type(v) is Seal:
                    self.sealed[-1] = True
                    continue
                self.line = line
                yield v
        except BadEntry as b:
            where = f" frame {b.line}" if self.format == "msgpack" else f"{b.line}"
            raise LogError(f"{path}:{where}: {b.message}", path=str(path), line=b.line) from None

    def __iter__(self) -> LogReader:
        return self

    def __next__(self) -> O.Op:
        return next(self._it)


def read_log(path: str | os.PathLike[str]) -> LogReader:
    """The records of a log file, decoded into the same structs the session produced.

    A truncated last entry (a crash mid-write) is skipped and reported (a warning on the
    ``pairproxy.oplog`` logger and the reader's ``truncated`` attribute); anything else
    that does not decode raises `LogError` naming the file and line.  Headers of the
    file's segments are in the reader's ``headers``.

    Examples:
        >>> import pairproxy as pp
        >>> for rec in pp.read_log("ops.jsonl"):  # doctest: +SKIP
        ...     print(rec.seq, pp.ops.kind(rec))
    """
    return LogReader(path)


def read_header(path: str | os.PathLike[str]) -> Header:
    """The header of the log's first segment."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            first = f.read(8)
            f.seek(0)
            if first.startswith(b"{"):
                return HEADER_JSON.decode(f.readline(1 << 24).rstrip(b"\n"))
            size, _ = FRAME.unpack(first)
            frame = f.read(8 + size + LINK_LEN)
            header = HEADER_MSGPACK.decode(frame[8: 8 + size])
            return msgspec.structs.replace(header, prev=frame[8 + size:].decode("ascii", "replace"))
    except FileNotFoundError:
        raise LogError(f"{p}: no such op log", path=str(p)) from None
    except OSError as e:
        raise LogError(f"{p}: cannot read op log: {e.strerror}", path=str(p)) from None
    except (msgspec.DecodeError, struct.error):
        raise LogError(f"{p}:1: not a pairproxy op log (bad or missing log header)", path=str(p), line=1) from None


