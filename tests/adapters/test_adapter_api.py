"""The adapter API's own rules: layouts, references, data files, contracts, requirements."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.adapters.api import (
    ADAPTER_API_VERSION,
    AdapterError,
    ParamLayout,
    api_compatible,
    contract_problems,
    read_data,
    resolve_callable,
)
from catopt_dsl.adapters.registry import parse_requirement
from catopt_dsl.adapters.torch_adapter import TorchAdapter


def test_layout_is_declaration_order_then_row_major() -> None:
    layout = ParamLayout.of(("W", (2, 3)), ("b", (3,)), ("s", ()))
    assert layout.n == 10
    W = np.arange(6.0).reshape(2, 3)
    flat = layout.flatten({"b": [10.0, 11.0, 12.0], "W": W, "s": 99.0})
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 10, 11, 12, 99]
    back = layout.unflatten(flat)
    assert np.array_equal(back["W"], W) and back["s"].shape == ()
    with pytest.raises(AdapterError, match="shape"):
        layout.flatten({"W": W.T, "b": [0, 0, 0], "s": 0})
    with pytest.raises(AdapterError, match="does not fit"):
        layout.unflatten(np.zeros(9))


def test_resolve_callable_reports_each_failure_in_one_line(tmp_path: Path) -> None:
    assert resolve_callable("os.path:join") is __import__("os").path.join
    for ref, words in [
        ("no_colon", "must be `module:function`"),
        ("a:b:c", "must be `module:function`"),
        ("not a module:f", "dotted Python names"),
        ("surely_not_installed_pkg:f", "cannot import module `surely_not_installed_pkg`"),
        ("os.path:no_such_function", "has no attribute `no_such_function`"),
        ("os:sep", "is a str, not a function"),
    ]:
        with pytest.raises(AdapterError, match=words):
            resolve_callable(ref)
    # A module next to the spec is loaded from there, under a private name (never shadowing).
    (tmp_path / "tenant_losses.py").write_text("def loss(p, d):\n    return 1.5\n", encoding="utf-8")
    fn = resolve_callable("tenant_losses:loss", [tmp_path])
    assert fn({}, {}) == 1.5 and fn.__module__.startswith("_catopt_ext_")
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    with pytest.raises(AdapterError, match="RuntimeError: boom"):
        resolve_callable("raises:f", [tmp_path])


def test_read_data(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.ones((2, 2)), y=np.array([0, 1]))
    got = read_data(tmp_path / "d.npz")
    assert sorted(got) == ["X", "y"] and got["y"].dtype.kind == "i"
    np.save(tmp_path / "w.npy", np.array([1.0, np.nan]))
    with pytest.raises(AdapterError, match="NaN or Inf"):
        read_data(tmp_path / "w.npy")
    np.save(tmp_path / "o.npy", np.array(["a"], dtype=object), allow_pickle=True)
    with pytest.raises(AdapterError, match="cannot read"):
        read_data(tmp_path / "o.npy")
    with pytest.raises(AdapterError, match=r"\.npz or \.npy"):
        read_data(tmp_path / "d.csv")


def test_contract_problems_name_every_defect() -> None:
    good = TorchAdapter.contract
    assert contract_problems(good) == []
    bad = replace(
        good, name="Torch!", version="1.0", kind="gpu", api_version="9.0", platforms=(),  # type: ignore[arg-type]
        requires=("torch >>= 2",), samples=(("softmax", "no_colon"),),
    )
    text = "; ".join(contract_problems(bad))
    for words in ("lower-case", "not a semantic version", "kind `gpu`", "adapter API 9.0", "platforms is empty",
                  "not a PEP 508 requirement"):
        assert words in text, words
    units = replace(good, quantities=(replace(good.quantities[0], unit="bytes"),))
    assert "measured in `float64`, not `bytes`" in contract_problems(units)[0]
    assert "known:" in contract_problems(replace(good, quantities=(replace(good.quantities[0], name="flops"),)))[0]
    assert contract_problems(object()) == ["`contract` must be a catopt_dsl.adapters.Contract, not object"]


def test_api_versions_and_requirements() -> None:
    major = ADAPTER_API_VERSION.split(".")[0]
    assert api_compatible(f"{major}.0") and not api_compatible(f"{int(major) + 1}.0")
    assert not api_compatible(f"{major}.99") and not api_compatible("one")
    req = parse_requirement("torch >= 1.0, < 2")
    assert req.name == "torch" and req.admits("1.4.2") and not req.admits("2.0.0")
    assert parse_requirement("cuda").admits("0.0.1")
    for text in ("torch >>= 1", "torch[extra] >= 1", "torch; python_version > '3'"):
        with pytest.raises(AdapterError):
            parse_requirement(text)
