"""``catoptc demo fleet``: a simulated cross-domain fleet, re-planned every hour with PlanDeltas.

Each simulated hour:

1. The fleet moves on: last hour's allocations do work on the tenants' jobs (the earliest
   deadline first), jobs arrive and finish, scheduled events happen (a domain loses nodes, the
   usage schema is upgraded, a domain goes dark and comes back).
2. The change is written as a ``PlanDelta`` against last hour's plan, in a spec file of its own
   (``specs/hour_HH.cat``: last hour's plan, then the delta): tenants that got work join (``add``),
   tenants without work leave (``remove``), demands, values and capacities are ``set``, morphisms
   ``migrate`` to the new schema. The checker checks the file, delta included, and the delta's
   result is this hour's plan.
3. The plan is re-solved *warm* (from last hour's x, z and duals, re-priced where the delta
   touched a coupling: :func:`catopt_dsl.runtime.deltas.warm_state`) over the delta-sync protocol
   with faults injected (drops and duplicates every hour). When a domain goes dark, the run that
   hour loses its nodes mid-run (a partition): the membership policy drops them and the run ends
   ``member_lost`` -- never ``optimal`` -- with the solution of the remaining plan; the fleet then
   re-plans without the dark domain (a second delta) and solves that warm.
4. Checks: the result is ``optimal`` and its objective is within ``REL_TOL`` (relative) of a
   centralised CVXPY solve of the same hour's plan; a ``member_lost`` run is checked against the
   centralised solve of its remaining plan. A cold solve of the same plan (the in-process
   reference ADMM, which runs the same iterations as the synchronous protocol) counts the
   iterations the warm start saved.
5. The hour's delta and result are signed and appended to a governance ledger
   (:mod:`catopt_dsl.ledger`), which the report verifies at the end.

Backends: ``distributed`` (default; every protocol node in this process), ``ray`` (every node a
Ray actor; one Ray session for the whole run) and ``inprocess`` (the reference ADMM without the
protocol: no faults to inject, the dark domain is only a plan change).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.compile import analyze
from catopt_dsl.demo.scenario import CLASSES, Scenario, default_scenario
from catopt_dsl.identity.keys import Identity
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.ir.transform import restrict_plan
from catopt_dsl.ledger.ledger import Ledger
from catopt_dsl.ledger.solve_record import result_hash
from catopt_dsl.runtime.backends import RunOptions, solve_with
from catopt_dsl.runtime.deltas import warm_state
from catopt_dsl.solver import solve
from catopt_dsl.solver.centralized import solve_centralized
from catopt_dsl.solver.result import SolveOptions, SolveResult
from catopt_dsl.sync.protocol import SyncSettings

__all__ = ["BACKENDS", "REL_TOL", "FleetRun", "HourRecord", "SolveRecord", "TenantState", "run_fleet"]

#: the demo's backends (see the module docstring)
BACKENDS: tuple[str, ...] = ("distributed", "inprocess", "ray")
#: an hour's check: |objective - centralised| / max(1, |centralised|) at most this
REL_TOL = 1e-4
#: faults injected into every protocol run (per-message probabilities)
MESSAGE_FAULTS: tuple[str, ...] = ("drop=0.05", "duplicate=0.05")
#: the ledger's signer: a fixed demo key, so the same run writes byte-identical entries. It proves
#: nothing about who ran the demo; give ``run_fleet`` an identity of your own for that.
DEMO_SEED = hashlib.sha256(b"catoptc demo fleet: not a secret key").digest()
#: ADMM tolerances: tight enough that the objective lands well inside REL_TOL
OPTIONS = SolveOptions(eps_abs=1e-6, eps_rel=1e-6)
#: a dark domain's nodes fall silent at once; the protocol drops them after this many ticks
DARK_TIMEOUT_TICKS = 20


@dataclass(frozen=True)
class TenantState:
    """A tenant as this hour's plan states it."""

    name: str
    platform: str
    value: tuple[float, float, float]
    demand: tuple[float, float, float]
    penalty: float


