"""``catoptc demo hil``: hardware in the loop -- plan with a measured capacity, then run the plan.

For each device platform (``cpu`` always, ``cuda`` when the adapter finds a device torch can use):

1. The hardware adapter describes the device and *probes* it (a timed fp32 matrix product):
   the device's capacity in ncu (1 ncu = 1 TFLOP/s fp32, see ``docs/adapters.md``).
2. That capacity goes into a plan: three tenants, each training a small torch MLP of its own
   size, bid for ncu with a concave utility; a sharing limit caps the sum at the measured
   capacity. The plan is solved (ADMM) and checked against a centralised solve.
3. Each tenant's share becomes wall-clock time on the device: in a window of ``window_s`` seconds
   tenant *i* trains for ``window_s * x_i / capacity`` seconds (time slicing), on the adapter's
   placement (``cpu``, ``cuda:0``).
4. Planned throughput is what the plan promised: ``x_i`` TFLOP/s divided by the model's FLOPs
   per training sample (forward and backward: ``6 * parameters``). Achieved throughput is the
   samples the tenant really trained divided by the window. The error ``achieved / planned - 1``
   is the gap between the probe's dense matmul rate and what a real training step gets from the
   device (framework overhead, small matrices, memory traffic): the number a planner that trusts
   the probe would be off by.

A platform without a usable device is reported as skipped with the adapter's reason; nothing is
simulated in its place.
"""

from __future__ import annotations

import importlib.util
import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catopt_dsl.adapters.api import AdapterError
from catopt_dsl.adapters.registry import get as get_adapter
from catopt_dsl.compile import analyze
from catopt_dsl.solver import solve
from catopt_dsl.solver.centralized import solve_centralized
from catopt_dsl.solver.result import SolveOptions

__all__ = ["TENANTS", "HilDevice", "HilRun", "HilTenant", "run_hil", "write_json"]

#: (name, hidden width, batch size, value per ncu, congestion penalty, demand as a capacity fraction)
TENANTS: tuple[tuple[str, int, int, float, float, float], ...] = (
    ("vision", 512, 256, 3.0, 1.0, 0.6),
    ("speech", 256, 128, 2.0, 1.0, 0.5),
    ("ranking", 128, 512, 1.5, 1.0, 0.4),
)
IN_FEATURES = 256
OUT_FEATURES = 10
REL_TOL = 1e-4


@dataclass(frozen=True)
class HilTenant:
    tenant: str
    share: float  # fraction of the device's time
    ncu: float  # the plan's allocation
    planned: float  # samples/s
    achieved: float  # samples/s
    rel_error: float  # achieved / planned - 1
    steps: int
    loss_first: float
    loss_last: float


@dataclass
class HilDevice:
    platform: str
    name: str = ""
    skipped: str = ""  # why this platform did not run (empty when it did)
    capacity_ncu: float = 0.0
    capacity: float = 0.0  # samples/s of the reference model at the probed rate
    adapter_note: str = ""
    status: str = ""
    rel_objective_error: float | None = None
    tenants: list[HilTenant] = field(default_factory=list)


