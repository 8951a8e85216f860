"""The C++ backend: an IR plan -> C++17, standard library only (``catoptc compile --target cpp``).

The model is the native one (:mod:`catopt_dsl.backends.native`); this module holds only what is
C++'s: how C++ writes literals, types and the runtime's plan structures (:class:`CppDialect`), the
members the generated structs define (:data:`CPP_RESERVED_MEMBERS`), the data tables, the names
and the file layout. ``templates/cpp/*.j2`` only loop and read fields.

Layout of ``<out>/`` (``<s>`` is the spec name in snake_case)::

    CMakeLists.txt             library ``catopt_<s>``, test program, ``ctest`` target
    catopt_runtime.hpp/.cpp    a copy of native/cpp/: CRC32C, record / frame codecs, LocalSolver,
                               SharedProx, Coordinator (namespace ``catopt_<s>::rt``)
    catopt_runtime_config.hpp  names the runtime's namespace ``catopt_<s>``
    <s>.hpp                    namespace ``catopt_<s>``: ``schemas``, ``problems``, ``plans``
    <s>.cpp                    the schema codecs
    <s>_plan.cpp               typed handles and plan structures, data as uint64 bit patterns
    tests/test_<s>.cpp         record round trips + damage, handles, ADMM on every plan
    <s>_c.h / <s>_c.cpp        the C API (create, set_param, solve, result_json, x, error,
                               free) in the library and in the shared ``<s>_c`` library
    solve_<s>.cpp              program ``solve_<s>``: the plan solved natively, printed as
                               ``catoptc solve --json`` prints it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catopt_dsl.backends import native
from catopt_dsl.backends.escape import cpp_str
from catopt_dsl.backends.naming import CPP_RESERVED_MEMBERS, Namer, require_names
from catopt_dsl.ir.model import IRPlan

NAMER = Namer("cpp")

_CTYPE = {"f64": "double", "i64": "std::int64_t", "bool": "bool"}


def cpp_i64(value: int) -> str:
    """An int64 literal; -2^63 has none of its own (its magnitude overflows before the minus)."""
    value = int(value)
    if value == -(2**63):
        return "(-9223372036854775807LL - 1)"
    return f"{value}LL" if value >= 0 else f"(-{-value}LL)"


class CppDialect(native.Dialect):
    """C++17: floats from their bit patterns, ``LL`` ints, braced lists, ``std::vector``s, and the
    runtime's items under ``::catopt_<s>::rt``."""

    target = "cpp"
    # a field cannot share a name with a member the generated structs define (naming.py lists them)
    reserved_members = CPP_RESERVED_MEMBERS

    @property
    def rt(self) -> str:
        return f"::{self.package}::rt::"

    def string(self, text: str) -> str:
        return cpp_str(text)

    def float_lit(self, value: float) -> str:
        return f"{self.rt}f64_from_bits(0x{native.f64_bits(value):016x}ULL)"

    def int_lit(self, value: int) -> str:
        return cpp_i64(value)

    def seq(self, items: Sequence[str]) -> str:
        return "{" + ", ".join(items) + "}"

    def pair(self, first: str, second: str) -> str:
        return self.seq([first, second])

    def opt_string(self, text: str | None) -> str:
        return "nullptr" if text is None else cpp_str(text)

    def vector(self, items: Sequence[str], kind: str) -> str:
        return self.vector_type(kind) + self.seq(items)

    def zeros(self, kind: str, count: int) -> str:
        return f"{self.vector_type(kind)}({count})"  # value-initialised: 0, 0.0, false

    def blob_vector(self, blob: native.Blob) -> str:
        if blob.kind == "f64":  # stored as bit patterns: converted, never through a double literal
            return f"{self.rt}blob_f64({blob.symbol}, {blob.count})"
        return f"{self.vector_type(blob.kind)}({blob.symbol}, {blob.symbol} + {blob.count})"

    def scalar_type(self, kind: str) -> str:
        return _CTYPE[kind]

    def vector_type(self, kind: str) -> str:
        return f"std::vector<{_CTYPE[kind]}>"

    def shared_var(self, var: native.NativeVar) -> str:
        term = f"{self.rt}SharedTerm{{{self.rt}TermKind::{native.TERM_VARIANT[var.term]}, {self.float_lit(var.coef)}}}"
        return f"{self.rt}SharedVarSpec{{{cpp_str(var.name)}, {var.offset}, {var.size}, {term}}}"

    def consensus(self, block: native.NativeBlock) -> str:
        return f"{self.rt}Block::consensus({block.shared}, {block.var}, {block.x_offset}, {block.size})"

    def coupling_term(self, block: native.NativeBlock, B: str, b: str) -> str:
        return f"{self.rt}Block::coupling_term({block.coupling}, {block.rows}, {B}, {b})"

    def sense(self, sense: str) -> str:
        return f"{self.rt}Sense::{native.SENSE_VARIANT[sense]}"