@dataclass(frozen=True)
class FleetState:
    """Everything an hour's plan is written from."""

    hour: int
    capacity: tuple[float, float, float]
    schema: int  # the usage schema's version every morphism carries
    tenants: tuple[TenantState, ...]
    dark: tuple[str, ...] = ()  # domains that are dark


@dataclass(frozen=True)
class SolveRecord:
    """One solve of an hour: the protocol's result and its checks."""

    label: str  # "plan" or, after a dark domain's mid-run loss, "remaining"
    spec: str  # the spec file (relative to the output folder)
    delta: str | None
    status: str
    remaining_status: str | None
    objective: float | None
    centralized: float | None
    rel_error: float | None
    check: bool
    iterations: int
    cold_iterations: int | None
    r_prim: float
    r_dual: float
    lost: tuple[str, ...]
    dropped: int
    duplicates: int
    retransmits: int
    seconds: float
    result_hash: str
    history: tuple[tuple[float, float], ...]  # (r_prim, r_dual) per iteration


@dataclass(frozen=True)
class HourRecord:
    hour: int
    events: tuple[str, ...]
    joined: tuple[str, ...]
    left: tuple[str, ...]
    capacity: tuple[float, float, float]
    solves: tuple[SolveRecord, ...]
    allocations: dict[str, tuple[float, float, float]]  # tenant -> accelerator-hours per class

    @property
    def final(self) -> SolveRecord:
        return self.solves[-1]

    @property
    def check(self) -> bool:
        return all(s.check for s in self.solves)


@dataclass
class FleetRun:
    backend: str
    hours: list[HourRecord] = field(default_factory=list)
    seconds: float = 0.0
    ledger: Path | None = None
    ledger_entries: int = 0
    ledger_ok: bool = False
    ledger_problems: list[str] = field(default_factory=list)
    finished: dict[str, int] = field(default_factory=dict)  # job -> hour it finished
    missed: list[str] = field(default_factory=list)  # jobs that finished after their deadline
    tenants: tuple[str, ...] = ()

    @property
    def all_checks(self) -> bool:
        return bool(self.hours) and all(h.check for h in self.hours)


# -- writing plans and deltas -----------------------------------------------------------------


def _vec(v: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(a):.4f}" for a in v) + "]"


def _tenant_text(t: TenantState, indent: str) -> str:
    i = indent
    return (
        f"LocalProblem {t.name} on {t.platform} {{\n"
        f"{i}    param value: float[3] = {_vec(t.value)};\n"
        f"{i}    param demand: float[3] = {_vec(t.demand)};\n"
        f"{i}    var x: float[3];\n"
        f"{i}    maximize dot(value, x) - {t.penalty:.4f} * sum_squares(x);\n"
        f"{i}    subject to {{\n"
        f"{i}        x >= 0;\n"
        f"{i}        x <= demand;\n"
        f"{i}    }}\n"
        f"{i}}}"
    )


def _morphism_text(t: TenantState, schema: int) -> str:
    fields = "hours = x;" if schema == 1 else "hours = x; total = x[0] + x[1] + x[2];"
    return f"Morphism {t.name}_use : {t.name} -> fleet carries Usage v{schema} {{ {fields} }}"


def plan_text(state: FleetState) -> str:
    """The spec of the plan ``state`` describes (no deltas)."""
    lines = [
        "catopt 1;",
        "",
        f"// The fleet at hour {state.hour}: accelerator-hours per class ({', '.join(CLASSES)}).",
        "// Written by `catoptc demo fleet`.",
        "",
        "schema Usage v1 {",
        "    hours: float[3];",
        "}",
        "",
        "// v2 appends `total` with a default, so v1 senders and v2 readers stay compatible.",
        "schema Usage v2 {",
        "    hours: float[3];",
        "    total: float = 0;",
        "}",
        "",
        "SharedVariables fleet {",
        f"    param capacity: float[3] = {_vec(state.capacity)};",
        "}",
        "",
    ]
    for t in state.tenants:
        lines += [_tenant_text(t, ""), "", _morphism_text(t, state.schema), ""]
    lines += ["Limit cap on fleet {", "    sum(*.hours) <= capacity;", "}", "", "Colimit plan of fleet;", ""]
    return "\n".join(lines)