@dataclass
class HilRun:
    devices: list[HilDevice] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every device that ran solved its plan (checked centrally) and ran every tenant."""
        ran = [d for d in self.devices if not d.skipped]
        return bool(ran) and all(
            d.status == "optimal" and d.rel_objective_error is not None and d.rel_objective_error <= REL_TOL
            and len(d.tenants) == len(TENANTS) for d in ran
        )


def _params(hidden: int) -> int:
    return (IN_FEATURES * hidden + hidden) + (hidden * hidden + hidden) + (hidden * OUT_FEATURES + OUT_FEATURES)


def flops_per_sample(hidden: int) -> float:
    """FLOPs of one training sample: 2 per multiply-add forward, twice that backward."""
    return 6.0 * _params(hidden)


def _plan_text(capacity: float, platform: str) -> str:
    lines = ["catopt 1;", "", "schema Share v1 {", "    ncu: float;", "}", "",
             "SharedVariables device {", f"    param capacity: float = {capacity:.12g};", "}", ""]
    for name, _hidden, _batch, value, penalty, demand in TENANTS:
        lines += [
            f"LocalProblem {name} on {platform} {{",
            f"    param value: float = {value};",
            f"    param demand: float = {demand * capacity:.12g};",
            "    var x: float;",
            f"    maximize value * x - {penalty / max(capacity, 1e-12):.12g} * square(x);",
            "    subject to {",
            "        x >= 0;",
            "        x <= demand;",
            "    }",
            "}",
            f"Morphism {name}_share : {name} -> device carries Share v1 {{ ncu = x; }}",
            "",
        ]
    lines += ["Limit cap on device {", "    sum(*.ncu) <= capacity;", "}", "", "Colimit plan of device;", ""]
    return "\n".join(lines)


def _train(device: str, hidden: int, batch: int, seconds: float) -> tuple[int, float, float, float]:
    """Train the tenant's MLP on ``device`` for ``seconds`` (at least 2 steps, after one warm-up
    step); returns (steps, seconds taken, first loss, last loss)."""
    import torch

    gen = torch.Generator().manual_seed(hidden)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN_FEATURES, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, OUT_FEATURES),
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    xs = torch.randn(batch, IN_FEATURES, generator=gen).to(device)
    ys = torch.randint(0, OUT_FEATURES, (batch,), generator=gen).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xs), ys)
        loss.backward()
        opt.step()
        return float(loss.detach())

    step()  # warm-up: allocator and kernel selection are not throughput
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    steps, first, last = 0, math.nan, math.nan
    start = time.perf_counter()
    while True:
        last = step()  # float() synchronises with the device
        if steps == 0:
            first = last
        steps += 1
        elapsed = time.perf_counter() - start
        if steps >= 2 and elapsed >= seconds:
            break
    return steps, elapsed, first, last


def _run_device(platform: str, window_s: float, say: Callable[[str], None]) -> HilDevice:
    dev = HilDevice(platform)
    if importlib.util.find_spec("torch") is None:
        dev.skipped = "torch is not installed (pip install 'catopt-dsl[ml]'): there is no workload to run"
        return dev
    try:
        adapter: Any = get_adapter(platform)
        avail = adapter.availability()
        if not avail.ok:
            dev.skipped = avail.reason or f"adapter {platform} is not available here"
            return dev
        placement = adapter.placement("torch", 0)
        desc = adapter.probe(adapter.describe()[0])
    except AdapterError as exc:
        dev.skipped = str(exc)
        return dev
    dev.name = desc.name
    dev.capacity_ncu = float(desc.peak_fp32_tflops or 0.0)
    dev.adapter_note = f"{platform} adapter probe: {dev.capacity_ncu:.4f} ncu (TFLOP/s fp32), placement {placement}"
    dev.capacity = dev.capacity_ncu * 1e12 / flops_per_sample(TENANTS[0][1])
    say(f"{platform}: {desc.name}: probed {dev.capacity_ncu:.4f} TFLOP/s fp32")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "hil.cat"
        spec.write_text(_plan_text(dev.capacity_ncu, platform), encoding="utf-8")
        a = analyze(spec)
        if a.plan is None:
            raise RuntimeError("the HIL plan does not check: " + "; ".join(d.message for d in a.sink.errors()))
        plan = a.plan
    result = solve(plan, SolveOptions(eps_abs=1e-8, eps_rel=1e-8))
    reference = solve_centralized(plan)
    dev.status = result.status
    if result.objective is not None and reference.objective is not None:
        dev.rel_objective_error = abs(result.objective - reference.objective) / max(1.0, abs(reference.objective))
    if result.status != "optimal":
        return dev
    for name, hidden, batch, _value, _penalty, _demand in TENANTS:
        ncu = max(0.0, float(result.objects[name]["x"]))
        share = ncu / dev.capacity_ncu if dev.capacity_ncu > 0 else 0.0
        steps, took, first, last = _train(placement, hidden, batch, window_s * share)
        # Time slicing: the tenant trains at the device's rate for `share` of the time. (Measured
        # over the time it really took, which the two-step floor may stretch beyond its slice.)
        achieved = steps * batch / took * share
        planned = ncu * 1e12 / flops_per_sample(hidden)
        rel = achieved / planned - 1.0 if planned > 0 else math.nan
        dev.tenants.append(HilTenant(name, share, ncu, planned, achieved, rel, steps, first, last))
        say(f"  {name:<8} share {share:.3f}: planned {planned:9.1f} samples/s, achieved {achieved:9.1f} "
            f"({100 * rel:+.1f}%)")
    return dev


def run_hil(window_s: float = 3.0, platforms: tuple[str, ...] = ("cpu", "cuda"),
            progress: Callable[[str], None] | None = None) -> HilRun:
    """Measure, plan, run and compare on every platform in ``platforms`` (see the module docs)."""
    say = progress or (lambda _text: None)
    run = HilRun()
    for platform in platforms:
        dev = _run_device(platform, window_s, say)
        if dev.skipped:
            say(f"{platform}: skipped: {dev.skipped}")
        run.devices.append(dev)
    return run


def write_json(run: HilRun, path: str | Path) -> Path:
    """The run as JSON (every number the report shows)."""
    out = Path(path)
    data = {"ok": run.ok, "devices": [asdict(d) for d in run.devices]}
    out.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n", encoding="utf-8")
    return out
