"""Log format: header and seal records, the chain link, JSON-line and msgpack-frame
decoding (see the package docstring for the layout)."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, Union

import msgspec

from .. import ops as O
from ..errors import LogError

FORMAT = 2
GENESIS = "0" * 16
LINK_LEN = 16
MSGPACK_SUFFIXES = (".msgpack", ".mpk", ".msgpackl")

SUFFIX_HEAD = b',"prev":"'
SUFFIX_LEN = len(SUFFIX_HEAD) + LINK_LEN + 2  # ,"prev":"<16 hex>"}
HEX = re.compile(rb"[0-9a-f]{16}")
FRAME = struct.Struct(">II")
MAX_FRAME = 1 << 30


class Header(msgspec.Struct, frozen=True, tag="header", tag_field="op", kw_only=True, omit_defaults=True):
    """First entry of every segment: who wrote what, under which policy."""

    schema: int
    pairproxy: str
    python: str
    session: str
    marimo: str | None = None
    notebook: str | None = None
    notebook_hash: str | None = None
    policy_hash: str = ""
    created: float = 0.0
    # --- format 2 ---
    format: int = 1
    policy_path: str | None = None
    #: versions of the data libraries loaded when the session started
    libs: dict[str, str] = {}
    #: "" for `Session.exec` logs, "scratchpad" when each execution started from the
    #: notebook's globals and its bindings were dropped afterwards (marimo scratchpad)
    mode: str = ""
    #: `tail_token` of the line this segment was appended after ("" at file start)
    after: str = ""
    #: bytes of a crash-truncated last line removed when this segment was appended
    dropped: int = 0
    #: how the records' fingerprint hashes were made (`pairproxy.fingerprint.SCHEME`;
    #: logs from before the field: 1)
    fingerprints: int = 1
    prev: str = ""


class Seal(msgspec.Struct, frozen=True, tag="seal", tag_field="op", kw_only=True, omit_defaults=True):
    """Last entry of a cleanly closed segment: how many records it holds."""

    records: int
    t: float = 0.0
    prev: str = ""


Entry: Any = Union[(Header, Seal, *O.AnyOp.__args__)]  # type: ignore[name-defined]


def link(prev: str, canonical: bytes) -> str:
    """The chain link of an entry whose canonical bytes follow link `prev`."""
    return hashlib.sha256(prev.encode() + canonical).hexdigest()[:LINK_LEN]


def tail_token(line: bytes) -> str:
    """What a segment appended after `line` (a whole JSON line or msgpack frame) names
    in ``Header.after``."""
    return link("after", line)


def format_for(path: str | os.PathLike[str]) -> str:
    """``"msgpack"`` for ``.msgpack``/``.mpk`` files, else ``"json"``."""
    return "msgpack" if str(path).endswith(MSGPACK_SUFFIXES) else "json"



def file_hash(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None



# --- reading -------------------------------------------------------------------------------

ANY_JSON = msgspec.json.Decoder(type=Entry)
ANY_MSGPACK = msgspec.msgpack.Decoder(type=Entry)
HEADER_JSON = msgspec.json.Decoder(type=Header)
HEADER_MSGPACK = msgspec.msgpack.Decoder(type=Header)


class Truncation(NamedTuple):
    """A cut-off last entry: where it starts and how many bytes of it are there."""

    line: int
    offset: int
    size: int


class RawEntry(NamedTuple):
    """One entry as stored: line (or frame) number, byte offset, whole bytes, canonical
    bytes and link (None when the entry carries no link), and the decoded value."""

    line: int
    offset: int
    raw: bytes
    canon: bytes | None
    link: str | None
    value: Any


class BadEntry(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LogError(f"{path}: no such op log", path=str(path)) from None
    except IsADirectoryError:
        raise LogError(f"{path}: is a directory, not an op log", path=str(path)) from None
    except OSError as e:
        raise LogError(f"{path}: cannot read op log: {e.strerror}", path=str(path)) from None


def sniff(data: bytes) -> str:
    """The format of log bytes: ``"json"``, ``"msgpack"``, or ``"unknown"`` for bytes
    that are neither (a JSON log starts with ``{``; a msgpack log with the frame header of
    its log header, whose length is below 16 MiB, so its first byte is 0)."""
    if not data or data[:1] == b"{":
        return "json"
    if data[0] == 0:
        if len(data) < 8:
            return "msgpack"
        n, check = FRAME.unpack_from(data, 0)
        if n ^ 0xFFFFFFFF == check:
            return "msgpack"
    return "unknown"


def looks_truncated(line: bytes, err: Exception) -> bool:
    """Whether an undecodable last line is a strict prefix of an entry (a crash mid-write).

    msgspec reports a cut-off line as truncated, or, for a number cut in the middle
    ("1." of "1.5"), as an invalid number at the very end of the input; anything else
    (garbage after the object, bad bytes inside it) is damage, not a cut."""
    text = str(err)
    if "truncated" in text:
        return True
    m = re.search(r"invalid number \(byte (\d+)\)", text)
    return bool(m and int(m.group(1)) >= len(line))


def split_json(line: bytes) -> tuple[bytes, str] | None:
    if len(line) <= SUFFIX_LEN or not line.endswith(b'"}'):
        return None
    if line[-SUFFIX_LEN: -SUFFIX_LEN + len(SUFFIX_HEAD)] != SUFFIX_HEAD:
        return None
    lk = line[-LINK_LEN - 2: -2]
    if not HEX.fullmatch(lk):
        return None
    return line[:-SUFFIX_LEN] + b"}", lk.decode()


def entries(data: bytes, on_truncated: Callable[[Truncation], None]) -> Iterator[RawEntry]:
    """Every complete entry, in order.  A cut-off last entry is passed to `on_truncated`;
    anything else that does not decode raises `BadEntry`."""
    fmt = sniff(data)
    if fmt == "json":
        return _json_entries(data, on_truncated)
    if fmt == "msgpack":
        return _msgpack_entries(data, on_truncated)
    raise BadEntry(1, "not a pairproxy op log (neither JSON lines nor msgpack frames)")


def _json_entries(
    data: bytes, on_truncated: Callable[[Truncation], None], first: int = 0, base: int = 0,
) -> Iterator[RawEntry]:
    """Entries of JSON lines; `first` lines and `base` bytes precede `data` in the file."""
    pos, n, lineno = 0, len(data), first
    decode = ANY_JSON.decode
    while pos < n:
        nl = data.find(b"\n", pos)
        lineno += 1
        end = n if nl < 0 else nl
        line = data[pos:end]
        try:
            value = decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            # (invalid UTF-8 inside a string raises UnicodeDecodeError: never a cut-off
            # line, whose string would not be closed)
            if nl < 0 and isinstance(e, msgspec.DecodeError) and looks_truncated(line, e):
                on_truncated(Truncation(lineno, base + pos, len(line)))
                return
            if lineno == 1:
                raise BadEntry(1, f"not a pairproxy op log (the first line is not a log header: {e})") from None
            raise BadEntry(lineno, "blank line" if not line else f"undecodable entry: {e}") from None
        split = split_json(line)
        if split is None:
            yield RawEntry(lineno, base + pos, line, None, None, value)
        else:
            yield RawEntry(lineno, base + pos, line, split[0], split[1], value)
        pos = end + 1


#: Bytes of JSON lines decoded at once by `values`.
CHUNK = 1 << 20


def values(data: bytes, on_truncated: Callable[[Truncation], None]) -> Iterator[tuple[int, Any]]:
    """(line or frame number, decoded entry) of every complete entry: what a reader
    needs, faster than `entries` (no chain bytes).  JSON is decoded a chunk of lines at a
    time; a chunk that does not decode cleanly is redone line by line to name the line."""
    fmt = sniff(data)
    if fmt == "msgpack":
        for e in _msgpack_entries(data, on_truncated):
            yield e.line, e.value
        return
    if fmt != "json":
        raise BadEntry(1, "not a pairproxy op log (neither JSON lines nor msgpack frames)")
    complete = data.rfind(b"\n") + 1
    decode_lines = ANY_JSON.decode_lines
    pos = lineno = 0
    while pos < complete:
        stop = complete if pos + CHUNK >= complete else data.rfind(b"\n", pos, pos + CHUNK) + 1
        if stop <= pos:  # one line longer than a chunk
            stop = data.find(b"\n", pos) + 1
        chunk = data[pos:stop]
        n = chunk.count(b"\n")
        try:
            decoded: list[Any] | None = decode_lines(chunk)
        except (msgspec.DecodeError, UnicodeDecodeError):
            decoded = None
        if decoded is not None and len(decoded) == n:
            yield from enumerate(decoded, lineno + 1)
        else:
            for e in _json_entries(chunk, on_truncated, lineno, pos):
                yield e.line, e.value
        lineno += n
        pos = stop
    if complete < len(data):
        for e in _json_entries(data[complete:], on_truncated, lineno, complete):
            yield e.line, e.value


def _msgpack_entries(data: bytes, on_truncated: Callable[[Truncation], None]) -> Iterator[RawEntry]:
    pos, n, frame = 0, len(data), 0
    decode = ANY_MSGPACK.decode
    replace = msgspec.structs.replace
    while pos < n:
        frame += 1
        if n - pos < 8:
            on_truncated(Truncation(frame, pos, n - pos))
            return
        size, check = FRAME.unpack_from(data, pos)
        if size ^ 0xFFFFFFFF != check or size > MAX_FRAME:
            what = "not a pairproxy op log" if frame == 1 else "corrupt frame header"
            raise BadEntry(frame, f"{what} (byte {pos})")
        end = pos + 8 + size + LINK_LEN
        if end > n:
            on_truncated(Truncation(frame, pos, n - pos))
            return
        canon = data[pos + 8: pos + 8 + size]
        lk = data[end - LINK_LEN: end]
        try:
            value = decode(canon)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            what = "not a pairproxy op log (no log header)" if frame == 1 else f"undecodable entry: {e}"
            raise BadEntry(frame, f"{what} (byte {pos})") from None
        text: str | None = None
        if HEX.fullmatch(lk):
            text = lk.decode()
            value = replace(value, prev=text)
        yield RawEntry(frame, pos, data[pos:end], canon, text, value)
        pos = end


