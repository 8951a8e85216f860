"""Solves in the ledger: what ran (spec, data, options), what came out (status, result hash), re-runs.

**Result hash** (``catopt-result-v1``): SHA-256 of the canonical JSON of::

    {"alg": "catopt-result-v1", "digits": 6, "floor": "1e-09",
     "status": "optimal", "objective": "<rounded>",
     "objects": {"<object>": {"<var>": {"shape": [..], "values": ["<rounded>", ...]}}},
     "shared":  {"<block>":  {"<var>": {"shape": [..], "values": [...]}}}}

where a number is rounded to ``digits`` significant digits and written in exponent form
(``f"{v:.5e}"``), a number of magnitude below ``floor`` is written ``"0"`` (so ``-0.0``, ``1e-17``
and ``-3e-12`` agree), and NaN/inf as ``"nan"``, ``"inf"``, ``"-inf"``. Iteration counts, times and
residuals are left out. The reference ADMM is deterministic, so a re-run on the same software
stack reproduces the result bit for bit; the rounding absorbs last-digit noise (another BLAS
summation order, say). It cannot make a different solver path agree: an iterate that drifts by
more than the rounding (a different iteration count) is reported as a mismatch, never hidden.

**Data hashes**: per object and shared block, SHA-256 over its params sorted by name, each as
``name 0x00 dtype 0x00 shape 0x00`` then the values as little-endian float64 in C order -- the
data exactly as the solver saw it (after ``load()``, functors and defaults).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.ir.model import IRParam, IRPlan

__all__ = [
    "RESULT_HASH_ALG",
    "RerunOutcome",
    "data_hashes",
    "rerun_solve",
    "result_form",
    "result_hash",
    "solve_body",
]

RESULT_HASH_ALG = "catopt-result-v1"
DEFAULT_DIGITS = 6
DEFAULT_FLOOR = 1e-9


def _num(v: float, digits: int, floor: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) < floor:
        return "0"
    return f"{v:.{digits - 1}e}"


def _vars(table: Mapping[str, Mapping[str, Any]], digits: int, floor: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(table):
        out[name] = {}
        for var in sorted(table[name]):
            arr = np.asarray(table[name][var], dtype=np.float64)
            out[name][var] = {
                "shape": list(arr.shape),
                "values": [_num(x, digits, floor) for x in arr.reshape(-1)],
            }
    return out


def result_form(result: Any, digits: int = DEFAULT_DIGITS, floor: float = DEFAULT_FLOOR) -> dict[str, Any]:
    """The canonical, rounding-stable form of a ``SolveResult`` that :func:`result_hash` hashes."""
    return {
        "alg": RESULT_HASH_ALG,
        "digits": digits,
        "floor": repr(floor),
        "status": result.status,
        "objective": None if result.objective is None else _num(result.objective, digits, floor),
        "objects": _vars(result.objects, digits, floor),
        "shared": _vars(result.shared, digits, floor),
    }


def result_hash(result: Any, digits: int = DEFAULT_DIGITS, floor: float = DEFAULT_FLOOR) -> str:
    """Hex SHA-256 of :func:`result_form`."""
    from catopt_dsl.ledger.canonical import canonical_json

    return hashlib.sha256(canonical_json(result_form(result, digits, floor))).hexdigest()


def _param_bytes(p: IRParam) -> bytes:
    head = f"{p.name}\0{p.dtype}\0{','.join(str(d) for d in p.shape)}\0".encode()
    return head + np.ascontiguousarray(np.asarray(p.value, dtype="<f8")).tobytes()


def data_hashes(plan: IRPlan) -> dict[str, str]:
    """Object / shared block name -> SHA-256 of its params (see the module docs)."""
    out: dict[str, str] = {}
    holders: list[tuple[str, Sequence[IRParam]]] = [(s.name, s.params) for s in plan.shared]
    holders += [(o.name, o.params) for o in plan.objects]
    for name, params in holders:
        h = hashlib.sha256()
        for p in sorted(params, key=lambda p: p.name):
            h.update(_param_bytes(p))
        out[name] = h.hexdigest()
    return dict(sorted(out.items()))


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def solve_body(
    spec_path: str | Path,
    plan: IRPlan,
    options: Any,
    result: Any,
    *,
    centralized: bool,
    backend: str,
    deltas: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    version: str = "",
) -> dict[str, Any]:
    """The body of a ``solve.recorded`` entry (floats are written as text: see ``canonical``).

    ``adaptive_rho`` is written only when it is off (the default leaves bodies as they were)."""
    fixed_rho = {} if getattr(options, "adaptive_rho", True) else {"adaptive_rho": False}
    return {
        "catoptc": version,
        "spec": {
            "path": str(spec_path),
            "file_sha256": _file_sha256(Path(spec_path)),
            "spec_hash": plan.spec_hash,
            "plan": plan.name,
        },
        "data": data_hashes(plan),
        "options": {
            "max_iter": int(options.max_iter),
            "eps_abs": repr(float(options.eps_abs)),
            "eps_rel": repr(float(options.eps_rel)),
            "rho": repr(float(options.rho)),
            "alpha": repr(float(options.alpha)),
            **fixed_rho,
        },
        "mode": "centralized" if centralized else "admm",
        "backend": backend,
        "allow_paths": [str(p) for p in allow_paths],
        "deltas": list(deltas),
        "status": result.status,
        "objective": None if result.objective is None else repr(float(result.objective)),
        "iterations": None if result.iterations is None else int(result.iterations),
        "result": {
            "alg": RESULT_HASH_ALG,
            "digits": DEFAULT_DIGITS,
            "floor": repr(DEFAULT_FLOOR),
            "sha256": result_hash(result),
        },
    }


@dataclass(frozen=True)
class RerunOutcome:
    ok: bool
    message: str


def _describe_data_change(recorded: Mapping[str, str], now: Mapping[str, str]) -> str:
    changed = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
    if not changed:
        return "the spec text changed (its data did not)"
    shown = ", ".join(f"`{k}`" for k in changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return f"the data of {shown} changed"


def rerun_solve(body: Mapping[str, Any], spec_root: Path | None = None) -> RerunOutcome:
    """Solve again what a ``solve.recorded`` entry describes and compare the result hash.

    A Ray run is re-run in process: with the default protocol settings the distributed iterates
    are those of the in-process solver.
    """
    from catopt_dsl.compile import analyze
    from catopt_dsl.solver import SolveOptions, solve, solve_centralized

    try:
        spec = body["spec"]
        opts = body["options"]
        recorded = body["result"]
        path = Path(spec["path"])
        if spec_root is not None and not path.is_absolute():
            path = spec_root / path
        options = SolveOptions(
            max_iter=int(opts["max_iter"]),
            eps_abs=float(opts["eps_abs"]),
            eps_rel=float(opts["eps_rel"]),
            rho=float(opts["rho"]),
            alpha=float(opts["alpha"]),
            adaptive_rho=bool(opts.get("adaptive_rho", True)),
        )
        centralized = body["mode"] == "centralized"
        deltas = list(body.get("deltas", []))
        allow = [str(p) for p in body.get("allow_paths", [])]
        digits, floor = int(recorded["digits"]), float(recorded["floor"])
        if recorded["alg"] != RESULT_HASH_ALG:
            return RerunOutcome(False, f"result hash algorithm {recorded['alg']!r} is not known to this catoptc")
    except (KeyError, TypeError, ValueError) as exc:
        return RerunOutcome(False, f"the entry does not describe a solve this catoptc can re-run ({exc})")
    analysis = analyze(path, allow)
    if analysis.plan is None:
        return RerunOutcome(False, f"{path}: the spec no longer checks ({len(analysis.sink.errors())} errors)")
    plan = analysis.plan
    if plan.spec_hash != spec.get("spec_hash"):
        return RerunOutcome(False, f"{path}: {_describe_data_change(body.get('data', {}), data_hashes(plan))} "
                                   "since the solve was recorded (spec hash differs)")
    result = solve_centralized(plan) if centralized else solve(plan, options)
    for name in deltas:
        from catopt_dsl.runtime.deltas import apply_delta

        try:
            result = apply_delta(plan, name, result, options=options, centralized=centralized)
        except KeyError:
            return RerunOutcome(False, f"{path}: the plan has no PlanDelta `{name}` any more")
    got = result_hash(result, digits, floor)
    if got == recorded["sha256"]:
        return RerunOutcome(True, f"re-ran {path}: status {result.status}, result hash matches")
    was = body.get("objective")
    return RerunOutcome(
        False,
        f"re-ran {path}: result hash {got[:16]}... differs from the recorded {str(recorded['sha256'])[:16]}... "
        f"(status {result.status} vs recorded {body.get('status')}; objective {result.objective!r} vs recorded {was})",
    )
