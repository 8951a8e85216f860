"""Acceptance 3 (native half): the generated Rust and C++ decoders agree with the Python runtime
on every golden vector: a good record decodes and re-encodes byte-identically (or to the expected
bytes when read by another version), and every bad one is rejected with the same error kind as
Python's. Every truncation and every bit flip of each good vector must also be an error, never a
crash; the C++ program runs under AddressSanitizer + UndefinedBehaviorSanitizer. The golden frame
vectors (vectors/frames/) are decoded the same way: a good frame re-encodes to itself, a bad one
gets Python's error kind.

The vectors are grouped by a spec that declares their schemas (gpu_fleet carries Allocation and
ComputeUsage, plan_deltas carries Usage, edge_schemas.cat carries Edge and Empty)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from make_vectors import EDGE_SPEC, FRAME_VECTORS, VECTORS
from nativetools import ROOT, build_rust, missing_tools, run

from catopt_dsl.backends import cpp as cpp_backend
from catopt_dsl.backends import rust as rust_backend
from catopt_dsl.backends.common import all_schemas
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan

CARRIERS = [ROOT / "examples" / "gpu_fleet.cat", ROOT / "examples" / "plan_deltas.cat", EDGE_SPEC]


def _index() -> list[dict[str, object]]:
    return json.loads((VECTORS / "index.json").read_text(encoding="utf-8"))["vectors"]


def _groups() -> dict[Path, tuple[IRPlan, list[dict[str, object]]]]:
    plans = {spec: load_plan(spec) for spec in CARRIERS}
    groups: dict[Path, tuple[IRPlan, list[dict[str, object]]]] = {spec: (plans[spec], []) for spec in CARRIERS}
    for e in _index():
        for spec in CARRIERS:
            if any(s.name == e["schema"] and s.version == e["version"] for s in all_schemas(plans[spec])):
                groups[spec][1].append(e)
                break
        else:  # pragma: no cover - a new example schema needs a carrier here
            raise AssertionError(f"no carrier spec declares {e['schema']} v{e['version']}")
    return groups


GROUPS = _groups()


def _cases(entries: list[dict[str, object]]) -> list[tuple[str, str, int, str, str, str]]:
    out = []
    for e in entries:
        data = (VECTORS / str(e["file"])).read_bytes().hex()
        expect = "ok" if e["expect"] == "ok" else str(e["error"])
        output = (VECTORS / str(e["output"])).read_bytes().hex() if e["expect"] == "ok" else ""
        out.append((str(e["id"]), str(e["schema"]), int(e["version"]), data, expect, output))  # type: ignore[arg-type]
    return out


def _frame_cases() -> tuple[int, list[tuple[str, str, str]]]:
    """The frame vectors as (id, input hex, "ok" or the error kind), and their payload cap."""
    index = json.loads((FRAME_VECTORS / "index.json").read_text(encoding="utf-8"))
    cases = [
        (str(e["id"]), (FRAME_VECTORS / str(e["file"])).read_bytes().hex(), "ok" if e["expect"] == "ok" else str(e["error"]))
        for e in index["vectors"]
    ]
    return int(index["max_payload"]), cases


def rust_conformance(plan: IRPlan, entries: list[dict[str, object]]) -> str:
    crate = rust_backend.crate_name(plan)
    rows = ",\n".join(
        f'    ({rust_backend.rust_str(i)}, {rust_backend.rust_str(s)}, {v}, "{d}", "{x}", "{o}")'
        for i, s, v, d, x, o in _cases(entries)
    )
    max_payload, frames = _frame_cases()
    frame_rows = ",\n".join(f'    ({rust_backend.rust_str(i)}, "{d}", "{x}")' for i, d, x in frames)
    return f"""use {crate}::runtime as rt;
use {crate}::schemas;

const FRAMES: &[(&str, &str, &str)] = &[
{frame_rows}
];

