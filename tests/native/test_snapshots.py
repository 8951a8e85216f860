"""Acceptance 5: syrupy snapshots of the generated Rust and C++ for every example.

Each snapshot maps a file's path (relative to the target folder) to its text. Data files, sources
over 64 KiB (embedded arrays) and the plan-independent runtime (``src/runtime.rs``,
``<stem>_rt.hpp`` / ``<stem>_rt.cpp``: the same template text in every example) are recorded as
their sha256 and size, so any change still changes the snapshot without making it unreadable. ``generated/<example>/{rust,cpp}/``
is what ``catoptc compile --target all --out generated/<example>`` writes; the lead regenerates it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from catopt_dsl.backends.cpp import emit_cpp
from catopt_dsl.backends.rust import emit_rust
from catopt_dsl.compile import load_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.cat"))
TEXT_LIMIT = 64 * 1024


def _tree(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(folder).as_posix()
        runtime = rel == "src/runtime.rs" or path.stem.endswith("_rt")
        if path.suffix == ".bin" or runtime or len(data) > TEXT_LIMIT:
            out[rel] = f"sha256 {hashlib.sha256(data).hexdigest()} ({len(data)} bytes)"
        else:
            out[rel] = data.decode("utf-8")
    return out


@pytest.fixture(scope="module")
def plans() -> dict[str, object]:
    return {name: load_plan(ROOT / "examples" / f"{name}.cat") for name in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES)
def test_rust_snapshot(example: str, plans: dict[str, object], tmp_path: Path, snapshot: object) -> None:
    emit_rust(plans[example], tmp_path)  # type: ignore[arg-type]
    assert _tree(tmp_path) == snapshot


@pytest.mark.parametrize("example", EXAMPLES)
def test_cpp_snapshot(example: str, plans: dict[str, object], tmp_path: Path, snapshot: object) -> None:
    emit_cpp(plans[example], tmp_path)  # type: ignore[arg-type]
    assert _tree(tmp_path) == snapshot
