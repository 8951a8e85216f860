"""The ledger file: an append-only sequence of length-prefixed, checksummed records.

Layout (little-endian)::

    file header (8 bytes): magic "CATL" | u8 format version (1) | 3 zero bytes
    record:                magic "CATE" | u32 L | payload (L bytes) | u32 CRC32C(magic | L | payload)

Each append builds the whole record in memory, writes it at the end of the file under an
exclusive ``flock`` (so concurrent writers never interleave) and ``fsync``\\s before returning:
once ``append`` returns, the entry survives a crash. A crash *during* an append can only leave a
prefix of that one record behind (or, on some file systems, zero bytes where it was going). The
scanner tells the two kinds of damage apart:

* **torn tail** -- the bytes after the last good record are a cut-off record (shorter than its
  declared length, or shorter than a record header) or zeros, and no good record follows: an
  interrupted append. Every earlier record is intact. It is reported; :func:`recover_torn_tail`
  moves those bytes to ``<file>.torn-<offset>`` (nothing is thrown away) and truncates.
* **damaged record** -- a complete record that fails its checksum, or bad bytes with good records
  after them: corruption, not a crash. It is reported with the entry's index and offset, and the
  ledger refuses to append until a person looks at it.

The record magic lets the scanner find the next good record after a damaged one, so one bad
record never hides the entries after it.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

__all__ = [
    "FILE_HEADER",
    "FILE_MAGIC",
    "MAX_PAYLOAD",
    "RECORD_MAGIC",
    "Damage",
    "LedgerFileError",
    "Scan",
    "TornTail",
    "append_records",
    "create_file",
    "encode_record",
    "locked",
    "recover_torn_tail",
    "scan",
]

FILE_MAGIC = b"CATL"
FORMAT_VERSION = 1
FILE_HEADER = FILE_MAGIC + bytes([FORMAT_VERSION, 0, 0, 0])
RECORD_MAGIC = b"CATE"
_LEN = struct.Struct("<I")
_CRC = struct.Struct("<I")
_OVERHEAD = len(RECORD_MAGIC) + _LEN.size + _CRC.size  # 12
#: largest payload a record may declare (an entry is a few hundred bytes; this is generous)
MAX_PAYLOAD = 16 * 1024 * 1024


class LedgerFileError(ValueError):
    """The file is not a ledger (bad header), or cannot be read or written."""


@dataclass(frozen=True)
class TornTail:
    """Bytes after the last good record left by an interrupted append."""

    offset: int
    length: int
    index: int  # the entry index the interrupted append was writing

    def describe(self) -> str:
        return (
            f"entry {self.index}: an interrupted append left {self.length} bytes at offset {self.offset} "
            f"(a torn write; every earlier entry is intact)"
        )


@dataclass(frozen=True)
class Damage:
    """A record that is present but corrupt."""

    index: int
    offset: int
    reason: str

    def describe(self) -> str:
        return f"entry {self.index} (offset {self.offset}): {self.reason}"


@dataclass
class Scan:
    """What :func:`scan` found: good payloads with their offsets, and any damage."""

    payloads: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    end: int = len(FILE_HEADER)  # offset just after the last good record (where appends go)
    torn: TornTail | None = None
    damage: list[Damage] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.torn is None and not self.damage


def encode_record(payload: bytes) -> bytes:
    """One record's bytes."""
    if not payload or len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a record payload is 1..{MAX_PAYLOAD} bytes, got {len(payload)}")
    head = RECORD_MAGIC + _LEN.pack(len(payload))
    return head + payload + _CRC.pack(crc32c.crc32c(payload, value=crc32c.crc32c(head)))


def _parse_at(buf: memoryview, pos: int) -> tuple[bytes, int] | str:
    """``(payload, next offset)`` for a good record at ``pos``, else why it is not one."""
    size = len(buf)
    if size - pos < _OVERHEAD:
        return "incomplete record header"
    if bytes(buf[pos : pos + 4]) != RECORD_MAGIC:
        return "bad record magic"
    (length,) = _LEN.unpack_from(buf, pos + 4)
    if not 0 < length <= MAX_PAYLOAD:
        return f"impossible record length {length}"
    end = pos + 8 + length + _CRC.size
    if end > size:
        return f"record of {length} bytes runs past the end of the file"
    (stored,) = _CRC.unpack_from(buf, end - _CRC.size)
    if crc32c.crc32c(buf[pos : end - _CRC.size]) != stored:
        return "checksum mismatch: the record's bytes were changed"
    return bytes(buf[pos + 8 : end - _CRC.size]), end