#[test]
fn frame_vectors() {{
    let mut failures: Vec<String> = Vec::new();
    for (id, input, expect) in FRAMES {{
        let data = unhex(input);
        let got = match rt::Frame::decode(&data, {max_payload}) {{
            Ok(frame) if frame.encode().ok() == Some(data.clone()) => "ok".to_string(),
            Ok(_) => "noncanonical".to_string(),
            Err(e) => format!("{{:?}}", e.kind),
        }};
        if got != *expect {{
            failures.push(format!("{{}}: {{}}, Python says {{}}", id, got, expect));
        }}
    }}
    println!("CATOPT FRAMES {{}}", FRAMES.len());
    assert!(failures.is_empty(), "{{:#?}}", failures);
}}

fn unhex(s: &str) -> Vec<u8> {{
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}}

const CASES: &[(&str, &str, u32, &str, &str, &str)] = &[
{rows}
];

#[test]
fn conformance_vectors() {{
    let mut failures: Vec<String> = Vec::new();
    let mut damaged = 0usize;
    for (id, schema, version, input, expect, output) in CASES {{
        let data = unhex(input);
        match schemas::reencode(schema, *version, &data) {{
            Ok(bytes) if *expect == "ok" => {{
                if bytes != unhex(output) {{
                    failures.push(format!("{{}}: re-encoded bytes differ", id));
                }}
                for cut in 0..data.len() {{
                    if schemas::reencode(schema, *version, &data[..cut]).is_ok() {{
                        failures.push(format!("{{}}: accepted a cut at {{}}", id, cut));
                    }}
                    damaged += 1;
                }}
                for i in 0..data.len() {{
                    for bit in 0..8 {{
                        let mut d = data.clone();
                        d[i] ^= 1 << bit;
                        if schemas::reencode(schema, *version, &d).is_ok() {{
                            failures.push(format!("{{}}: accepted a flip at byte {{}} bit {{}}", id, i, bit));
                        }}
                        damaged += 1;
                    }}
                }}
            }}
            Ok(_) => failures.push(format!("{{}}: accepted, expected {{}}", id, expect)),
            Err(e) if *expect == "ok" => failures.push(format!("{{}}: rejected ({{}})", id, e)),
            Err(e) => {{
                if format!("{{:?}}", e.kind) != *expect {{
                    failures.push(format!("{{}}: error {{:?}}, Python says {{}}", id, e.kind, expect));
                }}
            }}
        }}
    }}
    println!("CATOPT CONFORMANCE {{}} {{}}", CASES.len(), damaged);
    assert!(failures.is_empty(), "{{:#?}}", failures);
}}
"""


def cpp_conformance(plan: IRPlan, entries: list[dict[str, object]]) -> str:
    ns = cpp_backend.namespace(plan)
    rows = ",\n".join(
        f'    {{{cpp_backend.cpp_str(i)}, {cpp_backend.cpp_str(s)}, {v}u, "{d}", "{x}", "{o}"}}'
        for i, s, v, d, x, o in _cases(entries)
    )
    max_payload, frames = _frame_cases()
    frame_rows = ",\n".join(f'    {{{cpp_backend.cpp_str(i)}, "{d}", "{x}"}}' for i, d, x in frames)
    return f"""#include "{cpp_backend.file_stem(plan)}.hpp"
#include <cstdio>

namespace {{
namespace rt = ::{ns}::rt;

struct Case {{ const char* id; const char* schema; std::uint32_t version; const char* input; const char* expect; const char* output; }};

const Case CASES[] = {{
{rows}
}};

struct FrameCase {{ const char* id; const char* input; const char* expect; }};

const FrameCase FRAMES[] = {{
{frame_rows}
}};

rt::Bytes unhex(const std::string& s) {{
    rt::Bytes out;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
    return out;
}}

/// "ok" with the output, or the error kind; anything but rt::WireError counts as a crash.
std::string attempt(const Case& c, const rt::Bytes& data, rt::Bytes& out) {{
    try {{
        out = ::{ns}::schemas::reencode(c.schema, c.version, data);
        return "ok";
    }} catch (const rt::WireError& e) {{
        return rt::kind_name(e.kind());
    }} catch (...) {{
        return "crash";
    }}
}}

/// "ok" (decodes and re-encodes to itself), "noncanonical", the error kind, or "crash".
std::string frame_outcome(const rt::Bytes& data) {{
    try {{
        const rt::Frame f = rt::Frame::decode(data.data(), data.size(), {max_payload}u);
        return f.encode() == data ? "ok" : "noncanonical";
    }} catch (const rt::WireError& e) {{
        return rt::kind_name(e.kind());
    }} catch (...) {{
        return "crash";
    }}
}}
}}  // namespace

