"""Binary wire codecs: canonical schema records (``CATR``) and the shared typed errors.

Protocol frames (``CATF``) live in :mod:`catopt_dsl.sync.frame`; both are specified in
``docs/protocol.md``.
"""

from __future__ import annotations

from catopt_dsl.wire.errors import (
    BadMagicError,
    ChecksumError,
    EncodeError,
    LengthError,
    MalformedError,
    MissingFieldError,
    SchemaMismatchError,
    TooLargeError,
    TruncatedError,
    UnknownMessageTypeError,
    VersionError,
    WireError,
)
from catopt_dsl.wire.record import RECORD_FORMAT_VERSION, RECORD_MAGIC, decode_record, encode_record

__all__ = [
    "BadMagicError",
    "ChecksumError",
    "EncodeError",
    "LengthError",
    "MalformedError",
    "MissingFieldError",
    "RECORD_FORMAT_VERSION",
    "RECORD_MAGIC",
    "SchemaMismatchError",
    "TooLargeError",
    "TruncatedError",
    "UnknownMessageTypeError",
    "VersionError",
    "WireError",
    "decode_record",
    "encode_record",
]