def file_stem(plan: IRPlan) -> str:
    """The spec name in snake_case, never starting with a digit: a safe file name for any stem."""
    return NAMER.package_name(plan.name)


def namespace(plan: IRPlan) -> str:
    """``catopt_<stem>``: never a keyword, never a double underscore (the C API's prefix too)."""
    return native.c_api_prefix(plan)


def dialect(plan: IRPlan) -> CppDialect:
    return CppDialect(namespace(plan))


@dataclass(frozen=True)
class BlobView:
    """One data table of ``<s>_plan.cpp``: floats as uint64 bit patterns, ints, bools."""

    symbol: str
    ctype: str
    init: str


def blob_view(blob: native.Blob) -> BlobView:
    if blob.kind == "f64":
        words = np.frombuffer(blob.data, dtype="<u8").tolist()
        return BlobView(blob.symbol, "std::uint64_t", ", ".join(f"0x{w:016x}ULL" for w in words))
    if blob.kind == "i64":
        ints = np.frombuffer(blob.data, dtype="<i8").tolist()
        return BlobView(blob.symbol, "std::int64_t", ", ".join(cpp_i64(v) for v in ints))
    return BlobView(blob.symbol, "bool", ", ".join("true" if b else "false" for b in blob.data))


@dataclass(frozen=True)
class CppLayout:
    """What only the C++ templates need: file stem, include guard, data tables."""

    stem: str
    guard: str
    blobs: tuple[BlobView, ...]


_RUNTIME = {"catopt_runtime.hpp": "catopt_runtime.hpp", "catopt_runtime.cpp": "catopt_runtime.cpp"}


def render_cpp(plan: IRPlan) -> dict[str, str]:
    """Relative path -> source text (no files written)."""
    d = dialect(plan)
    view, blobs = native.build_package(plan, d)
    stem = file_stem(plan)
    layout = CppLayout(stem, d.package.upper() + "_HPP", tuple(blob_view(b) for b in blobs))
    templates = {
        "CMakeLists.txt": "CMakeLists.txt.j2",
        "catopt_runtime_config.hpp": "catopt_runtime_config.hpp.j2",
        f"{stem}.hpp": "plan.hpp.j2",
        f"{stem}.cpp": "plan.cpp.j2",
        f"{stem}_plan.cpp": "plan_data.cpp.j2",
        f"tests/test_{stem}.cpp": "test.cpp.j2",
        f"solve_{stem}.cpp": "solve.cpp.j2",
        f"{stem}_c.h": "c_api.h.j2",
        f"{stem}_c.cpp": "c_api.cpp.j2",
    }
    sources = native.render_templates("cpp", templates, p=view, cpp=layout)
    sources.update(native.runtime_sources("cpp", _RUNTIME))
    return dict(sorted(sources.items()))


def emit_cpp(plan: IRPlan, out_dir: Path) -> list[Path]:
    """Write the C++ project into ``out_dir``; returns every file written, sorted.

    Raises :class:`CatoptError` (E0701) when two spec names collide as C++ identifiers.
    """
    require_names(plan, "cpp")
    return native.write_files(Path(out_dir), render_cpp(plan), {})


__all__ = [
    "CPP_RESERVED_MEMBERS",
    "CppDialect",
    "cpp_i64",
    "cpp_str",
    "emit_cpp",
    "file_stem",
    "namespace",
    "render_cpp",
]