def delta_text(before: FleetState, after: FleetState, name: str) -> str:
    """The PlanDelta that turns ``before``'s plan into ``after``'s."""
    old = {t.name: t for t in before.tenants}
    new = {t.name: t for t in after.tenants}
    ops: list[str] = []
    for t in before.tenants:
        if t.name not in new:
            ops.append(f"    remove LocalProblem {t.name};")
    if after.schema != before.schema:
        for t in before.tenants:
            if t.name in new:
                ops.append(f"    migrate {t.name}_use to Usage v{after.schema} {{ total = x[0] + x[1] + x[2]; }};")
    for t in after.tenants:
        if t.name not in old:
            ops.append("    add " + _tenant_text(t, "    "))
            ops.append("    add " + _morphism_text(t, after.schema))
            continue
        prev = old[t.name]
        if prev.value != t.value:
            ops.append(f"    set {t.name}.value = {_vec(t.value)};")
        if prev.demand != t.demand:
            ops.append(f"    set {t.name}.demand = {_vec(t.demand)};")
    # Always stated, so a delta is never empty (and the capacity an hour ran with is on record).
    ops.append(f"    set fleet.capacity = {_vec(after.capacity)};")
    return f"PlanDelta {name} {{\n" + "\n".join(ops) + "\n}\n"


# -- the simulation ---------------------------------------------------------------------------


class _Fleet:
    """Jobs, nodes and the schema version as the hours go by."""

    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.remaining = {j.name: j.work for j in scenario.jobs}
        self.nodes = {d.name: d.nodes for d in scenario.domains}
        self.dark: set[str] = set()
        self.schema = 1
        self.finished: dict[str, int] = {}

    def apply_events(self, hour: int) -> list[str]:
        said: list[str] = []
        for e in self.sc.events_at(hour):
            if e.kind == "lose_nodes":
                self.nodes[e.domain] = max(0, self.nodes[e.domain] - e.nodes)
                said.append(f"{e.domain} loses {e.nodes} nodes ({self.nodes[e.domain]} left)")
            elif e.kind == "schema_upgrade":
                self.schema = 2
                said.append("usage schema upgraded: Usage v1 -> v2 (every morphism migrates)")
            elif e.kind == "back":
                self.dark.discard(e.domain)
                said.append(f"{e.domain} is back")
        return said

    def going_dark(self, hour: int) -> list[str]:
        return [e.domain for e in self.sc.events_at(hour) if e.kind == "dark"]

    def do_work(self, hour: int, allocations: dict[str, tuple[float, float, float]]) -> None:
        speed = np.array([next(d.speed for d in self.sc.domains if d.accel == c) for c in CLASSES])
        for tenant, x in allocations.items():
            work = float(np.dot(np.maximum(np.asarray(x), 0.0), speed))
            for job in self._active(tenant, hour):
                take = min(work, self.remaining[job.name])
                self.remaining[job.name] -= take
                work -= take
                if self.remaining[job.name] <= 1e-6:
                    self.remaining[job.name] = 0.0
                    self.finished[job.name] = hour
                if work <= 0:
                    break

    def _active(self, tenant: str, hour: int) -> list[Any]:
        jobs = [j for j in self.sc.jobs if j.tenant == tenant and j.arrival <= hour and self.remaining[j.name] > 0]
        return sorted(jobs, key=lambda j: (j.deadline, j.name))

    def state(self, hour: int, dark: Sequence[str] = ()) -> FleetState:
        dark_now = set(self.dark) | set(dark)
        speed = {d.accel: d.speed for d in self.sc.domains}
        capacity = tuple(
            0.0 if d.name in dark_now else float(self.nodes[d.name] * d.hours_per_node) for d in self.sc.domains
        )
        tenants: list[TenantState] = []
        for spec in self.sc.tenants:
            if spec.home in dark_now:
                continue
            jobs = self._active(spec.name, hour)
            if not jobs:
                continue
            left = sum(self.remaining[j.name] for j in jobs)
            slack = jobs[0].deadline - hour
            # Urgency in steps, so a tenant's bid changes only when its deadline comes closer.
            urgency = 3.0 if slack < 0 else 2.0 if slack <= 1 else 1.5 if slack <= 4 else 1.0
            demand = tuple(round(min(spec.max_rate, left / speed[c]), 4) for c in CLASSES)
            value = tuple(round(v * urgency, 4) for v in spec.value)
            platform = self.sc.domain(spec.home).accel
            tenants.append(TenantState(spec.name, platform, value, demand, spec.penalty))  # type: ignore[arg-type]
        return FleetState(hour, capacity, self.schema, tuple(tenants), tuple(sorted(dark_now)))  # type: ignore[arg-type]


