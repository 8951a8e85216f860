"""Every example under examples/ checks clean, and its data is what make_data.py generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import check_file
from catopt_dsl.diagnostics import Severity

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REQUIRED = [
    "federated_logreg.cat",
    "gpu_fleet.cat",
    "mixed_plan.cat",
    "sites_200.cat",
    "plan_deltas.cat",
    "consensus_lasso.cat",
    "schemas/common.cat",
]


def example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.cat"))


def example_plans() -> list[Path]:
    """Top-level specs are plans; files under examples/schemas/ are libraries checked via their importers."""
    return sorted(EXAMPLES.glob("*.cat"))


def test_required_examples_exist() -> None:
    present = {p.relative_to(EXAMPLES).as_posix() for p in example_files()}
    missing = [name for name in REQUIRED if name not in present]
    assert not missing, f"missing examples: {missing}"


def test_common_schemas_are_shared() -> None:
    importers = [p.name for p in example_files() if 'import "schemas/common.cat";' in p.read_text(encoding="utf-8")]
    assert len(importers) >= 2, importers


@pytest.mark.parametrize("spec", example_plans(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_checks_clean(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES)
    rel = spec.relative_to(EXAMPLES)
    errors = [d for d in check_file(rel) if d.severity is Severity.ERROR]
    assert errors == [], "\n".join(f"{d.span}: {d.code.value} {d.message}" for d in errors)
    result = CliRunner().invoke(main, ["check", str(rel)])
    assert result.exit_code == 0, result.output


def _load_make_data():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("examples_make_data", EXAMPLES / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_data_is_deterministic_and_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regenerating the data gives byte-identical files to the committed ones, and stays small."""
    make_data = _load_make_data()
    monkeypatch.setattr(make_data, "DATA_DIR", tmp_path)
    make_data.main()
    generated = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in (EXAMPLES / "data").iterdir())
    assert generated == committed
    for name in generated:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / "data" / name).read_bytes(), name
    total = sum((tmp_path / n).stat().st_size for n in generated)
    assert total < 2 * 1024 * 1024, f"example data is {total} bytes"


def test_example_data_has_planted_structure() -> None:
    """The data sets are not noise: the planted models are recoverable by plain least squares."""
    import numpy as np

    A = np.load(EXAMPLES / "data" / "sites_A.npy")
    b = np.load(EXAMPLES / "data" / "sites_b.npy")
    assert A.shape == (200, 30, 10) and b.shape == (200, 30)
    w, *_ = np.linalg.lstsq(A.reshape(-1, 10), b.reshape(-1), rcond=None)
    # make_data plants non-zeros at 1, 4, 7; the rest are ~0.
    assert set(np.flatnonzero(np.abs(w) > 0.3)) == {1, 4, 7}

    y = np.load(EXAMPLES / "data" / "logreg_y.npy")
    assert y.shape == (8, 40) and set(np.unique(y)) == {-1.0, 1.0}

    need = np.load(EXAMPLES / "data" / "mixed_need.npy")
    # mixed_plan's budget (6 hours) must be binding for the sharing limit to matter.
    assert need.shape == (6,) and need.sum() > 6.0


# ---------------------------------------------------------------------------------------------
# The examples mean what their comments say: lowered structure, functors, deltas, binding limits.
# ---------------------------------------------------------------------------------------------


