"""Every name in `catopt_dsl.__all__` resolves: the public API cannot silently lose a member."""

from __future__ import annotations

import subprocess
import sys

import catopt_dsl


def test_every_export_resolves() -> None:
    for name in catopt_dsl.__all__:
        assert getattr(catopt_dsl, name) is not None, name


def test_import_is_light() -> None:
    """`import catopt_dsl` must not pull in CVXPY or Ray (the check path stays fast)."""
    code = "import sys, catopt_dsl; print('cvxpy' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert out == ["False", "False"]


def test_end_to_end_through_the_public_api(tmp_path: object) -> None:
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    plan = catopt_dsl.load_plan(repo / "examples" / "gpu_fleet.cat")
    schema = plan.schema("Allocation", 2)
    record = catopt_dsl.decode_record(schema, catopt_dsl.encode_record(schema, {"hours": [1.0, 2.0, 3.0]}))
    assert record["hours"].tolist() == [1.0, 2.0, 3.0]
    assert record["priority"] == 0  # filled from the schema's default
    result = catopt_dsl.solve(plan, catopt_dsl.SolveOptions(max_iter=500))
    assert result.status == "optimal"


def test_packages_generated_before_the_bindings_split_still_find_their_base_classes() -> None:
    from catopt_dsl import bindings
    from catopt_dsl import runtime as rt  # what packages generated before 0.2 import

    assert rt.PlanBase is bindings.PlanBase and rt.Record is bindings.Record


def test_the_version_has_one_source() -> None:
    import importlib.metadata

    from click.testing import CliRunner

    import catopt_dsl
    from catopt_dsl.cli import main

    assert importlib.metadata.version("catopt-dsl") == catopt_dsl.__version__
    assert CliRunner().invoke(main, ["--version"]).output.strip() == f"catoptc, version {catopt_dsl.__version__}"
