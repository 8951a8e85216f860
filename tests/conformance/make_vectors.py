"""Golden wire vectors for the schema record format, produced by the Python runtime.

``python tests/conformance/make_vectors.py`` rewrites ``tests/conformance/vectors/`` (one ``.bin``
per vector plus ``index.json``); ``test_conformance_vectors.py`` fails when the checked-in files
differ from what this module builds, and the native tests decode every vector with the generated
Rust and C++ code.

Vectors, for every schema version of every example (``examples/*.cat``) and of the test-only
``edge_schemas.cat`` (NaN payloads, infinities, -0.0, subnormals, int64 extremes, 0-length and 2-d
arrays, a version that appends defaulted fields, a schema with no fields):

* ``sample``: a record of the version, decoded by the same version (must re-encode identically);
* ``defaults``: a record written with only the required fields set (defaults filled in);
* ``as_vN``: a record of one version decoded by another version of the same schema; ``output``
  is what the reader re-encodes (defaults filled in, or appended fields dropped);
* rejections: truncated, bit-flipped, bad magic, trailing byte, another schema's record, and
  non-canonical content with a valid CRC (bool byte 2, flags, format version, dtype code,
  unsorted or skipped indices, a field count the version cannot have, a bool byte 2 in a field
  the reader skips). ``error`` names the Python ``WireError`` class minus ``Error``.

Frame vectors (``vectors/frames/``, ``wire_corpus.frame_cases``): one frame per rule of the frame
format -- every message type and dtype, then each header check, length lie and payload rule --
each with what every decoder must say about it (``ok``: it re-encodes to itself).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors"
EDGE_SPEC = HERE / "edge_schemas.cat"

if str(ROOT) not in sys.path:  # running as a script from a checkout
    sys.path.insert(0, str(ROOT))

from catopt_dsl.compile import load_plan  # noqa: E402
from catopt_dsl.ir.model import IRSchema, IRSchemaField  # noqa: E402
from catopt_dsl.wire import errors as wire_errors  # noqa: E402
from catopt_dsl.wire.record import decode_record, encode_record  # noqa: E402
from wire_corpus import MAX_PAYLOAD, frame_cases, frame_outcome  # noqa: E402

FRAME_VECTORS = VECTORS / "frames"


def spec_files() -> list[Path]:
    """The specs whose schemas get vectors: every example, then the edge-case spec."""
    return sorted((ROOT / "examples").glob("*.cat")) + [EDGE_SPEC]


def collect_schemas() -> list[IRSchema]:
    """Every schema version, once per key, in spec then declaration order (deltas included)."""
    from catopt_dsl.backends.common import all_schemas

    seen: dict[str, IRSchema] = {}
    for path in spec_files():
        for s in all_schemas(load_plan(path)):
            seen.setdefault(s.key, s)
    return list(seen.values())


def _f64(bits: int) -> np.float64:
    return np.array([bits], dtype="<u8").view("<f8")[0]


_SPECIAL_F64 = [
    float("inf"),
    float("-inf"),
    -0.0,
    5e-324,  # smallest subnormal
    1.7976931348623157e308,
    _f64(0x7FF0_0000_0000_0001),  # signalling NaN with a payload
    _f64(0xFFF8_0000_DEAD_BEEF),  # negative quiet NaN with a payload
    float("nan"),
]
_SPECIAL_I64 = [-(2**63), 2**63 - 1, -1, 0, 1]


def sample_value(field: IRSchemaField, salt: int) -> np.ndarray:
    """Deterministic values that walk through the special values of the field's dtype."""
    size = int(np.prod(field.shape, dtype=np.int64)) if field.shape else 1
    if field.dtype == "float":
        flat = np.array([_SPECIAL_F64[(salt + k) % len(_SPECIAL_F64)] for k in range(size)], dtype="<f8")
    elif field.dtype == "int":
        flat = np.array([_SPECIAL_I64[(salt + k) % len(_SPECIAL_I64)] for k in range(size)], dtype="<i8")
    else:
        flat = np.array([(salt + k) % 3 != 1 for k in range(size)], dtype=np.bool_)
    return flat.reshape(field.shape)


