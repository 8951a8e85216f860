from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from _backend_plans import consensus_plan, expression_zoo_plan, keyword_plan, sharing_plan
from catopt_dsl.ir.model import IRCall, IRConst, IRPlan
from catopt_dsl.ir.serialize import (
    plan_from_dict,
    plan_from_files,
    plan_from_json,
    plan_to_dict,
    plan_to_files,
    plan_to_json,
)

PLANS = {
    "consensus": consensus_plan,
    "sharing": sharing_plan,
    "keywords": keyword_plan,
    "zoo": expression_zoo_plan,
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_dict_round_trip_is_lossless(name: str) -> None:
    plan = PLANS[name]()
    d = plan_to_dict(plan)
    back = plan_from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert plan_to_dict(back) == d
    assert plan_to_json(back) == plan_to_json(plan)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_files_round_trip_is_lossless(name: str, tmp_path: Path) -> None:
    plan = PLANS[name]()
    plan_to_files(plan, tmp_path)
    back = plan_from_files(tmp_path)
    assert plan_to_json(back) == plan_to_json(plan)


def test_nonfinite_and_dtypes_survive(tmp_path: Path) -> None:
    plan = expression_zoo_plan()
    for back in (plan_from_json(plan_to_json(plan)), _via_files(plan, tmp_path)):
        obj = back.objects[0]
        call = obj.objective
        assert isinstance(call, IRCall)
        const = call.args[0].right.operand.operand.left  # type: ignore[union-attr]
        assert isinstance(const, IRConst)
        v = const.value
        assert v.dtype == np.float64 and v.shape == (2, 2)
        assert v[0, 0] == 1.0 and math.isnan(v[0, 1]) and v[1, 0] == math.inf and v[1, 1] == -math.inf
        assert not v.flags.writeable
        opts = dict(call.options)
        assert opts["axis"] is None and opts["M"] == 1.5 and opts["tag"] == "nan"
        w = opts["weights"]
        assert isinstance(w, tuple) and w[:2] == (1, 2.5) and math.isnan(w[2])
        assert obj.param("k").value.dtype == np.int64 and list(obj.param("k").value) == [1, 2]
        assert obj.param("mask").value.dtype == np.bool_ and list(obj.param("mask").value) == [True, False]
        assert obj.constraints[0].lhs.key == (1, (0, 3, 2))  # type: ignore[union-attr]
        assert (obj.platform, obj.adapter, obj.functors, obj.sense) == ("cpu", "adapter1", ("f1",), "maximize")
        usage = back.schema("Allocation", 2).fields[1].default
        assert usage[:2] == [0.0, 0.5] and math.isnan(usage[2])


def _via_files(plan: IRPlan, tmp: Path) -> IRPlan:
    plan_to_files(plan, tmp / "f")
    return plan_from_files(tmp / "f")


def test_json_has_no_nan_literals_and_is_canonical() -> None:
    text = plan_to_json(expression_zoo_plan())
    assert "NaN" not in text and "Infinity" not in text
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def test_deltas_serialise_recursively() -> None:
    back = plan_from_json(plan_to_json(sharing_plan()))
    d = back.delta("tenant_d_joins")
    assert d.ops == ("add LocalProblem tenant_d",)
    assert [o.name for o in d.result.objects] == ["site[0]", "site[1]", "site[2]", "tenant_d"]
    inner = d.result.delta("site_leaves").result
    assert [o.name for o in inner.objects] == ["site[0]", "site[1]", "tenant_d"]
    rhs = back.couplings[0].rhs
    assert rhs[0] == 4.0 and rhs[1] == math.inf


def test_files_are_deterministic_and_deduplicated(tmp_path: Path) -> None:
    plan = sharing_plan()
    a = plan_to_files(plan, tmp_path / "a")
    b = plan_to_files(sharing_plan(), tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    # Every array of the three plans (base + two deltas) is one of a handful of distinct values.
    npys = [p for p in a if p.suffix == ".npy"]
    blobs = {p.read_bytes() for p in npys}
    assert len(blobs) == len(npys)


def test_rewriting_a_folder_removes_stale_arrays(tmp_path: Path) -> None:
    plan_to_files(sharing_plan(), tmp_path)
    written = plan_to_files(consensus_plan(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert plan_from_files(tmp_path).name == "consensus_demo"


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    d = plan_to_dict(consensus_plan())
    with pytest.raises(ValueError):
        plan_from_dict({**d, "format": 99})
    with pytest.raises(ValueError):
        plan_from_dict({**d, "kind": "something"})
    plan_to_files(consensus_plan(), tmp_path)
    doc = json.loads((tmp_path / "plan.json").read_text())
    doc["objects"][0]["params"][0]["value"]["__npy__"] = "../escape.npy"
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError):
        plan_from_files(tmp_path)
