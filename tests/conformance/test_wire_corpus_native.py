"""Fuzzing the decoders of all three languages with one corpus: the generated Rust and C++ frame and
record decoders give, for every input of wire_corpus.py (valid, mutated, truncated, length-lying,
CRC-valid garbage), the outcome Python gives -- accepted (frames re-encoding to themselves, records
re-encoding to the same bytes) or rejected with the same error kind; never a crash (the C++ program
runs under AddressSanitizer + UndefinedBehaviorSanitizer)."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest
from make_vectors import EDGE_SPEC, sample_values
from nativetools import build_rust, missing_tools, run
from wire_corpus import (
    MAX_PAYLOAD,
    frame_corpus,
    frame_outcome,
    record_corpus,
    record_outcome,
)

from catopt_dsl.backends import cpp as cpp_backend
from catopt_dsl.backends import rust as rust_backend
from catopt_dsl.backends.common import all_schemas
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan, IRSchema
from catopt_dsl.wire.record import encode_record

PLAN: IRPlan = load_plan(EDGE_SPEC)


def _frames() -> list[tuple[str, bytes]]:
    return [(group, data) for group, items in frame_corpus(seed=1, mutants=120).items() for data in items]


def _records() -> list[tuple[IRSchema, bytes]]:
    samples = [(s, encode_record(s, sample_values(s))) for s in all_schemas(PLAN)]
    return record_corpus(samples, seed=1, mutants=150)


def write_corpus(folder: Path) -> tuple[Path, Path, list[str], list[str]]:
    """The corpus files the native programs read, and what Python says about each input."""
    frames, records = _frames(), _records()
    frames_bin = folder / "frames.bin"
    frames_bin.write_bytes(b"".join(struct.pack("<I", len(d)) + d for _, d in frames))
    records_bin = folder / "records.bin"
    records_bin.write_bytes(
        b"".join(
            struct.pack("<IH", r.version, len(r.name.encode())) + r.name.encode() + struct.pack("<I", len(d)) + d
            for r, d in records
        )
    )
    return frames_bin, records_bin, [frame_outcome(d) for _, d in frames], [record_outcome(r, d) for r, d in records]


def rust_program(frames_bin: Path, records_bin: Path, out: Path) -> str:
    crate = rust_backend.crate_name(PLAN)
    lit = rust_backend.rust_str
    return f"""use {crate}::runtime as rt;
use {crate}::schemas;

fn u32_at(b: &[u8], at: usize) -> usize {{
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}}

fn hex(b: &[u8]) -> String {{
    b.iter().map(|x| format!("{{:02x}}", x)).collect()
}}

#[test]
fn corpus() {{
    let frames = std::fs::read({lit(str(frames_bin))}).unwrap();
    let mut out = String::new();
    let mut pos = 0;
    while pos < frames.len() {{
        let n = u32_at(&frames, pos);
        let data = &frames[pos + 4..pos + 4 + n];
        pos += 4 + n;
        out += &match rt::Frame::decode(data, {MAX_PAYLOAD}) {{
            Ok(f) if f.encode().ok().as_deref() == Some(data) => "ok".to_string(),
            Ok(_) => "noncanonical".to_string(),
            Err(e) => format!("{{:?}}", e.kind),
        }};
        out.push('\\n');
    }}
    std::fs::write({lit(str(out) + ".frames")}, &out).unwrap();
    let records = std::fs::read({lit(str(records_bin))}).unwrap();
    let mut out = String::new();
    let mut pos = 0;
    while pos < records.len() {{
        let version = u32_at(&records, pos) as u32;
        let name_len = (records[pos + 4] as usize) | ((records[pos + 5] as usize) << 8);
        let name = std::str::from_utf8(&records[pos + 6..pos + 6 + name_len]).unwrap();
        pos += 6 + name_len;
        let n = u32_at(&records, pos);
        let data = &records[pos + 4..pos + 4 + n];
        pos += 4 + n;
        out += &match schemas::reencode(name, version, data) {{
            Ok(bytes) => format!("ok {{}}", hex(&bytes)),
            Err(e) => format!("{{:?}}", e.kind),
        }};
        out.push('\\n');
    }}
    std::fs::write({lit(str(out) + ".records")}, &out).unwrap();
}}
"""


CPP_PROGRAM = r"""#include "__STEM__.hpp"
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>

namespace rt = ::__NS__::rt;

namespace {
rt::Bytes read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    return rt::Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Reads the corpus files: little-endian u32 / u16 fields and length-prefixed byte strings.
struct Reader {
    const rt::Bytes& b;
    std::size_t pos = 0;
    bool done() const { return pos >= b.size(); }
    std::size_t uint(int bytes) {
        std::size_t v = 0;
        for (int k = 0; k < bytes; ++k) v |= static_cast<std::size_t>(b[pos++]) << (8 * k);
        return v;
    }
    rt::Bytes bytes(std::size_t n) {
        const auto at = b.begin() + static_cast<std::ptrdiff_t>(pos);
        pos += n;
        return rt::Bytes(at, at + static_cast<std::ptrdiff_t>(n));
    }
};

std::string hex(const rt::Bytes& b) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::uint8_t x : b) {
        out += digits[x >> 4];
        out += digits[x & 15];
    }
    return out;
}

