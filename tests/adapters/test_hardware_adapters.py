"""cpu and cuda: detection, recorded descriptors, canonical units, and the no-GPU path."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from catopt_dsl.adapters import registry
from catopt_dsl.adapters.api import AdapterError, AdapterUnavailable, DeviceDescriptor
from catopt_dsl.adapters.cpu_adapter import (
    CpuAdapter,
    descriptor_from_proc,
    fp32_flops_per_cycle,
)
from catopt_dsl.adapters.cuda_adapter import (
    CudaAdapter,
    descriptor_from_sources,
    parse_smi_csv,
)
from catopt_dsl.adapters.kit import validate_descriptor

RECORDED = Path(__file__).resolve().parents[2] / "catopt_dsl" / "adapters" / "recorded"


def test_cpu_describes_this_machine_and_probes_on_demand() -> None:
    cpu = CpuAdapter()
    (d,) = cpu.describe()
    assert validate_descriptor(d, ("cpu",)) == []
    assert d.compute_units == len(os.sched_getaffinity(0)) and d.memory_bytes > 2**28
    cap = cpu.capacity(d)
    assert cap.memory_gib == d.memory_bytes / 2**30 and cap.devices == 1
    probed = cpu.probe(d, seconds=0.05)
    assert probed.peak_source == "probe" and probed.peak_fp32_tflops is not None and probed.peak_fp32_tflops > 0
    assert cpu.capacity(probed).compute_hours(2.0) == pytest.approx(2 * probed.peak_fp32_tflops)
    assert cpu.placement("torch") == "cpu" and cpu.placement("jax") == "cpu"
    with pytest.raises(AdapterError, match="one CPU device"):
        cpu.placement("torch", 1)


def test_cpu_parsing_of_recorded_proc_files() -> None:
    rec = json.loads((RECORDED / "cpu" / "xeon_gold_6248.json").read_text())
    d = descriptor_from_proc(rec["raw"]["cpuinfo"], rec["raw"]["meminfo"], 20)
    assert d.name == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz" and d.clock_mhz == 2500.0
    assert dict(d.extra)["isa"] == "avx512f" and d.peak_fp32_tflops == pytest.approx(3.2)
    assert fp32_flops_per_cycle({"avx2", "fma"}) == 32 and fp32_flops_per_cycle({"avx"}) == 16
    assert fp32_flops_per_cycle(set()) == 8
    with pytest.raises(AdapterError, match="MemTotal"):
        descriptor_from_proc("", "", 4)


SMI_TWO = (
    "index, name, uuid, memory.total [MiB], clocks.max.sm [MHz], compute_cap, driver_version\n"
    "0, NVIDIA A100-SXM4-40GB, GPU-aaaa, 40960 MiB, 1410 MHz, 8.0, 535.183.01\n"
    "1, NVIDIA H200, GPU-bbbb, 143771 MiB, 1980 MHz, 9.0, 535.183.01\n"
)


def test_cuda_mapping_from_each_source_alone() -> None:
    rows = parse_smi_csv(SMI_TWO)
    assert [r["name"] for r in rows] == ["NVIDIA A100-SXM4-40GB", "NVIDIA H200"]
    assert rows[1]["memory.total"] == "143771 MiB"
    # nvidia-smi alone: the SM count comes from the table of known cards.
    smi_only = descriptor_from_sources(1, rows[1], None)
    assert smi_only.compute_units == 132 and smi_only.peak_fp32_tflops == pytest.approx(66.9, rel=1e-3)
    assert dict(smi_only.extra)["sources"] == "nvidia-smi"
    # torch alone: the clock comes from the table.
    props = {"name": "Tesla T4", "major": 7, "minor": 5, "total_memory": 16106127360, "multi_processor_count": 40}
    torch_only = descriptor_from_sources(0, None, props)
    assert torch_only.clock_mhz == 1590 and torch_only.peak_fp32_tflops == pytest.approx(8.14, rel=1e-3)
    # An unknown card with no clock: the rate is unknown until probed, and says so.
    odd = descriptor_from_sources(0, None, {**props, "name": "Future GPU 9000", "major": 11, "minor": 0})
    assert odd.peak_fp32_tflops is None and odd.peak_source == "unknown"
    assert validate_descriptor(odd, ("cuda",)) == []
    with pytest.raises(AdapterError, match="header"):
        parse_smi_csv("0, NVIDIA H200, GPU-x\n")


def test_descriptor_schema_catches_inconsistencies() -> None:
    good = descriptor_from_sources(0, parse_smi_csv(SMI_TWO)[0], None)
    assert validate_descriptor(good, ("cuda",)) == []
    assert "not one the contract serves" in validate_descriptor(good, ("cpu",))[0]
    assert "should be `unknown`" in validate_descriptor(replace(good, peak_fp32_tflops=None), ())[0]
    assert "positive integer" in validate_descriptor(replace(good, memory_bytes=0), ())[0]
    assert validate_descriptor("H200") == ["a descriptor must be a DeviceDescriptor, not str"]
    assert isinstance(good, DeviceDescriptor)


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `nvidia-smi` on PATH that answers the adapter's query with recorded output."""
    script = tmp_path / "nvidia-smi"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "assert sys.argv[1].startswith('--query-gpu=index,name,uuid'), sys.argv\n"
        f"sys.stdout.write({SMI_TWO!r})\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def test_cuda_runs_the_real_nvidia_smi_path(fake_nvidia_smi: Path) -> None:
    cuda = CudaAdapter()
    assert cuda.availability().ok
    devices = cuda.describe()
    assert [d.name for d in devices] == ["NVIDIA A100-SXM4-40GB", "NVIDIA H200"]
    assert [round(cuda.capacity(d).compute_ncu or 0, 1) for d in devices] == [19.5, 66.9]
    assert [round(cuda.capacity(d).memory_gib, 1) for d in devices] == [40.0, 140.4]
    import torch

    if not torch.cuda.is_available():  # nvidia-smi sees cards, but this torch cannot use them
        with pytest.raises(AdapterUnavailable, match="sees no CUDA device"):
            cuda.placement("torch")


def test_without_a_gpu_cuda_is_unavailable_and_placement_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.fail("this test describes a machine without a GPU; on a GPU machine see test_cuda_on_a_gpu")
    monkeypatch.setenv("PATH", "")  # no nvidia-smi either
    cuda = CudaAdapter()
    avail = cuda.availability()
    assert not avail.ok
    assert avail.reason.startswith("no CUDA device here: nvidia-smi is not on PATH; torch ")
    with pytest.raises(AdapterUnavailable, match="no CUDA device here"):
        cuda.describe()
    with pytest.raises(AdapterError, match="torch and jax adapters"):
        cuda.placement("tensorflow")
    placed = registry.place("torch", ("cuda", "cpu"))
    assert placed.hardware == "cpu" and placed.device == "cpu"
    assert placed.notes and "adapter cuda cannot place torch work" in placed.notes[0]
    with pytest.raises(AdapterUnavailable, match="no hardware adapter can take torch work"):
        registry.place("torch", ("cuda",))
