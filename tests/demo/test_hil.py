"""``catoptc demo hil`` on CPU: a probed capacity, a solved plan, real training per tenant, and
planned against achieved throughput with the error; CUDA reported as skipped with a reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.demo.hil import TENANTS, flops_per_sample, run_hil

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


@pytest.mark.slow
def test_hil_on_cpu_plans_runs_and_compares(tmp_path: Path) -> None:
    out = tmp_path / "hil"
    res = CliRunner().invoke(main, ["demo", "hil", "--window", "0.5", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["ok"] is True
    devices = {d["platform"]: d for d in data["devices"]}
    cpu = devices["cpu"]
    assert cpu["skipped"] == "" and cpu["status"] == "optimal"
    assert cpu["capacity_ncu"] > 0 and cpu["rel_objective_error"] <= 1e-4
    assert [t["tenant"] for t in cpu["tenants"]] == [t[0] for t in TENANTS]
    # the plan holds the probed capacity as measured; ADMM meets it to its tolerance
    assert sum(t["ncu"] for t in cpu["tenants"]) <= cpu["capacity_ncu"] * (1 + 1e-5)
    for t, spec in zip(cpu["tenants"], TENANTS):
        assert t["steps"] >= 2 and t["achieved"] > 0 and t["planned"] > 0
        # the plan's promise follows from its allocation and the model's FLOPs, the error from both
        assert t["planned"] == pytest.approx(t["ncu"] * 1e12 / flops_per_sample(spec[1]), rel=1e-9)
        assert t["rel_error"] == pytest.approx(t["achieved"] / t["planned"] - 1, rel=1e-9)
        assert math.isfinite(t["loss_first"]) and math.isfinite(t["loss_last"])
    cuda = devices["cuda"]
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if not has_cuda:
        assert cuda["skipped"], "without a usable GPU the CUDA part must say it was skipped, and why"
        assert cuda["tenants"] == []
        assert "cuda: skipped (" in res.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 1 + int(has_cuda)
    if not has_cuda:
        assert "<b>skipped</b>: " + cuda["skipped"].split(":")[0] in html


def test_a_platform_without_a_device_is_skipped_not_faked() -> None:
    run = run_hil(window_s=0.2, platforms=("cuda",))
    (dev,) = run.devices
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA device")
    except ImportError:  # pragma: no cover
        pass
    assert dev.skipped and not dev.tenants and dev.status == ""
    assert not run.ok  # nothing ran: the run does not claim success


def test_without_torch_every_platform_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    run = run_hil(window_s=0.2)
    assert [d.platform for d in run.devices] == ["cpu", "cuda"]
    assert all("torch is not installed" in d.skipped and not d.tenants for d in run.devices)
    assert not run.ok
