"""Hardware adapter `cpu`: this machine's cores and memory in canonical units.

Detection reads what Linux reports (``/proc/cpuinfo``, ``/proc/meminfo``, the process's CPU
affinity), falling back to ``os`` where those files do not exist. The fp32 rate is first an
*estimate* from the instruction set (fp32 operations per core per cycle: 64 with AVX-512 and two
FMA units, 32 with AVX2+FMA, 16 with AVX, 8 otherwise, NEON included) times the clock times the
usable cores; :meth:`CpuAdapter.probe` replaces it on demand with a *measured* rate, a timed
float32 matrix product through numpy's BLAS (all usable cores, as a tenant's training would use
them). Canonical capacity: ``compute`` in ncu (1 ncu = 1 TFLOP/s fp32), ``memory`` in GiB.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from catopt_dsl.adapters.api import (
    ADAPTER_API_VERSION,
    AdapterError,
    Capacity,
    Contract,
    DeviceDescriptor,
    HardwareAdapter,
    Quantity,
    RecordedDevice,
)
from catopt_dsl.adapters.units import GIB

__all__ = ["CpuAdapter", "adapter", "descriptor_from_proc", "fp32_flops_per_cycle"]

HARDWARE_QUANTITIES = (
    Quantity("compute", "ncu"),
    Quantity("compute_hours", "ncu_h"),
    Quantity("memory", "GiB"),
    Quantity("devices", "count"),
)

RECORDED_DIR = Path(__file__).resolve().parent / "recorded"


def fp32_flops_per_cycle(flags: set[str]) -> int:
    """fp32 operations one core retires per cycle with its widest FMA units (an upper bound)."""
    if "avx512f" in flags:
        return 64  # 2 FMA units x 16 lanes x 2 operations
    if "avx2" in flags and "fma" in flags:
        return 32  # 2 x 8 x 2
    if "avx" in flags:
        return 16  # one add + one multiply unit x 8 lanes
    return 8  # SSE / NEON: 4 lanes, FMA or add+mul


def _parse_cpuinfo(text: str) -> tuple[str, float | None, set[str]]:
    model: str = ""
    mhz: float | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and not model:
            model = value
        elif key == "cpu mhz" and mhz is None:
            try:
                mhz = float(value)
            except ValueError:
                pass
        elif key in ("flags", "features") and not flags:  # x86 `flags`, Arm `Features`
            flags = set(value.lower().split())
    return model or "unknown CPU", mhz, flags


def _parse_meminfo(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024  # kB
            except (IndexError, ValueError):
                return None
    return None


def descriptor_from_proc(cpuinfo: str, meminfo: str, cores: int) -> DeviceDescriptor:
    """The CPU descriptor from the text of ``/proc/cpuinfo`` and ``/proc/meminfo`` and a core count."""
    if cores < 1:
        raise AdapterError(f"a CPU needs at least one core, not {cores}")
    model, mhz, flags = _parse_cpuinfo(cpuinfo)
    memory = _parse_meminfo(meminfo)
    if memory is None:
        raise AdapterError("cannot read the memory size (no MemTotal line in /proc/meminfo)")
    fpc = fp32_flops_per_cycle(flags)
    peak = None if mhz is None else cores * mhz * 1e6 * fpc / 1e12
    isa = next((f for f in ("avx512f", "avx2", "avx", "neon", "asimd") if f in flags), "baseline")
    return DeviceDescriptor(
        platform="cpu",
        index=0,
        name=model,
        memory_bytes=memory,
        compute_units=cores,
        clock_mhz=mhz,
        peak_fp32_tflops=peak,
        peak_source="estimate" if peak is not None else "unknown",
        extra=(("isa", isa), ("fp32_flops_per_cycle", str(fpc))),
    )


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class CpuAdapter(HardwareAdapter):
    """The `cpu` hardware adapter (entry point ``cpu`` in group ``catopt.adapters``)."""

    contract = Contract(
        name="cpu",
        version="1.0.0",
        kind="hardware",
        api_version=ADAPTER_API_VERSION,
        summary="this machine's CPU cores and memory; fp32 rate estimated from the ISA or measured by a timed matmul",
        platforms=("cpu",),
        quantities=HARDWARE_QUANTITIES,
        requires=("numpy>=1.24",),
        install="included with catopt-dsl",
    )

    def describe(self) -> tuple[DeviceDescriptor, ...]:
        cpuinfo = _read("/proc/cpuinfo")
        meminfo = _read("/proc/meminfo")
        if not meminfo:
            pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            meminfo = f"MemTotal: {pages * size // 1024} kB\n"
        return (descriptor_from_proc(cpuinfo, meminfo, _usable_cores()),)

    def capacity(self, device: DeviceDescriptor) -> Capacity:
        return Capacity(device.peak_fp32_tflops, device.memory_bytes / GIB, 1)

    def probe(self, device: DeviceDescriptor, seconds: float = 0.5) -> DeviceDescriptor:
        n = 512
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        a @ b  # warm-up: BLAS thread pool start-up is not throughput
        runs, start = 0, time.perf_counter()
        while True:
            a @ b
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and runs >= 3:
                break
        tflops = 2 * n**3 * runs / elapsed / 1e12
        return replace(device, peak_fp32_tflops=tflops, peak_source="probe")

    def placement(self, framework: str, index: int = 0) -> str:
        if index != 0:
            raise AdapterError(f"adapter cpu: there is one CPU device (index 0), not {index}")
        return "cpu"

    def recorded(self) -> tuple[RecordedDevice, ...]:
        out = []
        for path in sorted((RECORDED_DIR / "cpu").glob("*.json")):
            d = json.loads(path.read_text(encoding="utf-8"))
            out.append(RecordedDevice(d["label"], dict(d["raw"]), d["expected_ncu"], d["expected_gib"], d.get("rel_tol", 0.03)))
        return tuple(out)

    def parse_recorded(self, recorded: RecordedDevice) -> DeviceDescriptor:
        raw = recorded.raw
        return descriptor_from_proc(raw["cpuinfo"], raw["meminfo"], int(raw["cores"]))


adapter = CpuAdapter()