int main() {{
    int failures = 0;
    for (const FrameCase& c : FRAMES) {{
        const std::string got = frame_outcome(unhex(c.input));
        if (got != c.expect) {{
            std::fprintf(stderr, "%s: got %s, Python says %s\\n", c.id, got.c_str(), c.expect);
            ++failures;
        }}
    }}
    std::printf("CATOPT FRAMES %zu\\n", sizeof FRAMES / sizeof FRAMES[0]);
    std::size_t damaged = 0, count = 0;
    for (const Case& c : CASES) {{
        ++count;
        const rt::Bytes data = unhex(c.input);
        rt::Bytes out;
        const std::string got = attempt(c, data, out);
        if (got != c.expect) {{
            std::fprintf(stderr, "%s: got %s, Python says %s\\n", c.id, got.c_str(), c.expect);
            ++failures;
            continue;
        }}
        if (got != "ok") continue;
        if (out != unhex(c.output)) {{
            std::fprintf(stderr, "%s: re-encoded bytes differ\\n", c.id);
            ++failures;
        }}
        for (std::size_t cut = 0; cut < data.size(); ++cut, ++damaged) {{
            rt::Bytes cutd(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(cut)), o;
            const std::string r = attempt(c, cutd, o);
            if (r == "ok" || r == "crash") {{ std::fprintf(stderr, "%s: cut at %zu -> %s\\n", c.id, cut, r.c_str()); ++failures; }}
        }}
        for (std::size_t i = 0; i < data.size(); ++i) {{
            for (int bit = 0; bit < 8; ++bit, ++damaged) {{
                rt::Bytes d = data, o;
                d[i] = static_cast<std::uint8_t>(d[i] ^ (1u << bit));
                const std::string r = attempt(c, d, o);
                if (r == "ok" || r == "crash") {{ std::fprintf(stderr, "%s: flip %zu/%d -> %s\\n", c.id, i, bit, r.c_str()); ++failures; }}
            }}
        }}
    }}
    std::printf("CATOPT CONFORMANCE %zu %zu\\n", count, damaged);
    return failures == 0 ? 0 : 1;
}}
"""


def _ids() -> list[str]:
    return [p.stem for p in GROUPS]


@pytest.mark.parametrize("spec", list(GROUPS), ids=_ids())
def test_rust_decoders_match_python(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    if missing_tools("cargo"):
        pytest.skip("cargo is not installed")
    plan, entries = GROUPS[spec]
    assert entries
    root = tmp_path_factory.mktemp("conformance-rust")
    out = build_rust(plan, root / "crate", root / "target", {"tests/conformance.rs": rust_conformance(plan, entries)})
    assert f"CATOPT CONFORMANCE {len(entries)} " in out
    assert f"CATOPT FRAMES {len(_frame_cases()[1])}" in out


@pytest.mark.slow
@pytest.mark.parametrize("spec", list(GROUPS), ids=_ids())
def test_cpp_decoders_match_python_under_sanitizers(spec: Path, tmp_path: Path) -> None:
    if missing_tools("g++"):
        pytest.skip("g++ is not installed")
    plan, entries = GROUPS[spec]
    cpp_backend.emit_cpp(plan, tmp_path / "src")
    stem = cpp_backend.file_stem(plan)
    (tmp_path / "conformance.cpp").write_text(cpp_conformance(plan, entries), encoding="utf-8")
    exe = tmp_path / "conformance"
    run(
        [
            "g++",
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-O0",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            "-I",
            str(tmp_path / "src"),
            str(tmp_path / "src" / "catopt_runtime.cpp"),
            str(tmp_path / "src" / f"{stem}.cpp"),
            str(tmp_path / "conformance.cpp"),
            "-o",
            str(exe),
        ],
        tmp_path,
    )
    out = run(
        [str(exe)],
        tmp_path,
        env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"},
    )
    assert f"CATOPT CONFORMANCE {len(entries)} " in out
    assert f"CATOPT FRAMES {len(_frame_cases()[1])}" in out