/// What `decode` says, its error kind, or "crash" for anything but rt::WireError.
std::string outcome(const std::function<std::string()>& decode) {
    try {
        return decode();
    } catch (const rt::WireError& e) {
        return rt::kind_name(e.kind());
    } catch (...) {
        return "crash";
    }
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) return 2;
    const rt::Bytes frames = read_file(argv[1]);
    std::ofstream frames_out(std::string(argv[3]) + ".frames");
    for (Reader rd{frames}; !rd.done();) {
        const rt::Bytes data = rd.bytes(rd.uint(4));
        frames_out << outcome([&] {
            return rt::Frame::decode(data.data(), data.size(), __MAX__u).encode() == data ? "ok" : "noncanonical";
        }) << "\n";
    }
    const rt::Bytes records = read_file(argv[2]);
    std::ofstream records_out(std::string(argv[3]) + ".records");
    for (Reader rd{records}; !rd.done();) {
        const std::uint32_t version = static_cast<std::uint32_t>(rd.uint(4));
        const rt::Bytes name = rd.bytes(rd.uint(2));
        const rt::Bytes data = rd.bytes(rd.uint(4));
        records_out << outcome([&] {
            return "ok " + hex(::__NS__::schemas::reencode(std::string(name.begin(), name.end()), version, data));
        }) << "\n";
    }
    std::printf("CATOPT CORPUS done\n");
    return 0;
}
"""


def compare(language: str, got: list[str], want: list[str], labels: list[str]) -> None:
    assert len(got) == len(want), f"{language}: {len(got)} outcomes for {len(want)} inputs"
    wrong = [(labels[i], want[i][:40], got[i][:40]) for i in range(len(want)) if got[i] != want[i]]
    assert not wrong, f"{language} disagrees with Python on {len(wrong)} of {len(want)} inputs: {wrong[:10]}"


def check_outputs(language: str, out: Path, frames_want: list[str], records_want: list[str]) -> None:
    frames_got = Path(str(out) + ".frames").read_text(encoding="utf-8").splitlines()
    records_got = Path(str(out) + ".records").read_text(encoding="utf-8").splitlines()
    compare(language, frames_got, frames_want, [group for group, _ in _frames()])
    compare(language, records_got, records_want, [f"{r.key}" for r, _ in _records()])
    # the corpus reached every kind of outcome (else the comparison proves little)
    kinds = Counter(line.split(" ")[0] for line in frames_want + records_want)
    assert {"ok", "Truncated", "Malformed", "Checksum", "Length", "TooLarge", "SchemaMismatch"} <= set(kinds), kinds


@pytest.mark.slow
def test_rust_decoders_agree_with_python_on_the_corpus(tmp_path: Path) -> None:
    if missing_tools("cargo"):
        pytest.skip("cargo is not installed")
    frames_bin, records_bin, frames_want, records_want = write_corpus(tmp_path)
    out = tmp_path / "rust"
    program = rust_program(frames_bin, records_bin, out)
    build_rust(PLAN, tmp_path / "crate", tmp_path / "target", {"tests/corpus.rs": program})
    check_outputs("Rust", out, frames_want, records_want)


@pytest.mark.slow
def test_cpp_decoders_agree_with_python_on_the_corpus_under_sanitizers(tmp_path: Path) -> None:
    if missing_tools("g++"):
        pytest.skip("g++ is not installed")
    frames_bin, records_bin, frames_want, records_want = write_corpus(tmp_path)
    src = tmp_path / "src"
    cpp_backend.emit_cpp(PLAN, src)
    stem = cpp_backend.file_stem(PLAN)
    program = CPP_PROGRAM.replace("__STEM__", stem).replace("__NS__", cpp_backend.namespace(PLAN))
    (tmp_path / "corpus.cpp").write_text(program.replace("__MAX__", str(MAX_PAYLOAD)), encoding="utf-8")
    exe = tmp_path / "corpus"
    sanitize = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    strict = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    sources = [src / "catopt_runtime.cpp", src / f"{stem}.cpp", tmp_path / "corpus.cpp"]
    run(["g++", *strict, *sanitize, "-I", str(src), *map(str, sources), "-o", str(exe)], tmp_path)
    out = tmp_path / "cpp"
    env = {"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    assert "CATOPT CORPUS done" in run([str(exe), str(frames_bin), str(records_bin), str(out)], tmp_path, env=env)
    check_outputs("C++", out, frames_want, records_want)