def _next_good(data: bytes, buf: memoryview, start: int) -> int | None:
    """The offset of the next good record after ``start`` (found by its magic), if any."""
    pos = data.find(RECORD_MAGIC, start + 1)
    while pos != -1:
        if not isinstance(_parse_at(buf, pos), str):
            return pos
        pos = data.find(RECORD_MAGIC, pos + 1)
    return None


def _is_torn(buf: memoryview, pos: int) -> bool:
    """Is the tail from ``pos`` (with no good record after it) a cut-off record or zero fill?"""
    tail = bytes(buf[pos:])
    if not tail.strip(b"\0"):
        return True  # zeros where the record was going (the size grew, the data did not land)
    if len(tail) < _OVERHEAD:
        return RECORD_MAGIC.startswith(tail[:4])
    if tail[:4] != RECORD_MAGIC:
        return False
    (length,) = _LEN.unpack_from(tail, 4)
    return len(tail) < 8 + length + _CRC.size  # shorter than the record it declares


def scan(data: bytes) -> Scan:
    """Parse a whole ledger file's bytes. Raises :class:`LedgerFileError` for a bad file header."""
    if len(data) < len(FILE_HEADER):
        if FILE_HEADER.startswith(data):
            raise LedgerFileError("the file is shorter than a ledger header (an interrupted create?)")
        raise LedgerFileError("not a catopt ledger (no CATL header)")
    if data[:4] != FILE_MAGIC:
        raise LedgerFileError("not a catopt ledger (no CATL header)")
    if data[4] != FORMAT_VERSION:
        raise LedgerFileError(f"ledger format version {data[4]} is not supported (this catoptc reads {FORMAT_VERSION})")
    if data[5:8] != b"\0\0\0":
        raise LedgerFileError("the ledger header's reserved bytes are not zero (the header was changed)")
    buf = memoryview(data)
    out = Scan()
    pos = len(FILE_HEADER)
    while pos < len(data):
        got = _parse_at(buf, pos)
        if not isinstance(got, str):
            out.payloads.append(got[0])
            out.offsets.append(pos)
            pos = got[1]
            if not out.damage:
                out.end = pos  # appends go after the last good record before any damage
            continue
        resume = _next_good(data, buf, pos)
        # Each damaged stretch is counted as one entry; later entries still carry their own index.
        index = len(out.payloads) + len(out.damage)
        if resume is None and not out.damage and _is_torn(buf, pos):
            out.torn = TornTail(pos, len(data) - pos, index)
            break
        out.damage.append(Damage(index, pos, got))
        if resume is None:
            break
        pos = resume  # read (and later verify) the entries after the damage too
    return out


def create_file(path: Path) -> None:
    """Create an empty ledger (header only); never replaces an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise LedgerFileError(f"{path} already exists") from None
    except OSError as exc:
        raise LedgerFileError(f"cannot create {path}: {exc.strerror}") from None
    try:
        _write_all(fd, FILE_HEADER)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    # A new file's directory entry is only durable once the directory itself is synced.
    try:
        dfd = os.open(path.resolve().parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


@contextmanager
def locked(path: Path) -> Iterator[int]:
    """An O_RDWR descriptor on the ledger holding an exclusive ``flock`` for the block."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise LedgerFileError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def read_locked(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def append_records(fd: int, at: int, payloads: Sequence[bytes]) -> int:
    """Write ``payloads`` as records at offset ``at`` (the end of the good records); fsync.

    Returns the new end. The caller holds the lock and has checked that ``at`` is the file size.
    """
    blob = b"".join(encode_record(p) for p in payloads)
    os.lseek(fd, at, os.SEEK_SET)
    _write_all(fd, blob)
    os.fsync(fd)
    return at + len(blob)


def recover_torn_tail(path: Path, fd: int, torn: TornTail) -> Path:
    """Move an interrupted append's bytes to ``<path>.torn-<offset>`` and truncate them away."""
    data = os.pread(fd, torn.length, torn.offset)
    aside = path.with_name(f"{path.name}.torn-{torn.offset}")
    n = 0
    while aside.exists():  # never overwrite an earlier copy
        n += 1
        aside = path.with_name(f"{path.name}.torn-{torn.offset}.{n}")
    aside.write_bytes(data)
    os.ftruncate(fd, torn.offset)
    os.fsync(fd)
    return aside