def _plan(name: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from catopt_dsl.compile import load_plan

    monkeypatch.chdir(EXAMPLES)
    return load_plan(Path(name))


@pytest.mark.parametrize(
    ("name", "members", "shape"),
    [("federated_logreg.cat", 8, (5,)), ("sites_200.cat", 200, (10,)), ("consensus_lasso.cat", 16, (20,))],
)
def test_consensus_examples_expand_their_families(
    name: str, members: int, shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(name, monkeypatch)
    assert len(plan.objects) == members
    assert len(plan.consensus) == members
    assert {c.shape for c in plan.consensus} == {shape}
    assert {c.object for c in plan.consensus} == {o.name for o in plan.objects}
    assert plan.colimit is not None and plan.colimit.shared == ("model",)
    assert plan.shared_block("model").objective is not None  # the global regulariser


def test_sites_200_members_get_their_own_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    plan = _plan("sites_200.cat", monkeypatch)
    A = np.load(EXAMPLES / "data" / "sites_A.npy")
    for k in (0, 57, 199):
        assert np.array_equal(plan.object(f"site[{k}]").param("A").value, A[k])


def test_gpu_fleet_functors_and_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    plan = _plan("gpu_fleet.cat", monkeypatch)
    a, b, c, d = (plan.object(f"tenant_{t}") for t in "abcd")
    assert (a.platform, a.adapter, b.platform, c.adapter, d.platform, d.adapter) == (
        "cuda",
        "torch",
        "rocm",
        "jax",
        "cpu",
        None,
    )
    assert a.functors == ("torch_units",) and c.functors == ("jax_units",) and d.functors == ()
    # jax_units turns minutes into hours; torch_units copies hours.
    assert np.allclose(c.param("demand").value, c.param("gpu_minutes").value / 60)
    assert np.allclose(a.param("demand").value, a.param("gpu_hours").value)
    (cap,) = plan.couplings
    assert cap.sense == "<=" and np.allclose(cap.rhs, [20, 12, 8])
    assert sorted(t.morphism for t in cap.terms) == ["a_alloc", "b_alloc", "c_alloc", "d_alloc"]


def test_gpu_fleet_capacity_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Total demand exceeds capacity, so the centralised optimum uses some pool to the limit."""
    import numpy as np

    from catopt_dsl.solver.centralized import solve_centralized

    plan = _plan("gpu_fleet.cat", monkeypatch)
    result = solve_centralized(plan)
    assert result.status == "optimal"
    used = sum(np.asarray(result.objects[f"tenant_{t}"]["x"]) for t in "abcd")
    assert np.all(used <= np.array([20, 12, 8]) + 1e-5)
    assert np.any(np.isclose(used, [20, 12, 8], atol=1e-4))


def test_mixed_plan_has_both_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from catopt_dsl.solver.centralized import solve_centralized

    plan = _plan("mixed_plan.cat", monkeypatch)
    assert len(plan.consensus) == 6 and len(plan.couplings) == 1
    (budget,) = plan.couplings
    assert len(budget.terms) == 6 and np.allclose(budget.rhs, [6.0])
    result = solve_centralized(plan)
    assert result.status == "optimal"
    hours = sum(float(np.asarray(result.objects[f"site[{k}]"]["h"])) for k in range(6))
    assert hours == pytest.approx(6.0, abs=1e-4)  # the budget binds: the sites need more than 6 h


def test_plan_deltas_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    plan = _plan("plan_deltas.cat", monkeypatch)
    assert [d.name for d in plan.deltas] == ["tenant_d_joins", "tenant_b_leaves", "upgrade_schema"]
    assert [s.key for s in plan.schemas if s.name == "Usage"] == ["Usage.v1", "Usage.v2"]

    joins = plan.delta("tenant_d_joins").result
    assert sorted(o.name for o in joins.objects) == ["tenant_a", "tenant_b", "tenant_c", "tenant_d"]
    assert np.allclose(joins.shared_block("cluster").param("capacity").value, [16, 10])
    assert len(joins.couplings[0].terms) == 4  # `*.hours` picks up the new morphism

    leaves = plan.delta("tenant_b_leaves").result
    assert sorted(o.name for o in leaves.objects) == ["tenant_a", "tenant_c"]
    assert sorted(m.name for m in leaves.morphisms) == ["a_usage", "c_usage"]

    upgraded = plan.delta("upgrade_schema").result
    a_usage = next(m for m in upgraded.morphisms if m.name == "a_usage")
    assert (a_usage.schema, a_usage.version) == ("Usage", 2)
    assert [f for f, _ in a_usage.fields] == ["hours", "peak"]
