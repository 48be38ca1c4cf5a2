"""Append-only op log: JSON lines, a header, hash-chained records; reader and verify."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from . import ops as O
from .errors import LogError


class Header(msgspec.Struct, frozen=True, tag="header", tag_field="op", kw_only=True, omit_defaults=True):
    """First line of every log."""

    schema: int
    pairproxy: str
    python: str
    session: str
    marimo: str | None = None
    notebook: str | None = None
    notebook_hash: str | None = None
    policy_hash: str = ""
    created: float = 0.0


GENESIS = "0" * 16


def _version() -> str:
    from . import __version__

    return __version__


def chain_hash(prev: str, line: bytes) -> str:
    """The link stored in the next record: H(prev link || this record's bytes)."""
    return hashlib.sha256(prev.encode() + line).hexdigest()[:16]


class LogWriter:
    """Writes records to a JSON-lines file, chaining each to the one before.

    Records are buffered by the session and written by `write` at the end of every
    agent execution; `fsync=True` also forces them to disk.
    """

    def __init__(
        self, path: Path, *, session: str, policy_hash: str = "", notebook: str | None = None,
        fsync: bool = False,
    ) -> None:
        import time

        self.path = Path(path)
        self.fsync = fsync
        self._enc = msgspec.json.Encoder()
        self._written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "ab")
        header = Header(
            schema=O.SCHEMA_VERSION, pairproxy=_version(), python=platform.python_version(),
            session=session, marimo=_marimo_version(), notebook=notebook,
            notebook_hash=_file_hash(notebook), policy_hash=policy_hash, created=time.time(),
        )
        line = self._enc.encode(header)
        self._f.write(line + b"\n")
        self._prev = chain_hash(GENESIS, line)
        self._f.flush()

    def write(self, records: list[O.Op]) -> None:
        """Append records not yet written (by position in `records`)."""
        if self._f.closed:
            return
        start = self._written
        if start >= len(records):
            return
        enc = self._enc.encode
        replace = msgspec.structs.replace
        out = bytearray()
        prev = self._prev
        for i in range(start, len(records)):
            rec = replace(records[i], prev=prev)
            records[i] = rec
            line = enc(rec)
            out += line
            out += b"\n"
            prev = chain_hash(prev, line)
        self._f.write(out)
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self._prev = prev
        self._written = len(records)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _marimo_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("marimo")
    except Exception:
        return None


def _file_hash(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


_decoder = msgspec.json.Decoder(type=O.AnyOp)
_header_decoder = msgspec.json.Decoder(type=Header)


def read_log(path: str | os.PathLike[str]) -> Iterator[O.Op]:
    """The records of a log file, decoded into the same structs the session produced.

    A truncated last line (a crash mid-write) is skipped; any other undecodable line
    raises `LogError` naming the file and line.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise LogError(f"{p}: cannot read op log: {e.strerror}", path=str(p)) from None
    lines = data.split(b"\n")
    truncated_tail = not data.endswith(b"\n")
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        if n == 1 or line.startswith(b'{"op":"header"'):
            try:
                _header_decoder.decode(line)
            except msgspec.DecodeError as e:
                raise LogError(f"{p}:{n}: bad log header: {e}", path=str(p), line=n) from None
            continue
        try:
            yield _decoder.decode(line)
        except msgspec.DecodeError as e:
            if truncated_tail and n == len(lines):
                return  # the crash-truncated last record
            raise LogError(f"{p}:{n}: undecodable record: {e}", path=str(p), line=n) from None


def read_header(path: str | os.PathLike[str]) -> Header:
    p = Path(path)
    with open(p, "rb") as f:
        first = f.readline()
    try:
        return _header_decoder.decode(first)
    except msgspec.DecodeError as e:
        raise LogError(f"{p}:1: bad log header: {e}", path=str(p), line=1) from None


def encode_record(rec: Any) -> bytes:
    return msgspec.json.encode(rec)
