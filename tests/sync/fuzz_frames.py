"""Atheris (libFuzzer) harness for the frame and message decoders.

Run directly: ``python tests/sync/fuzz_frames.py -max_total_time=60``. Any exception other than a
WireError, or a decoded frame that does not re-encode to the same bytes, is a crash.
"""

from __future__ import annotations

import struct
import sys

import atheris
import crc32c
import numpy  # noqa: F401  -- imported first so that only catopt_dsl gets instrumented

with atheris.instrument_imports():
    from catopt_dsl.sync.frame import decode_frame, encode_frame
    from catopt_dsl.sync.messages import decode_message
    from catopt_dsl.wire.errors import WireError


def test_one_input(data: bytes) -> None:
    # Half the inputs get a valid CRC trailer so the fuzzer reaches the payload parser.
    if data and data[0] & 1 and len(data) > 5:
        body = data[1:-4]
        data = body + struct.pack("<I", crc32c.crc32c(body))
    try:
        frame = decode_frame(data, max_payload=1 << 16)
    except WireError:
        return
    if encode_frame(frame) != data:
        raise AssertionError("accepted a non-canonical frame")
    try:
        decode_message(data, max_payload=1 << 16)
    except WireError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
