"""The conformance kit: what ``catoptc adapters verify NAME`` runs, importable by any adapter's tests.

    from catopt_dsl.adapters.kit import assert_conforms
    assert_conforms(my_adapter)          # raises ConformanceError listing every failed check

For every adapter: the contract is well formed (``api.contract_problems``).

For a framework adapter, on each sample problem of ``samples.py`` (implemented by the adapter,
named in its contract's ``samples``):

* **flattening**: ``unflatten`` of a vector whose entries are their own flat indices puts each entry
  where the documented order says (vars in declaration order, row-major), ``flatten`` inverts it,
  and ``flatten(unflatten(theta)) == theta`` bit for bit;
* **loss** agrees with the numpy reference (relative 1e-9);
* **gradient** agrees with central finite differences of the adapter's *own* loss;
* **prox** ``argmin loss + rho/2 ||theta - v||^2`` for rho in {0.1, 1, 10} agrees with the
  reference Newton solve to 1e-6 (relative to the answer's size) and reports ``converged``;
* **warm start**: a prox step started at its own answer returns it within 3 iterations;
* **convexity**: the samples are declared convex, so the problem says what the contract promises.

For a hardware adapter:

* **descriptor schema** of every recorded and every live descriptor (types, ranges, consistency);
* **unit mapping**: each recorded descriptor maps to the capacity it records (an independent
  figure: the vendor's published fp32 peak) within its tolerance; memory maps bytes -> GiB exactly;
  capacity scales linearly with the device's rate;
* **live**: when the adapter is available here, its devices describe, map and probe; when not, the
  check is reported as skipped *with the adapter's reason* (a CPU-only machine cannot vouch for a GPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from catopt_dsl.adapters.api import (
    Adapter,
    AdapterError,
    DeviceDescriptor,
    FrameworkAdapter,
    FrameworkProblem,
    HardwareAdapter,
    contract_problems,
)
from catopt_dsl.adapters.samples import SAMPLES, Sample, reference_prox, sample
from catopt_dsl.adapters.units import GIB

__all__ = ["Check", "ConformanceError", "KitReport", "assert_conforms", "validate_descriptor", "verify"]

Outcome = Literal["pass", "fail", "skip"]

LOSS_RTOL = 1e-9
FD_RTOL = 1e-5
PROX_TOL = 1e-6
RHOS = (0.1, 1.0, 10.0)


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    message: str = ""


@dataclass(frozen=True)
class KitReport:
    adapter: str
    version: str
    kind: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.outcome != "fail" for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.outcome == "fail")

    def render(self) -> str:
        lines = [f"adapter {self.adapter} {self.version} ({self.kind}): conformance kit"]
        width = max((len(c.name) for c in self.checks), default=0)
        for c in self.checks:
            mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[c.outcome]
            lines.append(f"  {mark}  {c.name.ljust(width)}  {c.message}".rstrip())
        n_fail = len(self.failures)
        n_skip = sum(c.outcome == "skip" for c in self.checks)
        verdict = "conforms" if self.ok else f"does NOT conform ({n_fail} failed)"
        lines.append(f"{len(self.checks)} checks: {verdict}" + (f", {n_skip} skipped" if n_skip else ""))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "version": self.version,
            "kind": self.kind,
            "ok": self.ok,
            "checks": [{"name": c.name, "outcome": c.outcome, "message": c.message} for c in self.checks],
        }


class ConformanceError(AssertionError):
    """Raised by :func:`assert_conforms`; the message is the failed checks, one a line."""


def assert_conforms(adapter: Adapter, quick: bool = False) -> KitReport:
    """Run the kit and raise :class:`ConformanceError` unless every check passed (or was skipped)."""
    report = verify(adapter, quick=quick)
    if not report.ok:
        raise ConformanceError(
            f"adapter {report.adapter} does not conform:\n"
            + "\n".join(f"  {c.name}: {c.message}" for c in report.failures)
        )
    return report


def verify(adapter: Adapter, quick: bool = False) -> KitReport:
    """Run every check that applies to ``adapter``; never raises for a misbehaving adapter."""
    contract = getattr(adapter, "contract", None)
    checks: list[Check] = []
    problems = contract_problems(contract)
    checks.append(Check("contract", "fail" if problems else "pass", "; ".join(problems) or "well formed"))
    name = getattr(contract, "name", "?")
    version = getattr(contract, "version", "?")
    kind = getattr(contract, "kind", "?")
    if not problems:
        if isinstance(adapter, FrameworkAdapter):
            checks += _framework_checks(adapter, quick)
        elif isinstance(adapter, HardwareAdapter):
            checks += _hardware_checks(adapter, quick)
        else:
            checks.append(Check("kind", "fail", f"{type(adapter).__name__} is neither a FrameworkAdapter nor a HardwareAdapter"))
    return KitReport(name, version, kind, tuple(checks))


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    """A check that raised is a failed check, with the exception in its message."""
    try:
        return fn()
    except Exception as exc:
        return Check(name, "fail", f"raised {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# Framework adapters
# ---------------------------------------------------------------------------------------------


def _framework_checks(adapter: FrameworkAdapter, quick: bool) -> list[Check]:
    avail = adapter.availability()
    if not avail.ok:
        return [Check("available", "fail", f"cannot verify a framework adapter that cannot run here: {avail.reason}")]
    out = [Check("available", "pass", "")]
    declared = dict(adapter.contract.samples)
    for sname in SAMPLES:
        if sname not in declared:
            out.append(Check(f"{sname}", "fail", f"the contract names no implementation of kit sample `{sname}` (contract.samples)"))
            continue
        s = sample(sname)
        try:
            problem = adapter.problem(declared[sname], s.data, s.layout)
        except AdapterError as exc:
            out.append(Check(f"{sname}: build", "fail", str(exc)))
            continue
        except Exception as exc:
            out.append(Check(f"{sname}: build", "fail", f"problem() raised {type(exc).__name__}: {exc}"))
            continue
        out += _sample_checks(adapter, problem, s, quick)
    return out


def _sample_checks(adapter: FrameworkAdapter, problem: FrameworkProblem, s: Sample, quick: bool) -> list[Check]:
    rhos = (1.0,) if quick else RHOS
    return [
        _guard(f"{s.name}: flattening", lambda: _check_flattening(problem, s)),
        _guard(f"{s.name}: loss", lambda: _check_loss(problem, s)),
        _guard(f"{s.name}: gradient", lambda: _check_gradient(problem, s)),
        _guard(f"{s.name}: prox", lambda: _check_prox(problem, s, rhos)),
        _guard(f"{s.name}: warm start", lambda: _check_warm(problem, s)),
        _guard(f"{s.name}: convexity", lambda: _check_convexity(problem, adapter, f"{s.name}: convexity")),
    ]


def _where(s: Sample, flat_index: int) -> str:
    """``W[0, 1]`` for a flat index, under the documented order."""
    for v, sl in zip(s.layout.vars, s.layout.offsets().values()):
        if sl.start <= flat_index < sl.stop:
            idx = np.unravel_index(flat_index - sl.start, v.shape) if v.shape else ()
            return f"{v.name}[{', '.join(str(int(i)) for i in idx)}]" if v.shape else v.name
    return f"#{flat_index}"


def _check_flattening(problem: FrameworkProblem, s: Sample) -> Check:
    name = f"{s.name}: flattening"
    if problem.n != s.layout.n:
        return Check(name, "fail", f"n = {problem.n}, the layout has {s.layout.n} floats")
    # Each entry holds its own flat index, so a misplaced entry names where it came from.
    theta = np.arange(s.layout.n, dtype=np.float64)
    native = problem.unflatten(theta)
    expected = s.layout.unflatten(theta)
    for var in s.layout.vars:
        if var.name not in native:
            return Check(name, "fail", f"unflatten returned no `{var.name}` (keys: {sorted(native)})")
        got = np.asarray(native[var.name], dtype=np.float64)
        if got.shape != var.shape:
            return Check(name, "fail", f"unflatten gives `{var.name}` shape {got.shape}, declared {var.shape}")
        bad = np.flatnonzero(got.reshape(-1) != expected[var.name].reshape(-1))
        if bad.size:
            i = int(bad[0])
            pos = np.unravel_index(i, var.shape)
            return Check(
                name, "fail",
                f"unflatten does not follow the documented order (vars in declaration order, row-major): "
                f"{var.name}[{', '.join(str(int(p)) for p in pos)}] should hold flat entry "
                f"{int(expected[var.name].reshape(-1)[i])} but holds entry {int(got.reshape(-1)[i])} ({_where(s, int(got.reshape(-1)[i]))})",
            )
    back = problem.flatten(s.layout.unflatten(theta))
    bad = np.flatnonzero(np.asarray(back, dtype=np.float64).reshape(-1) != theta)
    if bad.size:
        i = int(bad[0])
        return Check(
            name, "fail",
            f"flatten does not follow the documented order (vars in declaration order, row-major): "
            f"flat entry {i} should be {_where(s, i)} but is {back[i]:g} ({_where(s, int(back[i]))})",
        )
    rng = np.random.default_rng(1)
    x = rng.standard_normal(s.layout.n)
    again = np.asarray(problem.flatten(problem.unflatten(x)), dtype=np.float64)
    if not np.array_equal(again, x):
        return Check(name, "fail", f"flatten(unflatten(theta)) != theta (max difference {np.abs(again - x).max():.2e})")
    return Check(name, "pass", f"{s.layout.describe()}: order and round trip exact")


def _check_loss(problem: FrameworkProblem, s: Sample) -> Check:
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(3):
        t = rng.standard_normal(s.layout.n)
        ref = s.loss(t)
        got = problem.loss(t)
        err = abs(got - ref) / max(1.0, abs(ref))
        if not math.isfinite(got) or err > LOSS_RTOL:
            return Check(f"{s.name}: loss", "fail", f"loss = {got!r}, the reference gives {ref!r} (relative error {err:.1e} > {LOSS_RTOL:.0e})")
        worst = max(worst, err)
    return Check(f"{s.name}: loss", "pass", f"matches the numpy reference (relative error {worst:.1e})")


def _check_gradient(problem: FrameworkProblem, s: Sample) -> Check:
    rng = np.random.default_rng(3)
    t = rng.standard_normal(s.layout.n)
    g = np.asarray(problem.grad(t), dtype=np.float64).reshape(-1)
    if g.shape != (s.layout.n,):
        return Check(f"{s.name}: gradient", "fail", f"grad returned shape {g.shape}, expected ({s.layout.n},)")
    fd = np.empty_like(t)
    for i in range(t.size):
        h = 1e-5 * max(1.0, abs(t[i]))
        e = np.zeros_like(t)
        e[i] = h
        fd[i] = (problem.loss(t + e) - problem.loss(t - e)) / (2 * h)
    scale = max(1.0, float(np.abs(fd).max()))
    diff = np.abs(g - fd)
    i = int(np.argmax(diff))
    if diff[i] > FD_RTOL * scale:
        return Check(
            f"{s.name}: gradient", "fail",
            f"gradient disagrees with finite differences of the adapter's own loss: at {_where(s, i)} grad = {g[i]:.6g}, "
            f"finite difference = {fd[i]:.6g} (difference {diff[i]:.1e} > {FD_RTOL:.0e} x {scale:.3g})",
        )
    return Check(f"{s.name}: gradient", "pass", f"matches central differences (max difference {diff.max():.1e})")


def _check_prox(problem: FrameworkProblem, s: Sample, rhos: tuple[float, ...]) -> Check:
    rng = np.random.default_rng(4)
    worst = 0.0
    for rho in rhos:
        v = rng.standard_normal(s.layout.n)
        res = problem.prox(v, rho, warm=v)
        ref = reference_prox(s.loss, s.grad, s.hess, v, rho)
        if not res.converged:
            return Check(f"{s.name}: prox", "fail", f"prox(v, rho={rho:g}) did not converge: {res.message}")
        err = float(np.abs(np.asarray(res.theta) - ref).max()) / max(1.0, float(np.abs(ref).max()))
        if not err <= PROX_TOL:
            return Check(
                f"{s.name}: prox", "fail",
                f"prox(v, rho={rho:g}) is {err:.1e} from the reference Newton solve (tolerance {PROX_TOL:.0e}), "
                f"yet reported converged",
            )
        worst = max(worst, err)
    return Check(f"{s.name}: prox", "pass", f"rho in {{{', '.join(f'{r:g}' for r in rhos)}}}: within {worst:.1e} of the reference")


def _check_warm(problem: FrameworkProblem, s: Sample) -> Check:
    rng = np.random.default_rng(5)
    v = rng.standard_normal(s.layout.n)
    first = problem.prox(v, 1.0, warm=v)
    again = problem.prox(v, 1.0, warm=first.theta)
    moved = float(np.abs(np.asarray(again.theta) - np.asarray(first.theta)).max())
    if again.iterations > 3 or moved > 1e-8 * max(1.0, float(np.abs(first.theta).max())):
        return Check(
            f"{s.name}: warm start", "fail",
            f"a prox step started at its own answer took {again.iterations} iterations and moved {moved:.1e}: "
            "the warm start is not used",
        )
    return Check(f"{s.name}: warm start", "pass", f"{first.iterations} iterations cold, {again.iterations} warm")


def _check_convexity(problem: FrameworkProblem, adapter: FrameworkAdapter, name: str) -> Check:
    promise = adapter.contract.convexity
    want = promise in ("always", "declared")  # every kit sample is declared convex
    if not isinstance(getattr(problem, "convexity", None), str) or not problem.convexity:
        return Check(name, "fail", "the problem has no `convexity` sentence for diagnostics")
    if bool(problem.convex) != want:
        return Check(name, "fail", f"contract convexity `{promise}` but the problem says convex = {problem.convex} for a loss declared convex")
    return Check(name, "pass", problem.convexity)


# ---------------------------------------------------------------------------------------------
# Hardware adapters
# ---------------------------------------------------------------------------------------------

_PEAK_SOURCES = ("spec", "estimate", "probe", "unknown")


def validate_descriptor(d: Any, platforms: tuple[str, ...] = ()) -> list[str]:
    """Everything wrong with a :class:`DeviceDescriptor` (empty when it fits the schema)."""
    if not isinstance(d, DeviceDescriptor):
        return [f"a descriptor must be a DeviceDescriptor, not {type(d).__name__}"]
    out = []
    if not isinstance(d.platform, str) or not d.platform:
        out.append("platform must be a non-empty string")
    elif platforms and d.platform not in platforms:
        out.append(f"platform `{d.platform}` is not one the contract serves ({', '.join(platforms)})")
    if not isinstance(d.index, int) or d.index < 0:
        out.append(f"index must be an integer >= 0, not {d.index!r}")
    if not isinstance(d.name, str) or not d.name:
        out.append("name must be a non-empty string")
    if not isinstance(d.memory_bytes, int) or d.memory_bytes <= 0:
        out.append(f"memory_bytes must be a positive integer, not {d.memory_bytes!r}")
    if not isinstance(d.compute_units, int) or d.compute_units < 0:
        out.append(f"compute_units must be an integer >= 0 (0: unknown), not {d.compute_units!r}")
    if d.clock_mhz is not None and not (isinstance(d.clock_mhz, (int, float)) and math.isfinite(d.clock_mhz) and d.clock_mhz > 0):
        out.append(f"clock_mhz must be None or a positive number, not {d.clock_mhz!r}")
    if d.peak_source not in _PEAK_SOURCES:
        out.append(f"peak_source must be one of {', '.join(_PEAK_SOURCES)}, not {d.peak_source!r}")
    if d.peak_fp32_tflops is None:
        if d.peak_source != "unknown":
            out.append(f"peak_fp32_tflops is None but peak_source is `{d.peak_source}` (should be `unknown`)")
    elif not (isinstance(d.peak_fp32_tflops, (int, float)) and math.isfinite(d.peak_fp32_tflops) and d.peak_fp32_tflops > 0):
        out.append(f"peak_fp32_tflops must be None or a positive number, not {d.peak_fp32_tflops!r}")
    elif d.peak_source == "unknown":
        out.append("peak_source is `unknown` but peak_fp32_tflops is set")
    if not all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in d.extra):
        out.append("extra must be a tuple of (key, value) string pairs")
    return out


def _hardware_checks(adapter: HardwareAdapter, quick: bool) -> list[Check]:
    out: list[Check] = []
    platforms = adapter.contract.platforms
    recorded = _guard("recorded descriptors", lambda: Check("recorded descriptors", "pass", f"{len(adapter.recorded())} shipped"))
    out.append(recorded)
    if recorded.outcome == "pass":
        items = adapter.recorded()
        if not items:
            out[-1] = Check("recorded descriptors", "skip", "the adapter ships none: the unit mapping is checked on live devices only")
        for rec in items:
            out.append(_recorded_check(adapter, rec, platforms))
    out.append(_guard("unit mapping", lambda: _check_linear(adapter)))
    avail = adapter.availability()
    if not avail.ok:
        out.append(Check("live devices", "skip", f"not available here: {avail.reason}"))
        return out
    out.append(_guard("live devices", lambda: _check_live(adapter, platforms, quick)))
    return out


def _recorded_check(adapter: HardwareAdapter, rec: Any, platforms: tuple[str, ...]) -> Check:
    return _guard(f"recorded {rec.label}", lambda: _check_recorded(adapter, rec, platforms))


def _check_recorded(adapter: HardwareAdapter, rec: Any, platforms: tuple[str, ...]) -> Check:
    name = f"recorded {rec.label}"
    d = adapter.parse_recorded(rec)
    problems = validate_descriptor(d, platforms)
    if problems:
        return Check(name, "fail", "descriptor schema: " + "; ".join(problems))
    cap = adapter.capacity(d)
    if abs(cap.memory_gib - rec.expected_gib) > max(0.005, 1e-4 * rec.expected_gib):  # recorded to 2 decimals
        return Check(name, "fail", f"memory maps to {cap.memory_gib:.3f} GiB, recorded {rec.expected_gib} GiB")
    if rec.expected_ncu is None:
        if cap.compute_ncu is not None:
            return Check(name, "fail", f"compute should be unknown until probed, the mapping says {cap.compute_ncu:.3g} ncu")
        return Check(name, "pass", f"{cap.memory_gib:.2f} GiB; compute unknown until probed, as recorded")
    if cap.compute_ncu is None:
        return Check(name, "fail", f"compute is unknown, the recorded figure is {rec.expected_ncu} ncu")
    err = abs(cap.compute_ncu - rec.expected_ncu) / rec.expected_ncu
    if err > rec.rel_tol:
        return Check(name, "fail", f"compute maps to {cap.compute_ncu:.3f} ncu, the recorded figure is {rec.expected_ncu} ncu ({err:.1%} off, tolerance {rec.rel_tol:.0%})")
    return Check(name, "pass", f"{cap.compute_ncu:.2f} ncu (recorded {rec.expected_ncu}, {err:.1%} off), {cap.memory_gib:.2f} GiB")


def _check_linear(adapter: HardwareAdapter) -> Check:
    base = DeviceDescriptor(adapter.contract.platforms[0], 0, "kit reference device", GIB, 1, 1000.0, 1.0, "spec")
    one = adapter.capacity(base)
    two = adapter.capacity(replace(base, peak_fp32_tflops=2.0, memory_bytes=2 * GIB))
    if one.memory_gib != 1.0 or two.memory_gib != 2.0:
        return Check("unit mapping", "fail", f"2^30 bytes should map to 1 GiB exactly, got {one.memory_gib} (and {two.memory_gib} for 2^31)")
    if one.compute_ncu is None or two.compute_ncu is None or not math.isclose(two.compute_ncu, 2 * one.compute_ncu, rel_tol=1e-12):
        return Check("unit mapping", "fail", f"compute must scale with the device's rate: 1 TFLOP/s -> {one.compute_ncu}, 2 TFLOP/s -> {two.compute_ncu}")
    if not math.isclose(one.compute_ncu, 1.0, rel_tol=1e-12):
        return Check("unit mapping", "fail", f"1 TFLOP/s fp32 is 1 ncu by definition, the adapter says {one.compute_ncu}")
    return Check("unit mapping", "pass", "1 TFLOP/s fp32 -> 1 ncu, 2^30 bytes -> 1 GiB, linear")


def _check_live(adapter: HardwareAdapter, platforms: tuple[str, ...], quick: bool) -> Check:
    devices = adapter.describe()
    if not devices:
        return Check("live devices", "fail", "available, yet describe() found no device")
    notes = []
    for d in devices:
        problems = validate_descriptor(d, platforms)
        if problems:
            return Check("live devices", "fail", f"device {d.index}: " + "; ".join(problems))
        cap = adapter.capacity(d)
        if not (cap.memory_gib > 0):
            return Check("live devices", "fail", f"device {d.index}: memory maps to {cap.memory_gib} GiB")
        probed = adapter.probe(d, seconds=0.05 if quick else 0.25)
        problems = validate_descriptor(probed, platforms)
        if problems or probed.peak_source != "probe":
            return Check("live devices", "fail", f"device {d.index}: probe gave a bad descriptor: {'; '.join(problems) or probed.peak_source}")
        notes.append(f"{d.name}: {cap.memory_gib:.1f} GiB, {probed.peak_fp32_tflops:.3g} TFLOP/s measured")
    return Check("live devices", "pass", "; ".join(notes))
