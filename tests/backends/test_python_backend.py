from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import catopt_dsl
from _backend_plans import consensus_plan, keyword_plan, sharing_plan
from catopt_dsl.backends.python import emit_python, package_name, render_python
from catopt_dsl.diagnostics import CatoptError
from catopt_dsl.errors import ErrorCode
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.ir.serialize import plan_from_files, plan_to_json

REPO = Path(catopt_dsl.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyout")
    for plan in (consensus_plan(), sharing_plan(), keyword_plan()):
        emit_python(plan, out)
    return out


def _run(out: Path, code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter that sees only the generated packages and catopt_dsl."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(out), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=out, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_package_layout(out_dir: Path) -> None:
    pkg = out_dir / "consensus_demo"
    names = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file())
    assert [n for n in names if not n.startswith("_data/a")] == [
        "__init__.py", "_data/plan.json", "plan.py", "problems.py", "py.typed", "schemas.py",
    ]
    # the shipped plan is the IR itself
    assert plan_to_json(plan_from_files(pkg / "_data")) == plan_to_json(consensus_plan())
    assert package_name(keyword_plan()) == "class_" and (out_dir / "class_" / "plan.py").is_file()


def test_generated_code_in_fresh_interpreter(out_dir: Path) -> None:
    got = _run(out_dir, """
        import json, math
        import numpy as np
        import consensus_demo as cd
        from consensus_demo import Plan, AllocationV1, AllocationV2, TenantA, TenantB
        p = Plan()
        r = AllocationV2(hours=2.5, slots=[[5, 6], [7, 8]])
        d = r.to_dict()
        back = AllocationV2.from_dict(json.loads(json.dumps(d).replace("NaN", "NaN")))
        try:
            AllocationV2(hours=1.0, usage=[1.0, 2.0])
            shape_error = False
        except ValueError:
            shape_error = True
        try:
            r.hours = 3.0
            frozen = False
        except Exception:
            frozen = True
        print(json.dumps({
            "spec": [cd.SPEC_SOURCE, cd.SPEC_HASH, cd.CATOPT_VERSION],
            "all": sorted(cd.__all__),
            "a_demand": p.tenant_a.demand.tolist(),
            "a_platform": p.tenant_a.platform,
            "b_cls": type(p.tenant_b).__name__,
            "b_name": p.tenant_b.name,
            "var_shapes": {k: list(v) for k, v in p.tenant_a.var_shapes.items()},
            "n": p.tenant_a.n,
            "usage_default_nan": math.isnan(r.usage[2]),
            "usage_dtype": str(r.usage.dtype),
            "slots": r.slots.tolist(),
            "slots_dtype": str(r.slots.dtype),
            "active": r.active,
            "weights": r.weights.tolist(),
            "dict_keys": sorted(d),
            "dict_round_trip": back == r,
            "not_equal": AllocationV2(hours=2.0) == r,
            "shape_error": shape_error,
            "frozen": frozen,
            "readonly": not r.usage.flags.writeable,
            "schema_key": AllocationV2.ir_schema().key,
        }))
    """)
    assert got["spec"] == ["consensus_demo.cat", "ab" * 32, _version()]
    assert got["all"] == ["AllocationV1", "AllocationV2", "Plan", "PlanResult", "TenantA", "TenantB"]
    assert got["a_demand"] == [1.0, 2.0, -3.0] and got["a_platform"] == "gpu"
    assert got["b_cls"] == "TenantB" and got["b_name"] == "tenantB"
    assert got["var_shapes"] == {"x": [3]} and got["n"] == 3
    assert got["usage_default_nan"] is True and got["usage_dtype"] == "float64"
    assert got["slots"] == [[5, 6], [7, 8]] and got["slots_dtype"] == "int64" and got["active"] is True
    assert got["weights"] == [0.25, 0.25]
    assert got["dict_keys"] == ["active", "hours", "slots", "usage", "weights"]
    assert got["dict_round_trip"] is True and got["not_equal"] is False
    assert got["shape_error"] is True and got["frozen"] is True and got["readonly"] is True
    assert got["schema_key"] == "Allocation.v2"


def _version() -> str:
    from catopt_dsl.backends.common import catopt_version

    return catopt_version()


def test_wire_round_trip_in_fresh_interpreter(out_dir: Path) -> None:
    pytest.importorskip("catopt_dsl.wire", reason="wire codec not available")
    from catopt_dsl import wire

    if not hasattr(wire, "encode_record"):
        pytest.skip("wire codec without encode_record")
    got = _run(out_dir, """
        import json, math
        from consensus_demo import AllocationV1, AllocationV2
        from class_ import TypeV1
        r = AllocationV2(hours=2.5, usage=[1.0, float("inf"), float("nan")], active=False)
        data = r.to_bytes()
        back = AllocationV2.from_bytes(data)
        # a v1 reader skips the field it does not know; a v2 reader fills defaults for a v1 record
        old = AllocationV1.from_bytes(AllocationV1(hours=4.0).to_bytes())
        kw = TypeV1(type_=2.0, none=3.0, default=4.0)
        kw_back = TypeV1.from_bytes(kw.to_bytes())
        print(json.dumps({
            "equal": back == r, "bytes_type": type(data).__name__,
            "inf": bool(back.usage[1] == math.inf), "nan": math.isnan(back.usage[2]), "active": back.active,
            "stable": r.to_bytes() == data, "old": old.hours,
            "kw": [kw_back.type_, kw_back.none, kw_back.default, kw_back.lambda_],
            "kw_dict": sorted(kw.to_dict())[:4],
        }))
    """)
    assert got["equal"] is True and got["bytes_type"] == "bytes" and got["stable"] is True
    assert got["inf"] is True and got["nan"] is True and got["active"] is False
    assert got["old"] == 4.0
    assert got["kw"] == [2.0, 3.0, 4.0, 1.0]
    assert got["kw_dict"] == ["None", "and", "async", "class"]


def test_plans_families_and_deltas_in_fresh_interpreter(out_dir: Path) -> None:
    got = _run(out_dir, """
        import json
        from sharing_demo import Plan, TenantDJoinsPlan, TenantDJoinsSiteLeavesPlan, SiteFamily, Site
        import class_
        p = Plan()
        d = p.tenant_d_joins()
        dd = d.site_leaves()
        standalone = TenantDJoinsSiteLeavesPlan()
        kp = class_.Plan()
        print(json.dumps({
            "family_type": type(p.site).__name__, "members": [m.name for m in p.site],
            "site1": p.site[1].target.tolist(), "site_index": p.site[2].index,
            "delta_types": [type(d).__name__, type(dd).__name__],
            "delta_objects": list(d.objects), "dd_objects": list(dd.objects),
            "tenant_d": d.tenant_d.name, "standalone": list(standalone.objects),
            "kw_attrs": [kp.type_.name, kp.match_.name, kp.class_.name, kp.none.name, kp.lambda_.name, kp.in_.name],
            "kw_params": [kp.type_.is_.tolist(), kp.in_.yield_.tolist(), kp.match_.default.tolist()],
            "kw_delta": list(kp.yield_().objects),
            "kw_delta_type": type(kp.yield_()).__name__,
        }))
    """)
    assert got["family_type"] == "SiteFamily"
    assert got["members"] == ["site[0]", "site[1]", "site[2]"]
    assert got["site1"] == [2.0, 2.0] and got["site_index"] == 2
    assert got["delta_types"] == ["TenantDJoinsPlan", "TenantDJoinsSiteLeavesPlan"]
    assert got["delta_objects"] == ["site[0]", "site[1]", "site[2]", "tenant_d"]
    assert got["dd_objects"] == ["site[0]", "site[1]", "tenant_d"] == got["standalone"]
    assert got["tenant_d"] == "tenant_d"
    assert got["kw_attrs"] == ["type", "match", "class", "None", "lambda", "in"]
    assert got["kw_params"] == [[0.0, 1.0], [5.0, 1.0], [1.0, 1.0]]
    assert got["kw_delta"] == ["type", "match", "class", "None", "lambda"]
    assert got["kw_delta_type"] == "YieldPlan"


def test_build_and_solve_in_fresh_interpreter(out_dir: Path) -> None:
    pytest.importorskip("catopt_dsl.solver.cvx")
    got = _run(out_dir, """
        import json, warnings
        import numpy as np
        warnings.simplefilter("ignore")
        from consensus_demo import Plan
        p = Plan()
        prob, h = p.tenant_a.build()
        h["centre"].value = np.array([0.0, 0.0, 5.0])
        h["rho"].value = 2.0
        prob.solve()
        out = {"prox_x": h["x"].value.tolist(), "keys": sorted(h)}
        try:
            from catopt_dsl.solver import solve, solve_centralized
        except ImportError:
            solve = None
        if solve is not None:
            r = p.solve(eps_abs=1e-7, eps_rel=1e-7)
            c = p.centralized()
            out.update(status=r.status, objective=r.objective, a=r.value("tenant_a", "x").tolist(),
                       b=r.value("tenantB", "x").tolist(), c_status=c.status, c_objective=c.objective,
                       result_type=type(r).__name__)
        print(json.dumps(out))
    """)
    # prox of sum_squares(x - d) + rho/2 |x - c|^2 with x >= 0: x = max(0, (2d + rho c) / (2 + rho))
    d, c, rho = [1.0, 2.0, -3.0], [0.0, 0.0, 5.0], 2.0
    expected = [max(0.0, (2 * di + rho * ci) / (2 + rho)) for di, ci in zip(d, c)]
    assert got["keys"] == ["centre", "rho", "x"]
    assert got["prox_x"] == pytest.approx(expected, abs=1e-5)
    if "status" in got:
        # consensus of the two tenants: z = max(0, mean demand); objective 14
        assert got["status"] == got["c_status"] == "optimal" and got["result_type"] == "PlanResult"
        assert got["a"] == pytest.approx([2.0, 1.0, 0.0], abs=1e-3)
        assert got["b"] == pytest.approx([2.0, 1.0, 0.0], abs=1e-3)
        assert got["c_objective"] == pytest.approx(14.0, abs=1e-4)
        assert got["objective"] == pytest.approx(14.0, abs=1e-2)


def test_mypy_strict_passes_and_can_fail(out_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api")
    monkeypatch.setenv("MYPYPATH", str(REPO))
    monkeypatch.chdir(out_dir)
    args = ["--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
            "-p", "consensus_demo", "-p", "sharing_demo", "-p", "class_"]
    stdout, stderr, status = api.run(args)
    assert status == 0, stdout + stderr
    assert stdout.startswith("Success: no issues found")
    # The same check on a copy with a type error must fail: the test can catch a regression.
    bad = out_dir / "consensus_demo" / "plan.py"
    original = bad.read_text()
    try:
        bad.write_text(original.replace("def tenant_a", "def tenant_a_x") + "\nX: int = Plan().tenant_a.demand\n")
        stdout, _, status = api.run(args)
        assert status == 1 and "Incompatible types" in stdout
    finally:
        bad.write_text(original)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_output_is_byte_identical_across_emits(tmp_path: Path) -> None:
    for make in (consensus_plan, sharing_plan, keyword_plan):
        emit_python(make(), tmp_path / "one")
        emit_python(make(), tmp_path / "two")
        emit_python(make(), tmp_path / "two")  # re-emitting over an existing package
    one, two = _tree(tmp_path / "one"), _tree(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) > 20
    assert one == two
    text = b"".join(v for k, v in one.items() if k.endswith(".py")).decode()
    assert str(tmp_path) not in text and str(REPO) not in text


def test_generated_sources_are_black_clean() -> None:
    import black

    for module, text in render_python(sharing_plan()).items():
        assert black.format_str(text, mode=black.Mode(line_length=100)) == text, module
        compile(text, module, "exec")


def test_collision_is_an_error(tmp_path: Path) -> None:
    base = consensus_plan()
    from dataclasses import replace

    clash = IRPlan(**{**base.__dict__, "objects": (base.objects[0], replace(base.objects[1], name="TenantA"))})
    with pytest.raises(CatoptError) as info:
        emit_python(clash, tmp_path)
    assert {d.code for d in info.value.diagnostics} == {ErrorCode.NAME_COLLISION}
    assert not (tmp_path / "consensus_demo").exists()
