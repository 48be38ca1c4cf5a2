"""The log writer: appends hash-chained segments, buffered, off the per-op path."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import msgspec

from .. import ops as O
from ..errors import LogError
from ..fingerprint import SCHEME as FP_SCHEME
from .format import (
    ANY_JSON,
    FORMAT,
    FRAME,
    GENESIS,
    HEADER_JSON,
    HEADER_MSGPACK,
    LINK_LEN,
    MAX_FRAME,
    SUFFIX_HEAD,
    Header,
    Seal,
    file_hash,
    format_for,
    link,
    sniff,
    tail_token,
)

log = logging.getLogger("pairproxy.oplog")

#: Records encoded before the buffer is handed to the file.
_CHUNK = 8192

# --- writing -------------------------------------------------------------------------------


class LogWriter:
    """Appends records to a log file, chaining each to the entry before.

    Args:
        path: the log file; created if missing, appended to (as a new segment) if not.
        session: the session id recorded in the header.
        policy_hash / policy_path: the policy in force when the session started.
        notebook: the notebook the session serves; its content hash goes in the header.
        fsync: force every write to disk (slower; survives power loss).
        format: ``"json"`` or ``"msgpack"``; default from the file (existing) or suffix.
        mode: see `Header.mode`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, session: str, policy_hash: str = "",
        policy_path: str | None = None, notebook: str | None = None, fsync: bool = False,
        format: str | None = None, mode: str = "",
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._written = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+b")  # noqa: SIM115 - held open until close()
        try:
            _lock(f, self.path)
            size = f.seek(0, os.SEEK_END)
            after, dropped = "", 0
            if size:
                existing, after, dropped = _prepare_append(f, self.path, size)
                if format is not None and format != existing:
                    raise LogError(
                        f"{self.path}: is a {existing} log; cannot append {format} records to it",
                        path=str(self.path),
                    )
                format = existing
            self.format = format or format_for(self.path)
            if self.format not in ("json", "msgpack"):
                raise ValueError(f"log format must be 'json' or 'msgpack', not {self.format!r}")
        except BaseException:
            f.close()
            raise
        self._f: IO[bytes] | None = f
        self._enc: Any = msgspec.json.Encoder() if self.format == "json" else msgspec.msgpack.Encoder()
        header = Header(
            schema=O.SCHEMA_VERSION, pairproxy=_version(), python=platform.python_version(),
            session=session, marimo=_marimo_version(), notebook=notebook,
            notebook_hash=file_hash(notebook), policy_hash=policy_hash, created=time.time(),
            format=FORMAT, policy_path=policy_path, libs=_lib_versions(), mode=mode,
            after=after, dropped=dropped, fingerprints=FP_SCHEME,
        )
        self._prev = after or GENESIS
        self._emit([self._entry(header)])

    def _entry(self, obj: Any) -> bytes:
        canon = self._enc.encode(obj)
        self._prev = lk = link(self._prev, canon)
        if self.format == "json":
            return canon[:-1] + SUFFIX_HEAD + lk.encode() + b'"}\n'
        return FRAME.pack(len(canon), len(canon) ^ 0xFFFFFFFF) + canon + lk.encode()

    def _emit(self, chunks: list[bytes] | bytearray) -> None:
        f = self._f
        assert f is not None
        f.write(chunks if isinstance(chunks, bytearray) else b"".join(chunks))
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())

    @property
    def closed(self) -> bool:
        return self._f is None

    def write(self, records: list[O.Op]) -> None:
        """Append ``records[n:]``, where n is how many were written before; each written
        record is replaced in `records` by itself with ``prev`` set (the struct a reader
        gets back).  Thread-safe: the kernel and the owner's panel may both flush."""
        with self._lock:
            self._write(records)

    def _write(self, records: list[O.Op]) -> None:
        start = self._written
        end = len(records)
        if start >= end:
            return
        if self._f is None:
            log.warning("%s: log closed; %d records not written", self.path, end - start)
            self._written = end
            return
        enc = self._enc.encode
        replace = msgspec.structs.replace
        sha = hashlib.sha256
        prev = self._prev
        json = self.format == "json"
        pack = FRAME.pack
        f = self._f
        # Large batches go out in chunks: a bounded buffer, and whole entries only.
        prev_b = prev.encode()
        # One read of the new records (a session's `ops.Records` builds the ones its fast
        # path left unbuilt); each is put back with its link past the list's own hooks.
        batch = records[start:end]
        put = list.__setitem__
        for chunk in range(start, end, _CHUNK):
            out = bytearray()
            # The hot loop of the writer: one encode, one hash and one splice per record
            # (the link is kept as bytes too, so it is encoded once).
            for i in range(chunk, min(chunk + _CHUNK, end)):
                rec = batch[i - start]
                if rec.prev:
                    rec = replace(rec, prev="")
                canon = enc(rec)
                prev = sha(prev_b + canon).hexdigest()[:LINK_LEN]
                prev_b = prev.encode()
                if json:
                    out += canon[:-1]
                    out += SUFFIX_HEAD
                    out += prev_b
                    out += b'"}\n'
                else:
                    n = len(canon)
                    out += pack(n, n ^ 0xFFFFFFFF)
                    out += canon
                    out += prev_b
                put(records, i, replace(rec, prev=prev))
            f.write(out)
        self._emit(bytearray())
        self._prev = prev
        self._written = end

    def close(self, seal: bool = True) -> None:
        """Write the seal (unless `seal` is False) and close the file."""
        with self._lock:
            if self._f is None:
                return
            try:
                if seal:
                    self._emit([self._entry(Seal(records=self._written, t=time.time()))])
            finally:
                self._f.close()
                self._f = None