# -- solving ----------------------------------------------------------------------------------


def _load(path: Path, text: str) -> IRPlan:
    path.write_text(text, encoding="utf-8")
    a = analyze(path)
    if a.plan is None:  # the demo writes these files: an error here is a bug in the demo
        errors = "; ".join(d.message for d in a.sink.errors())
        raise RuntimeError(f"{path.name} does not check: {errors}")
    return a.plan


def _rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return abs(a - b) / max(1.0, abs(b))


@contextmanager
def _ray_if(backend: str) -> Iterator[None]:
    if backend != "ray":
        yield
        return
    from catopt_dsl.runtime.ray_backend import ray_session

    with ray_session():  # one Ray for every hour: actors stay warm between re-solves
        yield


def _node_mates(plan: IRPlan, backend: str, names: Sequence[str]) -> list[str]:
    """Every object hosted on a node that hosts one of ``names`` (the backend's placement)."""
    from catopt_dsl.sync.run import assign_nodes

    if backend == "ray":
        from catopt_dsl.runtime.ray_backend import ray_assignment

        assignment = ray_assignment(plan)
    else:
        assignment = assign_nodes(plan)
    wanted = set(names)
    return sorted({o for objs in assignment.values() if wanted & set(objs) for o in objs})


def _allocations(plan: IRPlan, result: SolveResult) -> dict[str, tuple[float, float, float]]:
    out: dict[str, tuple[float, float, float]] = {}
    for obj in plan.objects:
        vals = (result.objects or {}).get(obj.name)
        if vals is None:
            continue
        x = np.asarray(vals["x"], dtype=np.float64)
        out[obj.name] = (float(x[0]), float(x[1]), float(x[2]))
    return out


