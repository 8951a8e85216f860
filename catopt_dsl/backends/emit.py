"""One entry point for every code generator, so the CLI and tests do not care which module emits what."""

from __future__ import annotations

from pathlib import Path

from catopt_dsl.gc_pause import gc_paused
from catopt_dsl.ir.model import IRPlan

MARKER = ".catoptc-generated"


def emit_target(target: str, plan: IRPlan, out_dir: Path) -> list[Path]:
    """Emit ``target`` ("python", "rust" or "cpp") for ``plan`` into ``out_dir`` (created or replaced).

    The folder gets a marker file so a later run knows it may replace it; a folder without the
    marker is the user's and the CLI refuses to overwrite it.
    """
    with gc_paused():
        return _emit(target, plan, Path(out_dir))


def _emit(target: str, plan: IRPlan, out_dir: Path) -> list[Path]:
    import shutil

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    if target == "python":
        from catopt_dsl.backends.python import emit_python

        files = emit_python(plan, out_dir)
    elif target == "rust":
        from catopt_dsl.backends.rust import emit_rust

        files = emit_rust(plan, out_dir)
    elif target == "cpp":
        from catopt_dsl.backends.cpp import emit_cpp

        files = emit_cpp(plan, out_dir)
    else:
        raise ValueError(f"unknown target {target!r}")
    marker = out_dir / MARKER
    marker.write_text(f"written by catoptc for {plan.source}; `catoptc compile` replaces this folder\n", encoding="utf-8")
    return [*files, marker]