def sample_values(schema: IRSchema) -> dict[str, Any]:
    return {f.name: sample_value(f, 3 * i + schema.version) for i, f in enumerate(schema.fields)}


def _error_name(exc: Exception) -> str:
    name = type(exc).__name__
    # TooLargeError / UnknownMessageTypeError are frame-only; records raise the classes below.
    return name.removesuffix("Error")


def _refresh_crc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", crc32c.crc32c(body))


def _field_offsets(data: bytes) -> list[tuple[int, int, int]]:
    """(header offset, dtype code, data offset) of each field in a well-formed record."""
    (name_len,) = struct.unpack_from("<H", data, 6)
    pos = 8 + name_len
    _version, count = struct.unpack_from("<IH", data, pos)
    pos += 6
    out = []
    for _ in range(count):
        _index, code, ndim = struct.unpack_from("<HBB", data, pos)
        dims = struct.unpack_from("<" + "I" * ndim, data, pos + 4)
        size = {1: 8, 2: 8, 3: 1}[code] * int(np.prod(dims, dtype=np.int64))
        out.append((pos, code, pos + 4 + 4 * ndim))
        pos += 4 + 4 * ndim + size
    return out


def build_vectors() -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The index entries and the file contents (deterministic)."""
    schemas = collect_schemas()
    entries: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}

    def add(vid: str, data: bytes, reader: IRSchema, note: str) -> None:
        file = f"{vid}.bin"
        files[file] = data
        entry: dict[str, Any] = {
            "id": vid,
            "file": file,
            "schema": reader.name,
            "version": reader.version,
            "note": note,
        }
        try:
            decoded = decode_record(reader, data)
        except wire_errors.WireError as exc:
            entry.update(expect="error", error=_error_name(exc))
        else:
            out = encode_record(reader, decoded)
            if out == data:
                entry.update(expect="ok", output=file)
            else:
                files[f"{vid}.out.bin"] = out
                entry.update(expect="ok", output=f"{vid}.out.bin")
        entries.append(entry)

    samples: dict[str, bytes] = {}
    for s in schemas:
        base = f"{s.name}_v{s.version}"
        data = encode_record(s, sample_values(s))
        samples[s.key] = data
        add(f"{base}_sample", data, s, "every field set (special values)")
        if any(f.default is not None for f in s.fields):
            required = {
                k: v
                for k, v in sample_values(s).items()
                if s.fields[[f.name for f in s.fields].index(k)].default is None
            }
            add(f"{base}_defaults", encode_record(s, required), s, "only required fields given; defaults encoded")

    for s in schemas:
        for other in schemas:
            if other.name == s.name and other.version != s.version:
                add(
                    f"{s.name}_v{s.version}_as_v{other.version}",
                    samples[s.key],
                    other,
                    f"a v{s.version} record read by v{other.version}",
                )

    for s in schemas:
        base = f"{s.name}_v{s.version}"
        data = samples[s.key]
        n = len(data)
        for cut in sorted({0, 3, 17, n // 2, n - 5, n - 1}):
            if 0 <= cut < n:
                add(f"{base}_cut{cut}", data[:cut], s, f"truncated to {cut} bytes")
        flipped = bytearray(data)
        flipped[n // 2] ^= 0x10
        add(f"{base}_flip", bytes(flipped), s, "one bit flipped in the middle")
        add(f"{base}_magic", b"CATX" + data[4:], s, "bad magic")
        add(f"{base}_trailing", data + b"\x00", s, "one byte after the CRC")
        add(f"{base}_flags", _refresh_crc(data[:5] + b"\x01" + data[6:]), s, "non-zero flags, valid CRC")
        add(f"{base}_format2", _refresh_crc(data[:4] + b"\x02" + data[5:]), s, "format version 2, valid CRC")
        fields = _field_offsets(data)
        if fields:
            pos, _code, _ = fields[0]
            add(
                f"{base}_dtype9",
                _refresh_crc(data[: pos + 2] + b"\x09" + data[pos + 3 :]),
                s,
                "unknown dtype code, valid CRC",
            )
        if len(fields) >= 2:
            pos, _code, _ = fields[1]
            add(
                f"{base}_unsorted",
                _refresh_crc(data[:pos] + b"\x00\x00" + data[pos + 2 :]),
                s,
                "field index repeated, valid CRC",
            )
        bools = [d for (_p, code, d) in fields if code == 3]
        if bools:
            bad = bytearray(data)
            bad[bools[0]] = 2
            add(f"{base}_bool2", _refresh_crc(bytes(bad)), s, "bool byte 2, valid CRC")
        if len(fields) >= 2:
            pos, _code, _ = fields[1]
            add(
                f"{base}_gap",
                _refresh_crc(data[:pos] + struct.pack("<H", 2) + data[pos + 2 :]),
                s,
                "field index 1 skipped (fields 0, 2, ...), valid CRC",
            )
        if fields:
            pos, _code, _ = fields[-1]
            (name_len,) = struct.unpack_from("<H", data, 6)
            count_at = 8 + name_len + 4
            dropped = data[:count_at] + struct.pack("<H", len(fields) - 1) + data[count_at + 2 : pos] + data[-4:]
            add(f"{base}_dropped", _refresh_crc(dropped), s, "the last field left out, valid CRC")
        others = [o for o in schemas if o.name != s.name]
        if others:
            add(f"{base}_foreign", samples[others[0].key], s, f"a record of schema {others[0].name}")
    for s in schemas:
        older = [o for o in schemas if o.name == s.name and o.version < s.version]
        fields = _field_offsets(samples[s.key])
        appended = [d for (_p, code, d) in fields[len(older[0].fields) :] if code == 3] if older else []
        if appended:
            bad = bytearray(samples[s.key])
            bad[appended[0]] = 2
            add(
                f"{s.name}_v{s.version}_bool2_as_v{older[0].version}",
                _refresh_crc(bytes(bad)),
                older[0],
                f"bool byte 2 in a field v{older[0].version} skips, valid CRC",
            )
    return entries, files


def build_frame_vectors() -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The frame vectors' index entries and file contents (deterministic)."""
    entries: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    for vid, data, note in frame_cases():
        file = f"{vid}.bin"
        files[file] = data
        outcome = frame_outcome(data)
        entry: dict[str, Any] = {"id": vid, "file": file, "note": note}
        entry.update(expect="ok") if outcome == "ok" else entry.update(expect="error", error=outcome)
        entries.append(entry)
    return entries, files


def frame_index_text(entries: list[dict[str, Any]]) -> str:
    body = {"format": "catopt frame vectors", "max_payload": MAX_PAYLOAD, "vectors": entries}
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def index_text(entries: list[dict[str, Any]]) -> str:
    return json.dumps({"format": "catopt record vectors", "vectors": entries}, indent=1, sort_keys=True) + "\n"


def write(folder: Path, files: dict[str, bytes], index: str) -> None:
    """Replace the vectors in ``folder`` (stale ``.bin`` files removed) and their index."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.bin"):
        old.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "index.json").write_text(index, encoding="utf-8", newline="\n")


def main() -> None:
    entries, files = build_vectors()
    write(VECTORS, files, index_text(entries))
    print(f"wrote {len(entries)} record vectors ({len(files)} files) to {VECTORS}")
    frames, frame_files = build_frame_vectors()
    write(FRAME_VECTORS, frame_files, frame_index_text(frames))
    print(f"wrote {len(frames)} frame vectors to {FRAME_VECTORS}")


if __name__ == "__main__":
    main()