def run_fleet(
    out: str | Path,
    *,
    hours: int = 24,
    backend: str = "distributed",
    scenario: Scenario | None = None,
    identity: Identity | None = None,
    progress: Callable[[str], None] | None = None,
) -> FleetRun:
    """Run the simulation for ``hours`` hours into folder ``out`` (specs, ledger); see the module docs."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not 1 <= hours <= 24:
        raise ValueError("hours must be between 1 and 24")
    sc = scenario or default_scenario()
    out = Path(out)
    specs_dir = out / "specs"
    specs_dir.mkdir(parents=True, exist_ok=True)
    ledger_path = out / "ledger.catlog"
    if ledger_path.exists():
        ledger_path.unlink()  # the demo's own output from an earlier run (the folder is the demo's)
    signer = identity or Identity.from_seed(DEMO_SEED)
    ledger = Ledger.open(ledger_path, create=True)
    fleet = _Fleet(sc)
    run = FleetRun(backend=backend, ledger=ledger_path, tenants=tuple(t.name for t in sc.tenants))
    say = progress or (lambda _text: None)
    t_start = time.perf_counter()
    prev_state: FleetState | None = None
    prev_plan: IRPlan | None = None
    prev_result: SolveResult | None = None

    def solve_one(
        plan: IRPlan, before: IRPlan | None, previous: SolveResult | None, label: str, spec: str,
        delta: str | None, hour: int, faults: tuple[str, ...] = (), min_members: int = 1,
    ) -> tuple[SolveResult, SolveRecord]:
        warm = None if previous is None else warm_state(plan, previous, OPTIONS, before=before)
        t0 = time.perf_counter()
        if backend == "inprocess":
            result = solve_with(plan, OPTIONS, backend="inprocess", warm_start=warm)
        else:
            settings = SyncSettings(member_timeout=DARK_TIMEOUT_TICKS) if min_members > 1 else None
            run_opts = RunOptions(fault_specs=MESSAGE_FAULTS + faults, min_members=min_members, settings=settings)
            result = solve_with(plan, OPTIONS, backend=backend, warm_start=warm, run=run_opts)
        seconds = time.perf_counter() - t0
        report: Any = result.run  # a RunReport on the protocol backends, None in-process
        checked_plan = plan
        if result.status == "member_lost" and report is not None:
            checked_plan = restrict_plan(plan, report.members)
        reference = solve_centralized(checked_plan)
        rel = _rel(result.objective, reference.objective)
        if label == "remaining":  # a cut plan is never optimal: the remaining plan must be solved
            good_status = result.status == "member_lost" and report is not None and report.remaining_status == "optimal"
        else:
            good_status = result.status == "optimal"
        cold = solve(plan, OPTIONS) if previous is not None and label == "plan" else None
        record = SolveRecord(
            label=label,
            spec=spec,
            delta=delta,
            status=result.status,
            remaining_status=None if report is None else report.remaining_status,
            objective=result.objective,
            centralized=reference.objective,
            rel_error=rel,
            check=bool(good_status and reference.status == "optimal" and rel is not None and rel <= REL_TOL),
            iterations=int(result.iterations or 0),
            cold_iterations=None if cold is None else int(cold.iterations or 0),
            r_prim=float(result.primal_residual if result.primal_residual is not None else float("nan")),
            r_dual=float(result.dual_residual if result.dual_residual is not None else float("nan")),
            lost=() if report is None else tuple(report.lost),
            dropped=0 if report is None else int(report.dropped),
            duplicates=0 if report is None else int(report.duplicates),
            retransmits=0 if report is None else int(report.retransmits),
            seconds=seconds,
            result_hash=result_hash(result),
            history=tuple((float(r["r_prim"]), float(r["r_dual"])) for r in result.history),
        )
        ledger.append_many(signer, [
            ("demo.fleet.delta", {
                "hour": hour, "label": label, "spec": spec, "delta": delta or "",
                "spec_sha256": hashlib.sha256((out / spec).read_bytes()).hexdigest(),
                "plan_hash": plan.spec_hash,
            }, None),
            ("demo.fleet.result", {
                "hour": hour, "label": label, "backend": backend, "status": result.status,
                "objective": "" if result.objective is None else f"{result.objective:.9e}",
                "centralized": "" if reference.objective is None else f"{reference.objective:.9e}",
                "rel_error": "" if rel is None else f"{rel:.3e}", "check": record.check,
                "iterations": record.iterations, "result_hash": record.result_hash,
            }, None),
        ])
        return result, record

    with _ray_if(backend):
        for hour in range(hours):
            events: list[str] = []
            if prev_result is not None and prev_plan is not None:
                fleet.do_work(hour - 1, _allocations(prev_plan, prev_result))
            events += fleet.apply_events(hour)
            dark_now = fleet.going_dark(hour)
            if dark_now and backend == "inprocess":
                # Without the protocol nothing can be lost mid-run: the dark domain is a plan change.
                fleet.dark.update(dark_now)
                events.append(f"{', '.join(dark_now)} went dark (re-planned without it)")
                dark_now = []
            state = fleet.state(hour)
            if not state.tenants:
                raise RuntimeError(f"hour {hour}: no tenant has work; the scenario needs at least one")
            solves: list[SolveRecord] = []
            name = f"hour_{hour:02d}"
            spec = f"specs/{name}.cat"
            before: IRPlan | None = None
            delta: str | None = None
            if prev_state is None:
                plan = _load(out / spec, plan_text(state))
            else:
                base = _load(out / spec, plan_text(prev_state) + "\n" + delta_text(prev_state, state, name))
                plan, before, delta = base.delta(name).result, base, name
            old = {t.name for t in prev_state.tenants} if prev_state else set()
            warm_from = prev_result
            if dark_now:
                # The domain goes dark during this hour's run: its nodes stop answering at once, the
                # protocol drops them, and the run ends member_lost with the remaining plan solved.
                accels = {sc.domain(d).accel for d in dark_now}
                gone = [t.name for t in state.tenants if t.platform in accels]
                faults = tuple(f"partition={n}@0" for n in gone)
                # A partition cuts a whole node: on Ray, objects batched into one actor with a dark
                # tenant go dark with it, so the run may go on with only the objects of other nodes.
                on_dark_nodes = _node_mates(plan, backend, gone)
                lost_result, record = solve_one(plan, before, prev_result, "remaining", spec, delta, hour, faults,
                                                min_members=max(1, len(state.tenants) - len(on_dark_nodes)))
                solves.append(record)
                events.append(f"{', '.join(dark_now)} went dark mid-run: {len(record.lost)} member(s) lost "
                              f"({record.status}); re-planned without it")
                fleet.dark.update(dark_now)
                dark_state = fleet.state(hour)
                dname = f"hour_{hour:02d}_dark"
                spec = f"specs/{dname}.cat"
                base = _load(out / spec, plan_text(state) + "\n" + delta_text(state, dark_state, dname))
                plan, before, delta, state, warm_from = base.delta(dname).result, base, dname, dark_state, lost_result
            new = {t.name for t in state.tenants}
            result, record = solve_one(plan, before, warm_from, "plan", spec, delta, hour)
            solves.append(record)
            hour_rec = HourRecord(
                hour=hour,
                events=tuple(events),
                joined=tuple(sorted(new - old)),
                left=tuple(sorted(old - new)),
                capacity=state.capacity,
                solves=tuple(solves),
                allocations=_allocations(plan, result),
            )
            run.hours.append(hour_rec)
            obj = "-" if record.objective is None else f"{record.objective:.4f}"
            rel = "-" if record.rel_error is None else f"{record.rel_error:.1e}"
            cold = "-" if record.cold_iterations is None else str(record.cold_iterations)
            say(f"hour {hour:2d}: {record.status:<8} obj {obj:>12}  rel err {rel}  it {record.iterations:3d} (cold {cold})"
                f"{'  ' + '; '.join(events) if events else ''}")
            prev_state, prev_plan, prev_result = state, plan, result
        if prev_result is not None and prev_plan is not None:
            fleet.do_work(hours - 1, _allocations(prev_plan, prev_result))
    run.seconds = time.perf_counter() - t_start
    run.finished = dict(fleet.finished)
    run.missed = sorted(j.name for j in sc.jobs if j.name in fleet.finished and fleet.finished[j.name] > j.deadline)
    verify_ledger(run)
    return run


def verify_ledger(run: FleetRun) -> None:
    """Re-open the run's ledger and verify every entry, its signature and the tree; also that each
    hour's spec file is the one recorded (its SHA-256) and each result entry holds the result hash
    the report shows for that solve."""
    assert run.ledger is not None
    ledger = Ledger.open(run.ledger)
    rep = ledger.verify()
    problems = [p.describe() for p in rep.problems]
    for e in ledger.entries():
        body = e.entry.body
        if e.entry.kind == "demo.fleet.delta":
            spec = run.ledger.parent / str(body.get("spec", ""))
            try:
                digest = hashlib.sha256(spec.read_bytes()).hexdigest()
            except OSError:
                digest = ""
            if digest != body.get("spec_sha256"):
                problems.append(f"hour {body.get('hour')}: {body.get('spec')} is not the spec the ledger recorded")
    recorded = [e.entry.body for e in ledger.entries() if e.entry.kind == "demo.fleet.result"]
    shown = [s for h in run.hours for s in h.solves]
    if len(recorded) != len(shown):
        problems.append(f"the ledger holds {len(recorded)} results, the report {len(shown)}")
    for body, s in zip(recorded, shown):
        if body.get("result_hash") != s.result_hash:
            problems.append(f"hour {body.get('hour')}: the ledger's result hash differs from the report's")
    run.ledger_entries = ledger.size
    run.ledger_problems = problems
    run.ledger_ok = not problems

