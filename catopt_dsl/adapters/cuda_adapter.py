"""Hardware adapter `cuda`: NVIDIA GPUs seen through torch and ``nvidia-smi``, in canonical units.

Two sources, merged by device index, each optional:

* ``torch.cuda.get_device_properties(i)``: name, compute capability, memory, SM count;
* ``nvidia-smi --query-gpu=index,name,uuid,memory.total,clocks.max.sm,compute_cap,driver_version
  --format=csv``: memory, the maximum SM clock, compute capability, driver.

The fp32 rate follows from the architecture: ``SMs x fp32 lanes per SM (by compute capability) x 2
(an FMA is two operations) x max SM clock``, which reproduces the vendors' published fp32 peaks
(H200/H100 SXM 67, A100 19.5, T4 8.1 TFLOP/s; see the recorded descriptors in ``recorded/cuda``).
Where a source is missing, a table of known cards supplies the SM count or clock; where that fails
too, the rate is ``unknown`` until :meth:`CudaAdapter.probe` measures it (a timed fp32 matmul with
TF32 off, through torch). Memory is the card's (``nvidia-smi``'s ``memory.total``, else torch's).

Without a GPU the adapter says so: :meth:`availability` is not ok, with the reason (no
``nvidia-smi``, a CPU-only torch build, ...), and :meth:`placement` raises
:class:`~catopt_dsl.adapters.api.AdapterUnavailable`, so the plan can fall back (see
``registry.place``). The same code runs unchanged on a GPU machine: nothing is mocked in it.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from catopt_dsl.adapters.api import (
    ADAPTER_API_VERSION,
    AdapterError,
    AdapterUnavailable,
    Availability,
    Capacity,
    Contract,
    DeviceDescriptor,
    HardwareAdapter,
    RecordedDevice,
)
from catopt_dsl.adapters.cpu_adapter import HARDWARE_QUANTITIES, RECORDED_DIR
from catopt_dsl.adapters.units import GIB

__all__ = ["SMI_QUERY", "CudaAdapter", "adapter", "descriptor_from_sources", "parse_smi_csv"]

SMI_FIELDS = ("index", "name", "uuid", "memory.total", "clocks.max.sm", "compute_cap", "driver_version")
SMI_QUERY = ("nvidia-smi", "--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv")

#: fp32 lanes per streaming multiprocessor, by compute capability (CUDA C Programming Guide,
#: "Arithmetic Instructions" throughput table: 32-bit floating-point add, multiply, multiply-add).
FP32_PER_SM: dict[tuple[int, int], int] = {
    (6, 0): 64, (6, 1): 128, (6, 2): 128,
    (7, 0): 64, (7, 2): 64, (7, 5): 64,
    (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128,
    (9, 0): 128,
    (10, 0): 128, (10, 3): 128, (12, 0): 128,
}

#: Known cards: (substring of the name, SM count, max SM clock MHz). Order matters: the first
#: substring found wins, so "A100" is listed before "A10" and "L40S" before "L4".
KNOWN_CARDS: tuple[tuple[str, int, int], ...] = (
    ("H200", 132, 1980),
    ("H100 PCIe", 114, 1755),
    ("H100", 132, 1980),
    ("A100", 108, 1410),
    ("A10", 72, 1695),
    ("L40S", 142, 2520),
    ("L4", 58, 2040),
    ("T4", 40, 1590),
    ("V100", 80, 1530),
)


def _known(name: str) -> tuple[int, int] | None:
    for key, sms, clock in KNOWN_CARDS:
        if key in name:
            return sms, clock
    return None


def _number(text: str) -> float | None:
    m = re.search(r"[-+]?\d+(?:\.\d+)?", text or "")
    return float(m.group(0)) if m else None


def parse_smi_csv(text: str) -> list[dict[str, str]]:
    """Rows of ``nvidia-smi --query-gpu=... --format=csv`` output (header with units in brackets)."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        return []
    header = [re.sub(r"\s*\[.*\]$", "", c.strip()) for c in rows[0]]
    if "name" not in header:
        raise AdapterError("nvidia-smi output has no header row with `name` (was it asked for --format=csv?)")
    return [{k: v.strip() for k, v in zip(header, r)} for r in rows[1:]]


