"""Imports: items of imported specs join the plan; their load() paths resolve against their own folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catopt_dsl.compile import analyze, load_plan


def test_load_in_imported_spec_is_relative_to_that_spec(tmp_path: Path) -> None:
    (tmp_path / "sub" / "data").mkdir(parents=True)
    np.save(tmp_path / "sub" / "data" / "d.npy", np.array([1.0, 2.0, 3.0]))
    (tmp_path / "sub" / "lib.cat").write_text(
        'catopt 1;\nLocalProblem t { param d: float[3] = load("data/d.npy"); var x: float[3]; minimize sum_squares(x - d); }\n'
    )
    (tmp_path / "main.cat").write_text('catopt 1;\nimport "sub/lib.cat";\n')
    plan = load_plan(tmp_path / "main.cat")
    assert plan.object("t").param("d").value.tolist() == [1.0, 2.0, 3.0]
    # The same path written in the root spec does not reach into sub/.
    (tmp_path / "root.cat").write_text(
        'catopt 1;\nLocalProblem t { param d: float[3] = load("data/d.npy"); var x: float[3]; minimize sum_squares(x - d); }\n'
    )
    codes = [d.code.value for d in analyze(tmp_path / "root.cat").diagnostics]
    assert codes == ["E0601"]


def test_spec_hash_covers_imports_and_data(tmp_path: Path) -> None:
    (tmp_path / "lib.cat").write_text("catopt 1;\nschema S v1 { a: float; }\n")
    (tmp_path / "data.npy").write_bytes(b"")
    np.save(tmp_path / "data.npy", np.array([1.0, 2.0]))
    (tmp_path / "main.cat").write_text(
        'catopt 1;\nimport "lib.cat";\nLocalProblem t { param d: float[2] = load("data.npy"); var x: float[2]; minimize sum_squares(x - d); }\n'
    )
    h1 = load_plan(tmp_path / "main.cat").spec_hash
    np.save(tmp_path / "data.npy", np.array([1.0, 2.5]))
    h2 = load_plan(tmp_path / "main.cat").spec_hash
    (tmp_path / "lib.cat").write_text("catopt 1;\nschema S v1 { a: float; b: int = 0; }\n")
    h3 = load_plan(tmp_path / "main.cat").spec_hash
    assert len({h1, h2, h3}) == 3
    assert load_plan(tmp_path / "main.cat").spec_hash == h3
