"""The Rust backend: an IR plan -> a std-only Cargo crate (``catoptc compile --target rust``).

The model is the native one (:mod:`catopt_dsl.backends.native`); this module holds only what is
Rust's: how Rust writes literals, types and the runtime's plan structures (:class:`RustDialect`),
the crate name, and the file layout. ``templates/rust/*.j2`` only loop and read fields.

Layout of ``<out>/``::

    Cargo.toml          package ``catopt_<spec>``, edition 2021, no dependencies
    src/lib.rs          SPEC_HASH / SOURCE / CATOPTC_VERSION, the modules below
    src/runtime.rs      a copy of native/rust/src/runtime.rs: CRC32C, record and frame codecs,
                        LocalSolver, SharedProx, Coordinator
    src/schemas.rs      one struct per schema version with encode / decode, ``reencode`` dispatch
    src/problems.rs     one typed handle per LocalProblem (family: one type, ``member(i)``)
    src/plans.rs        ``plan()`` and one ``<delta>_plan()`` per PlanDelta: the PlanSpec, and
                        ``local()`` / ``report()`` (``<delta>_plan_local()``, ...): each object's
                        QP data (None: not a QP, needs a user LocalSolver) and the JSON report
    src/c_api.rs        feature ``c-api``: the C++ library's C API (``<prefix>_create``, ...), built
                        as a shared library by ``cargo rustc --lib --features c-api --crate-type cdylib``
    src/bin/solve.rs    ``cargo run --release --bin solve``: the plan solved natively, printed
                        as ``catoptc solve --json`` prints it
    src/data/*.bin      little-endian param / coupling data, embedded with ``include_bytes!``
    tests/generated.rs  ``cargo test``: record round trips + damage, handles, ADMM on every plan
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from catopt_dsl.backends import native
from catopt_dsl.backends.escape import rust_str, safe_comment
from catopt_dsl.backends.naming import Namer, require_names, snake_case
from catopt_dsl.ir.model import IRPlan

NAMER = Namer("rust")



class RustDialect(native.Dialect):
    """Rust 2021: ``f64::from_bits`` floats, suffixed ints, ``&[..]`` slices, ``Vec``s, and the
    runtime's items under ``crate::runtime``."""

    target = "rust"

    def string(self, text: str) -> str:
        return rust_str(text)

    def float_lit(self, value: float) -> str:
        return f"f64::from_bits(0x{native.f64_bits(value):016x})"

    def int_lit(self, value: int) -> str:
        # Unsuffixed: every place an int is written has an i64 type. -2^63 is spelled by name
        # (its magnitude alone overflows an i64).
        value = int(value)
        return "i64::MIN" if value == -(2**63) else str(value)

    def seq(self, items: Sequence[str]) -> str:
        return "&[" + ", ".join(items) + "]"

    def pair(self, first: str, second: str) -> str:
        return f"({first}, {second})"

    def opt_string(self, text: str | None) -> str:
        return "None" if text is None else f"Some({rust_str(text)})"

    def vector(self, items: Sequence[str], kind: str) -> str:
        return "vec![" + ", ".join(items) + "]" if items else "Vec::new()"

    def zeros(self, kind: str, count: int) -> str:
        return f"vec![{self.scalar(0, kind)}; {count}]"

    def blob_vector(self, blob: native.Blob) -> str:
        return f'crate::runtime::blob_{blob.kind}(include_bytes!("data/{blob.file_name}"))'

    def scalar_type(self, kind: str) -> str:
        return kind

    def vector_type(self, kind: str) -> str:
        return f"Vec<{kind}>"

    def shared_var(self, var: native.NativeVar) -> str:
        term = f"crate::runtime::SharedTerm::{native.TERM_VARIANT[var.term]}"
        if var.term != "free":
            term += f"({self.float_lit(var.coef)})"
        fields = f"name: {rust_str(var.name)}, offset: {var.offset}, size: {var.size}, term: {term}"
        return "crate::runtime::SharedVarSpec { " + fields + " }"

    def consensus(self, block: native.NativeBlock) -> str:
        fields = f"shared: {block.shared}, var: {block.var}, x_offset: {block.x_offset}, size: {block.size}"
        return "crate::runtime::Block::Consensus { " + fields + " }"

    def coupling_term(self, block: native.NativeBlock, B: str, b: str) -> str:
        fields = f"coupling: {block.coupling}, rows: {block.rows}, b_mat: {B}, b_vec: {b}"
        return "crate::runtime::Block::Coupling { " + fields + " }"

    def sense(self, sense: str) -> str:
        return f"crate::runtime::Sense::{native.SENSE_VARIANT[sense]}"


def crate_name(plan: IRPlan) -> str:
    """``catopt_<spec stem in snake_case>``: a valid package and crate name for any stem."""
    return "catopt_" + snake_case(plan.name)


def c_symbol_prefix(plan: IRPlan) -> str:
    """The prefix of the C API's functions: the C++ library's (``catopt_<stem>``), so that
    ``native_backend`` loads the Rust ``cdylib`` and the C++ shared library the same way."""
    return native.c_api_prefix(plan)


def dialect(plan: IRPlan) -> RustDialect:
    return RustDialect(crate_name(plan))


_TEMPLATES = {
    "Cargo.toml": "Cargo.toml.j2",
    "src/lib.rs": "lib.rs.j2",
    "src/schemas.rs": "schemas.rs.j2",
    "src/problems.rs": "problems.rs.j2",
    "src/plans.rs": "plans.rs.j2",
    "tests/generated.rs": "generated_test.rs.j2",
    "src/bin/solve.rs": "solve.rs.j2",
    "src/c_api.rs": "c_api.rs.j2",
}
_RUNTIME = {"src/runtime.rs": "src/runtime.rs"}


def render_rust(plan: IRPlan) -> tuple[dict[str, str], list[native.Blob]]:
    """Relative path -> source text, plus the data blobs (no files written)."""
    view, blobs = native.build_package(plan, dialect(plan))
    # The C API mirrors the C++ library's, symbol names included, so one loader drives either.
    sources = native.render_templates("rust", _TEMPLATES, crate=view, c_prefix=c_symbol_prefix(plan))
    sources.update(native.runtime_sources("rust", _RUNTIME))
    return dict(sorted(sources.items())), blobs


def emit_rust(plan: IRPlan, out_dir: Path) -> list[Path]:
    """Write the crate into ``out_dir``; returns every file written, sorted.

    Raises :class:`CatoptError` (E0701) when two spec names collide as Rust identifiers.
    """
    require_names(plan, "rust")
    sources, blobs = render_rust(plan)
    return native.write_files(Path(out_dir), sources, {f"src/data/{b.file_name}": b.data for b in blobs})


__all__ = ["NAMER", "RustDialect", "c_symbol_prefix", "crate_name", "emit_rust", "render_rust", "rust_str", "safe_comment"]