def finalize(membrane: Any, writer: LogWriter) -> None:
    """Write what a session recorded but did not flush, then seal: run by `Session` at
    interpreter exit or when the session is garbage-collected without `close()`."""
    if writer.closed:
        return
    try:
        membrane.fingerprint_pending()
        writer.write(membrane.records)
    finally:
        writer.close()


def _lock(f: IO[bytes], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LogError(
            f"{path}: another session is writing this op log; close it first or log to another file",
            path=str(path),
        ) from None


def _prepare_append(f: IO[bytes], path: Path, size: int) -> tuple[str, str, int]:
    """(format, after token, bytes dropped) for appending a segment to an existing log."""
    f.seek(0)
    first = f.read(8)
    if sniff(first) == "unknown":
        raise LogError(f"{path}:1: not a pairproxy op log; refusing to append to it", path=str(path), line=1)
    if first.startswith(b"{"):
        fmt = "json"
        f.seek(0)
        line = f.readline(1 << 24)
        if line.endswith(b"\n"):
            try:
                HEADER_JSON.decode(line[:-1])
            except (msgspec.DecodeError, UnicodeDecodeError):
                raise LogError(f"{path}:1: not a pairproxy op log (no log header); refusing to append to it",
                               path=str(path), line=1) from None
        end, last = _json_tail(f, size)
    else:
        fmt = "msgpack"
        end, last = _msgpack_tail(f, path, size)
    dropped = size - end if end <= size else 0
    if dropped:
        f.truncate(end)
        log.warning("%s: dropped a truncated last entry of %d bytes (a crash mid-write)", path, dropped)
    return fmt, (tail_token(last) if end else ""), dropped


def _json_tail(f: IO[bytes], size: int) -> tuple[int, bytes]:
    """(end of the last complete line, that line) of a JSON log.  A last line that only
    lacks its newline gets one; a cut-off one is left for the caller to drop."""
    want = 1 << 16
    while True:
        start = max(0, size - want)
        f.seek(start)
        buf = f.read(size - start)
        cut = buf.rfind(b"\n")
        if cut < 0 and start > 0:
            want *= 4
            continue
        remnant = buf[cut + 1:]
        if remnant:
            try:
                ANY_JSON.decode(remnant)
            except (msgspec.DecodeError, UnicodeDecodeError):
                pass  # a crash remnant
            else:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
                return size + 1, remnant
        end = start + cut + 1
        inner = buf[: max(cut, 0)]
        c2 = inner.rfind(b"\n")
        if c2 < 0 and start > 0:
            want *= 4
            continue
        return end, inner[c2 + 1:]


def _msgpack_tail(f: IO[bytes], path: Path, size: int) -> tuple[int, bytes]:
    pos = 0
    last = b""
    while pos < size:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            break
        n, check = FRAME.unpack(head)
        if n ^ 0xFFFFFFFF != check or n > MAX_FRAME:
            raise LogError(f"{path}: corrupt frame at byte {pos}; refusing to append (run `pairproxy log verify`)",
                           path=str(path))
        if pos + 8 + n + LINK_LEN > size:
            break
        body = f.read(n + LINK_LEN)
        if pos == 0:
            try:
                HEADER_MSGPACK.decode(body[:n])
            except (msgspec.DecodeError, UnicodeDecodeError):
                raise LogError(f"{path}: not a pairproxy op log (no log header); refusing to append to it",
                               path=str(path)) from None
        last = head + body
        pos += 8 + n + LINK_LEN
    return pos, last


def _version() -> str:
    from .. import __version__

    return __version__


def _marimo_version() -> str | None:
    mod = sys.modules.get("marimo")
    if mod is not None:
        return getattr(mod, "__version__", None)
    try:
        from importlib.metadata import version

        return version("marimo")
    except Exception:
        return None


def _lib_versions() -> dict[str, str]:
    out = {}
    for name in ("numpy", "pandas", "polars", "pyarrow"):
        mod = sys.modules.get(name)
        if mod is not None and isinstance(getattr(mod, "__version__", None), str):
            out[name] = mod.__version__
    return out


