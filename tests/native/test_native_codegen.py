"""Fast checks of the Rust and C++ emitters (no compiler needed): byte-stable output, headers,
naming through the naming pass, and that spec text cannot inject code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catopt_dsl.backends.common import source_name
from catopt_dsl.backends.cpp import cpp_str, emit_cpp, file_stem, render_cpp
from catopt_dsl.backends.rust import crate_name, emit_rust, render_rust, rust_str, safe_comment
from catopt_dsl.compile import load_plan

ROOT = Path(__file__).resolve().parents[2]


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "spec", ["examples/gpu_fleet.cat", "examples/plan_deltas.cat", "tests/cases/keywords/keywords.cat"]
)
def test_output_is_byte_stable(spec: str, tmp_path: Path) -> None:
    # two loads, two emissions into different folders: identical bytes
    for run in ("a", "b"):
        plan = load_plan(ROOT / spec)
        emit_rust(plan, tmp_path / run / "rust")
        emit_cpp(plan, tmp_path / run / "cpp")
    assert _read_tree(tmp_path / "a") == _read_tree(tmp_path / "b")


RUNTIME_COPIES = {
    "src/runtime.rs": ROOT / "native" / "rust" / "src" / "runtime.rs",
    "catopt_runtime.hpp": ROOT / "native" / "cpp" / "catopt_runtime.hpp",
    "catopt_runtime.cpp": ROOT / "native" / "cpp" / "catopt_runtime.cpp",
}


def test_header_names_spec_hash_and_version_and_nothing_machine_specific(tmp_path: Path) -> None:
    plan = load_plan(ROOT / "examples" / "gpu_fleet.cat")
    sources, _ = render_rust(plan)
    files = {**sources, **render_cpp(plan)}
    for name, source in RUNTIME_COPIES.items():
        # the static runtime is copied byte for byte; its own header says where to edit it
        assert files.pop(name) == source.read_text(encoding="utf-8")
    assert len(files) == 17  # 7 Rust (solve binary and C API included), 10 C++ (solve program and C API included)
    for text in files.values():
        head = text.splitlines()[0]
        assert "gpu_fleet.cat" in head and plan.spec_hash in head and "catoptc 0.1.0" in head
        assert str(ROOT) not in text and "/tmp" not in text
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text)  # no dates


def test_keyword_names_are_escaped_once_by_the_namer() -> None:
    plan = load_plan(ROOT / "tests" / "cases" / "keywords" / "keywords.cat")
    rs, _ = render_rust(plan)
    schemas = rs["src/schemas.rs"]
    assert "pub struct TypeV1" in schemas and "pub struct TypeV2" in schemas
    assert "pub r#fn: Vec<f64>," in schemas and "pub r#match: i64," in schemas
    assert "pub self_: f64," in schemas and "pub class: bool," in schemas
    problems = rs["src/problems.rs"]
    assert "pub struct None_ {" in problems and "pub struct Struct {" in problems
    assert "pub is: Vec<f64>," in problems and "pub r#impl: Vec<f64>," in problems
    assert "pub fn gen_plan()" in rs["src/plans.rs"]
    cpp = render_cpp(plan)["keywords.hpp"]
    assert "struct TypeV2 {" in cpp and "bool class_ = false;" in cpp and "std::int64_t match = 0LL;" in cpp
    assert "double delete_{};" in cpp and "struct Struct {" in cpp and "rt::PlanSpec gen_plan();" in cpp
    # never double-escaped
    assert "r#r#" not in schemas and "__" not in re.sub(r"__(?:LINE|FILE)__", "", cpp.replace("::", ""))


def test_spec_file_name_cannot_inject_code(tmp_path: Path) -> None:
    evil = 'evil *\\ "x"\u2028\n.cat'
    shutil.copy(ROOT / "examples" / "plan_deltas.cat", tmp_path / evil)
    plan = load_plan(tmp_path / evil)
    rs, _ = render_rust(plan)
    cpp = render_cpp(plan)
    for text in [*rs.values(), *cpp.values()]:
        for line in text.splitlines():
            if line.lstrip().startswith(("//", "#")) and ".cat" in line:
                # printable ASCII, the name escaped as in a literal, no trailing backslash (it would
                # splice the next line into a C++ comment)
                assert line.isascii() and line.isprintable() and '"x"' not in line
                assert not line.rstrip().endswith("\\")
    src = source_name(plan)  # the file name as the common header helper reports it
    assert '"x"' in src and "\n" in src
    assert f"pub const SOURCE: &str = {rust_str(src)};" in rs["src/lib.rs"]
    assert f"SOURCE = {cpp_str(src)};" in cpp[f"{file_stem(plan)}.hpp"]
    assert re.fullmatch(r"[a-z0-9_]+", file_stem(plan)) and re.fullmatch(r"catopt_[a-z0-9_]+", crate_name(plan))
    for text in [*rs.values(), *cpp.values()]:
        assert src not in text  # never verbatim: the newline would end a comment early


def _unrust(lit: str) -> str:
    return re.sub(r"\\u\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), lit[1:-1])


def _uncpp(lit: str) -> str:
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), lit[1:-1].encode("ascii"))
    return raw.decode("utf-8")


@given(st.text())
def test_string_literals_round_trip_and_stay_inert(text: str) -> None:
    r = rust_str(text)
    c = cpp_str(text)
    assert r.isascii() and c.isascii()
    assert '"' not in r[1:-1].replace("\\u{22}", "") and '"' not in c[1:-1]
    assert _unrust(r) == text
    assert _uncpp(c) == text
    comment = safe_comment(text)
    assert comment.isascii() and comment.isprintable()  # no newline, no control character
    assert not comment.endswith("\\") and "*/" not in comment