def descriptor_from_sources(index: int, smi: Mapping[str, str] | None, props: Mapping[str, Any] | None) -> DeviceDescriptor:
    """Merge one device's nvidia-smi row and torch properties into a :class:`DeviceDescriptor`."""
    if not smi and not props:
        raise AdapterError(f"no information about CUDA device {index}")
    smi = smi or {}
    props = props or {}
    name = str(props.get("name") or smi.get("name") or f"CUDA device {index}")
    known = _known(name)
    mem_mib = _number(smi.get("memory.total", ""))
    memory = int(mem_mib * 2**20) if mem_mib is not None else int(props.get("total_memory", 0))
    sms = int(props["multi_processor_count"]) if props.get("multi_processor_count") else (known[0] if known else 0)
    clock = _number(smi.get("clocks.max.sm", "")) or (float(known[1]) if known else None)
    if "major" in props:
        cc: tuple[int, int] | None = (int(props["major"]), int(props.get("minor", 0)))
    else:
        parts = smi.get("compute_cap", "").split(".")
        cc = (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(p.isdigit() for p in parts) else None
    lanes = FP32_PER_SM.get(cc) if cc else None
    peak = sms * lanes * 2 * clock * 1e6 / 1e12 if (sms and lanes and clock) else None
    sources = "+".join(s for s, present in (("torch", bool(props)), ("nvidia-smi", bool(smi))) if present)
    extra = [("sources", sources)]
    if cc:
        extra.append(("compute_capability", f"{cc[0]}.{cc[1]}"))
    for key in ("uuid", "driver_version"):
        if smi.get(key):
            extra.append((key, smi[key]))
    return DeviceDescriptor(
        platform="cuda",
        index=index,
        name=name,
        memory_bytes=memory,
        compute_units=sms,
        clock_mhz=clock,
        peak_fp32_tflops=peak,
        peak_source="spec" if peak is not None else "unknown",
        extra=tuple(extra),
    )


def _run_smi() -> tuple[list[dict[str, str]] | None, str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "nvidia-smi is not on PATH"
    try:
        out = subprocess.run([exe, *SMI_QUERY[1:]], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi failed: {exc}"
    if out.returncode != 0:
        first = (out.stderr or out.stdout).strip().splitlines()
        return None, f"nvidia-smi exited with {out.returncode}: {first[0] if first else 'no output'}"
    try:
        return parse_smi_csv(out.stdout), ""
    except AdapterError as exc:
        return None, str(exc)


def _torch_props() -> tuple[list[dict[str, Any]] | None, str]:
    if importlib.util.find_spec("torch") is None:
        return None, "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return None, f"torch {torch.__version__} ({build}) sees no CUDA device"
    props = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        props.append(
            {"name": p.name, "major": p.major, "minor": p.minor, "total_memory": int(p.total_memory),
             "multi_processor_count": int(p.multi_processor_count)}
        )
    return props, ""


class CudaAdapter(HardwareAdapter):
    """The `cuda` hardware adapter (entry point ``cuda`` in group ``catopt.adapters``)."""

    contract = Contract(
        name="cuda",
        version="1.0.0",
        kind="hardware",
        api_version=ADAPTER_API_VERSION,
        summary="NVIDIA GPUs via torch and nvidia-smi; fp32 rate from SMs x lanes x clock, or measured",
        platforms=("cuda",),
        quantities=HARDWARE_QUANTITIES,
        requires=(),
        install="an NVIDIA driver (nvidia-smi) and, to run work there, a CUDA build of torch (`pip install torch` on Linux x86-64)",
    )

    def _sources(self) -> tuple[list[dict[str, str]] | None, list[dict[str, Any]] | None, str]:
        smi, smi_why = _run_smi()
        props, torch_why = _torch_props()
        return smi, props, "; ".join(w for w in (smi_why, torch_why) if w)

    def availability(self) -> Availability:
        smi, props, why = self._sources()
        if smi or props:
            return Availability(True)
        return Availability(False, f"no CUDA device here: {why}")

    def describe(self) -> tuple[DeviceDescriptor, ...]:
        smi, props, why = self._sources()
        if not smi and not props:
            raise AdapterUnavailable(f"adapter cuda: no CUDA device here: {why}")
        by_index: dict[int, dict[str, str]] = {}
        for pos, row in enumerate(smi or []):
            by_index[int(_number(row.get("index", "")) or pos)] = row
        count = max(len(props or []), len(by_index))
        return tuple(
            descriptor_from_sources(i, by_index.get(i), (props or [])[i] if props and i < len(props) else None)
            for i in range(count)
        )

    def capacity(self, device: DeviceDescriptor) -> Capacity:
        return Capacity(device.peak_fp32_tflops, device.memory_bytes / GIB, 1)

    def probe(self, device: DeviceDescriptor, seconds: float = 0.5) -> DeviceDescriptor:
        placement = self.placement("torch", device.index)
        import torch

        n = 4096
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False  # measure fp32, not TF32 tensor cores
        try:
            gen = torch.Generator(device=placement).manual_seed(0)
            a = torch.randn(n, n, device=placement, dtype=torch.float32, generator=gen)
            b = torch.randn(n, n, device=placement, dtype=torch.float32, generator=gen)
            a @ b
            torch.cuda.synchronize(placement)
            runs, start = 0, time.perf_counter()
            while True:
                a @ b
                runs += 1
                if runs % 10 == 0:
                    torch.cuda.synchronize(placement)
                    elapsed = time.perf_counter() - start
                    if elapsed >= seconds:
                        break
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
        return replace(device, peak_fp32_tflops=2 * n**3 * runs / elapsed / 1e12, peak_source="probe")

    def placement(self, framework: str, index: int = 0) -> str:
        if framework == "torch":
            props, why = _torch_props()
            if not props:
                raise AdapterUnavailable(f"adapter cuda cannot place torch work: {why}")
        elif framework == "jax":
            if importlib.util.find_spec("jax") is None:
                raise AdapterUnavailable("adapter cuda cannot place jax work: jax is not installed")
            import jax

            try:
                props = list(jax.devices("gpu"))
            except RuntimeError as exc:
                raise AdapterUnavailable(f"adapter cuda cannot place jax work: JAX has no GPU backend ({str(exc).splitlines()[0]})") from exc
        else:
            raise AdapterError(f"adapter cuda places work for the torch and jax adapters, not `{framework}`")
        if not 0 <= index < len(props):
            raise AdapterUnavailable(f"adapter cuda: device {index} asked for, {framework} sees {len(props)}")
        return f"cuda:{index}"

    def recorded(self) -> tuple[RecordedDevice, ...]:
        out = []
        for path in sorted((RECORDED_DIR / "cuda").glob("*.json")):
            d = json.loads(path.read_text(encoding="utf-8"))
            raw = {"nvidia_smi_csv": d["nvidia_smi_csv"], "torch_properties": json.dumps(d["torch_properties"])}
            out.append(RecordedDevice(d["label"], raw, d["expected_ncu"], d["expected_gib"], d.get("rel_tol", 0.03)))
        return tuple(out)

    def parse_recorded(self, recorded: RecordedDevice) -> DeviceDescriptor:
        rows = parse_smi_csv(recorded.raw.get("nvidia_smi_csv", ""))
        props = json.loads(recorded.raw["torch_properties"]) if recorded.raw.get("torch_properties") else None
        return descriptor_from_sources(0, rows[0] if rows else None, props)


adapter = CudaAdapter()
