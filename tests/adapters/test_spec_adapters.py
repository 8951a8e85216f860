"""Adapters in the language: `via NAME <requirement>` and `minimize "module:function"(data = ...)`.

Each diagnostic is produced by the checker on a real spec in a temporary folder holding the
tenant's loss module and data, so the reference really resolves (or really does not).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import cli
from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import Severity
from catopt_dsl.ir.serialize import dumps, plan_from_dict, plan_to_dict
from catopt_dsl.syntax.format import format_source

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "federated"

SPEC = """catopt 1;

SharedVariables model {{
    var W: float[5, 3];
    var b: float[3];
    minimize 0.05 * sum_squares(W) + 0.05 * sum_squares(b);
}}

LocalProblem site_0 via {via} {{
    var W: float[5, 3];
    var b: float[3];
    {objective}
}}

Limit agree on model {{
    site_0.W == model.W;
    site_0.b == model.b;
}}

Colimit plan of model;
"""
SOFTMAX = 'minimize "losses_torch:softmax_loss"(data = "data/site_0.npz");'


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    shutil.copy(FOLDER / "losses_torch.py", tmp_path)
    shutil.copy(FOLDER / "losses_jax.py", tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copy(FOLDER / "data" / "site_0.npz", tmp_path / "data")
    return tmp_path


def _check(folder: Path, via: str = "torch", objective: str = SOFTMAX, text: str | None = None):  # type: ignore[no-untyped-def]
    spec = folder / "spec.cat"
    spec.write_text(text if text is not None else SPEC.format(via=via, objective=objective), encoding="utf-8")
    return analyze(spec)


def _codes(a, severity: Severity = Severity.ERROR) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.code.value for d in a.diagnostics if d.severity is severity]


def test_a_satisfied_requirement_and_a_resolving_loss_check_clean_and_reach_the_ir(folder: Path) -> None:
    a = _check(folder, via="torch >= 1.0, <= 1.9")
    assert a.ok, [d.message for d in a.diagnostics]
    (obj,) = a.plan.objects
    ext = obj.external
    assert ext is not None
    assert (ext.adapter, ext.reference, ext.requirement, ext.data_path) == (
        "torch", "losses_torch:softmax_loss", ">= 1.0, <= 1.9", "data/site_0.npz"
    )
    assert ext.convex and ext.convexity.startswith("declared convex by adapter torch")
    with np.load(folder / "data" / "site_0.npz") as z:
        assert np.array_equal(dict(ext.data)["X"], z["X"]) and np.array_equal(dict(ext.data)["y"], z["y"])
    # the IR carries the reference losslessly and deterministically
    d = plan_to_dict(a.plan)
    back = plan_from_dict(json.loads(dumps(d)))
    assert dumps(plan_to_dict(back)) == dumps(d)
    e2 = back.objects[0].external
    assert e2 is not None and e2.reference == ext.reference and np.array_equal(dict(e2.data)["X"], dict(ext.data)["X"])


def test_plans_without_adapters_serialise_without_an_external_key(folder: Path) -> None:
    a = _check(folder, objective="minimize sum_squares(W) + sum_squares(b);")
    assert a.ok
    assert "external" not in plan_to_dict(a.plan)["objects"][0]


def test_an_unsatisfiable_requirement_is_e0901_naming_the_installed_version_and_how_to_install(folder: Path) -> None:
    a = _check(folder, via="torch >= 7")
    (d,) = [d for d in a.diagnostics if d.code.value == "E0901"]
    assert "torch` 1.0.0 is installed, but the spec asks for `torch >= 7`" in d.message
    assert any("pip install" in n.message for n in d.notes)


def test_an_unknown_adapter_is_e0901_listing_the_installed_ones(folder: Path) -> None:
    a = _check(folder, via="torhc >= 1.0")
    (d,) = [d for d in a.diagnostics if d.code.value == "E0901"]
    help_text = " ".join(n.message for n in d.notes)
    assert "did you mean `torch`?" in help_text and "jax 1.0.0 (framework)" in help_text


def test_a_hardware_adapter_after_via_is_e0901(folder: Path) -> None:
    a = _check(folder, via="cpu")
    assert "E0901" in _codes(a)
    assert any("hardware adapter" in d.message for d in a.diagnostics)


def test_a_plain_via_label_stays_a_label(folder: Path) -> None:
    # no requirement and no external loss: `via` names what Functors apply to, nothing is resolved
    a = _check(folder, via="not_an_adapter", objective="minimize sum_squares(W) + sum_squares(b);")
    assert a.ok


@pytest.mark.parametrize(
    ("objective", "fragment"),
    [
        ('minimize "losses_torch:mlp_loss"(data = "data/site_0.npz");', "expects 75 parameters"),
        ('minimize "losses_torch:no_such_fn"(data = "data/site_0.npz");', "has no attribute `no_such_fn`"),
        ('minimize "no_such_module:f"(data = "data/site_0.npz");', "cannot import module `no_such_module`"),
        ('maximize "losses_torch:softmax_loss"(data = "data/site_0.npz");', "write `minimize`"),
        ('minimize "losses_torch:softmax_loss"(weights = "data/site_0.npz");', "not `weights`"),
        ('minimize "losses_torch:softmax_loss"(data = "data/site_0.npz"); subject to { b >= 0; }', "constraints"),
        ('minimize "losses_torch:softmax_loss"(data = "data/site_0.npz"); minimize sum(b);', "one objective"),
    ],
)
def test_bad_external_losses_are_e0902(folder: Path, objective: str, fragment: str) -> None:
    a = _check(folder, objective=objective)
    bad = [d for d in a.diagnostics if d.code.value == "E0902"]
    assert bad, [d.message for d in a.diagnostics]
    assert fragment in " ".join(d.message for d in bad)
    assert a.plan is None


def test_a_loss_that_rejects_the_declared_shapes_when_evaluated_is_e0902(folder: Path) -> None:
    # no `params=` declaration: the adapter evaluates the loss once on the declared vars
    (folder / "plain.py").write_text(
        "import torch\n"
        "def loss(params, data):\n"
        "    return torch.nn.functional.cross_entropy(data['X'] @ params['W'] + params['b'], data['y'], reduction='sum')\n",
        encoding="utf-8",
    )
    text = SPEC.format(via="torch", objective='minimize "plain:loss"(data = "data/site_0.npz");')
    a = _check(folder, text=text.replace("float[5, 3]", "float[4, 3]").replace("model.W;", "model.W[0:4, :];"))
    bad = [d for d in a.diagnostics if d.code.value == "E0902"]
    assert bad and "failed on the declared parameters" in bad[0].message


def test_a_missing_data_file_is_e0601(folder: Path) -> None:
    a = _check(folder, objective='minimize "losses_torch:softmax_loss"(data = "data/nope.npz");')
    assert "E0601" in _codes(a)


def test_a_data_file_outside_the_spec_folder_is_e0605(folder: Path) -> None:
    a = _check(folder, objective='minimize "losses_torch:softmax_loss"(data = "../elsewhere.npz");')
    assert "E0605" in _codes(a) or "E0601" in _codes(a)
    (folder.parent / "elsewhere.npz").write_bytes((folder / "data" / "site_0.npz").read_bytes())
    a = _check(folder, objective='minimize "losses_torch:softmax_loss"(data = "../elsewhere.npz");')
    assert "E0605" in _codes(a)


def test_an_external_loss_without_via_is_e0902(folder: Path) -> None:
    text = SPEC.format(via="torch", objective=SOFTMAX).replace(" via torch", "")
    a = _check(folder, text=text)
    assert "E0902" in _codes(a)


def test_a_non_convex_loss_checks_with_the_heuristic_warning(folder: Path) -> None:
    text = (
        SPEC.format(via="torch", objective='minimize "losses_torch:mlp_loss"(data = "data/site_0.npz");')
        .replace("var W: float[5, 3];\n    var b: float[3];\n    minimize", "var W1: float[5, 8];\n    minimize", 1)
        .replace("0.05 * sum_squares(W) + 0.05 * sum_squares(b)", "0.05 * sum_squares(W1)")
        .replace("var W: float[5, 3];\n    var b: float[3];\n    minimize \"", "var W1: float[5, 8];\n    var b1: float[8];\n    var W2: float[8, 3];\n    var b2: float[3];\n    minimize \"")
        .replace("site_0.W == model.W;\n    site_0.b == model.b;", "site_0.W1 == model.W1;")
    )
    a = _check(folder, text=text)
    assert a.ok, [d.message for d in a.diagnostics]
    assert _codes(a, Severity.WARNING) == ["E0903"]
    assert a.plan.objects[0].external is not None and not a.plan.objects[0].external.convex


def test_check_reports_who_declared_the_loss_convex(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "spec.cat").write_text(SPEC.format(via="jax >= 1.0", objective=SOFTMAX.replace("torch", "jax")), encoding="utf-8")
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, ["check", "spec.cat"])
    assert result.exit_code == 0, result.output
    assert "site_0: `losses_jax:softmax_loss` via jax 1.0.0: declared convex by adapter jax" in result.output


def test_fmt_keeps_the_requirement_and_the_external_loss(folder: Path) -> None:
    text = SPEC.format(via="torch   >=1.0 ,<=1.9", objective='minimize   "losses_torch:softmax_loss"( data="data/site_0.npz" ) ;')
    out = format_source(text, "spec.cat")
    assert out.text is not None
    assert "LocalProblem site_0 via torch >= 1.0, <= 1.9 {" in out.text
    assert '    minimize "losses_torch:softmax_loss"(data = "data/site_0.npz");' in out.text
    assert format_source(out.text, "spec.cat").text == out.text


def test_a_version_with_spaces_inside_is_a_syntax_error(folder: Path) -> None:
    a = _check(folder, via="torch >= 1.0 .3")
    assert "E0001" in _codes(a)


def test_an_init_file_must_hold_every_declared_var(folder: Path) -> None:
    import numpy as np

    np.savez(folder / "data" / "init.npz", W=np.ones((5, 3)))
    a = _check(folder, objective='minimize "losses_torch:softmax_loss"(data = "data/site_0.npz", init = "data/init.npz");')
    bad = [d for d in a.diagnostics if d.code.value == "E0902"]
    assert bad and "missing parameters: b" in bad[0].message
    np.savez(folder / "data" / "init.npz", W=np.ones((5, 3)), b=np.full(3, 2.0))
    a = _check(folder, objective='minimize "losses_torch:softmax_loss"(data = "data/site_0.npz", init = "data/init.npz");')
    assert a.ok
    init = dict(a.plan.objects[0].external.init)
    assert np.array_equal(init["W"], np.ones((5, 3))) and np.array_equal(init["b"], np.full(3, 2.0))


# -- `on NAME <requirement>`: hardware adapters ------------------------------------------------

ON_SPEC = """catopt 1;
SharedVariables s {{ var z: float; }}
LocalProblem a on {on} {{ var x: float; minimize square(x - 1); }}
Limit agree on s {{ a.x == z; }}
"""


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ("cpu >= 1.0", None),
        ("cpu >= 1.0, <= 1.9", None),
        ("rocm", None),  # no requirement: a placement label, resolved by no one
        ("cpu >= 9.0", "adapter `cpu` 1.0.0 is installed, but the spec asks for `cpu >= 9.0`"),
        ("torch >= 1.0", "adapter `torch` is a framework adapter; `on` names a hardware adapter"),
        ("tpu >= 1.0", "no adapter `tpu` is installed"),
    ],
)
def test_on_with_a_requirement_resolves_against_hardware_adapters(tmp_path: Path, on: str, message: str | None) -> None:
    spec = tmp_path / "on.cat"
    spec.write_text(ON_SPEC.format(on=on), encoding="utf-8")
    a = analyze(spec)
    errors = [d for d in a.diagnostics if d.severity is Severity.ERROR]
    if message is None:
        assert not errors, [d.message for d in errors]
        assert a.plan is not None
    else:
        assert [(d.code.value, d.message) for d in errors] == [("E0901", message)]
        assert errors[0].span.col == ON_SPEC.splitlines()[2].index("on {on}") + 4  # the caret at the name


def test_fmt_keeps_the_on_requirement() -> None:
    text = ON_SPEC.format(on="cuda >= 1.0, <= 1.9")
    formatted = format_source(text, "on.cat").text
    assert formatted is not None and "LocalProblem a on cuda >= 1.0, <= 1.9 {" in formatted
    assert format_source(formatted, "on.cat").text == formatted
