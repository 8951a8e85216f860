"""Typed errors raised by the binary codecs (schema records and protocol frames).

Every decoder in :mod:`catopt_dsl.wire` and :mod:`catopt_dsl.sync` raises only subclasses of
:class:`WireError` on bad input -- never ``IndexError``, ``struct.error``, ``MemoryError`` or
``UnicodeDecodeError`` -- so a receiver can drop a bad message with one ``except`` clause and
count *why* by class.
"""

from __future__ import annotations


class WireError(Exception):
    """Base class of every codec error."""


class TruncatedError(WireError):
    """The input ends before the structure it declares (a cut record or frame)."""


class ChecksumError(WireError):
    """The CRC32C trailer does not match the bytes before it (corruption in transit)."""


class BadMagicError(WireError):
    """The input does not start with the expected magic bytes (not a record / frame at all)."""


class VersionError(WireError):
    """A format or protocol version this codec does not speak."""


class LengthError(WireError):
    """A declared length disagrees with the input (e.g. trailing bytes after a frame)."""


class TooLargeError(LengthError):
    """A declared length exceeds the configured cap; refused before anything is allocated."""


class MalformedError(WireError):
    """Structurally invalid or non-canonical content (unknown dtype, bad UTF-8, unsorted names...)."""


class UnknownMessageTypeError(MalformedError):
    """A frame whose message-type byte names no known message."""


class SchemaMismatchError(WireError):
    """A record written for another schema, or a field whose dtype/shape contradicts the schema."""


class MissingFieldError(WireError):
    """A required field (one without a default) is absent."""


class EncodeError(WireError):
    """A value handed to an encoder cannot be represented (wrong dtype, shape, range, unknown name)."""
