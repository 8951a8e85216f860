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
