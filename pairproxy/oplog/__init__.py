"""Append-only op log: hash-chained JSON lines (or msgpack frames); writer, reader, verify.

Layout.  A log is one or more *segments*, one per session that wrote to the file.  A
segment is a `Header`, the session's records in order, and, when the session closed
cleanly, a `Seal`.  JSON logs hold one JSON object per line; msgpack logs hold frames
``[length u32][~length u32][msgpack payload][16-byte link]`` (big-endian; the length is
stored twice so a damaged length is told apart from a cut-off tail).

Chain (format 2).  Every entry (header, record, seal) carries ``prev``: its *own* link,

    link = sha256(previous link || canonical bytes)[:16 hex digits]

where the canonical bytes are the entry encoded without ``prev`` and the previous link
is that of the entry before it in the segment.  A segment's header starts from its
``after`` field: ``""`` (read as `GENESIS`) for the first segment of a file, and for a
segment appended later the `tail_token` of the file's last complete line, so segments
are bound to each other too.  In JSON the link is spliced in as the last key
(``...,"prev":"<link>"}``), so the canonical bytes are the line minus that suffix; in
msgpack it is the frame's trailer.  Consequences: a changed byte is caught on its own
line (also on the last line of a crashed log); a deleted, inserted or moved record
breaks ``seq`` order and the next link; a cut-off end of a closed segment no longer
matches its seal (a removed seal itself reads as a session that did not close, which
`verify` notes).  The chain is tamper-*evident* against accidents and naive edits;
someone able to rewrite the file can recompute every link, so keep a copy of the last
link elsewhere when that matters.

Format 1 (logs written by pairproxy before the chain above) had ``prev`` name the link
*before* the record, ``link = sha256(prev || line)``; it is still read and verified
(there, a changed last record is only caught by a later record).

Durability.  Records are buffered in the session and written by `LogWriter.write` at
the end of every agent execution (encoding and hashing happen there, never per op), at
`Session.close` and at interpreter exit.  A crash loses at most the line being written;
readers skip such a truncated last line and say so (`LogReader.truncated`).  Opening an
existing log for appending cuts off such a remnant and records its size in the new
header (``dropped``).  One writer at a time: the file is locked while a session writes.

Modules: `format` (entries, links, decoding), `writer`, `reader`, `verify`.
"""

from .format import (
    FORMAT,
    GENESIS,
    LINK_LEN,
    Header,
    Seal,
    Truncation,
    format_for,
    link,
    sniff,
    tail_token,
)
from .reader import LogReader, read_header, read_log
from .verify import Problem, Verification, require_verified, verify
from .writer import LogWriter, finalize

__all__ = [
    "FORMAT", "GENESIS", "LINK_LEN", "Header", "LogReader", "LogWriter", "Problem", "Seal",
    "Truncation", "Verification", "finalize", "format_for", "link", "read_header", "read_log",
    "require_verified", "sniff", "tail_token", "verify",
]
