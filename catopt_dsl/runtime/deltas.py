"""PlanDeltas at run time: re-solve the changed plan warm-started from the previous solution.

A ``PlanDelta`` is lowered to the whole plan it yields (``plan.delta(name).result``, already
checked). :func:`apply_delta` solves that plan starting from the previous run's x, z, u and rho
(:class:`~catopt_dsl.solver.result.SolverState` is keyed by object names and row-block keys, so
it carries over every object, link and coupling term the delta kept):

* objects the delta keeps start from their previous x, their duals and coupling copies;
* a new object starts from z: its consensus-linked vars take the current shared values and its
  duals are zero (the coordinator sets every consensus target to z);
* a removed object's duals and coupling copies are simply not looked up: its share is released;
* a migrated morphism keeps its row-block key (``coupling:<limit>:<morphism>.<field>``), so its
  dual survives a schema migration.

Every PlanDelta is declared against the spec's base plan, so deltas do not chain: applying
``tenant_b_leaves`` after ``tenant_d_joins`` gives the base plan without ``tenant_b`` (and
without ``tenant_d``), warm-started from whatever ran last.

Generated Python packages: the generated ``Plan`` class has one method per delta that returns
the delta's plan class; combine it with this module through the IR, e.g. ::

    first = solve(plan.ir)                                  # or apply_delta on the IR directly
    after = apply_delta(plan.ir, "tenant_d_joins", first)   # plan: the generated Plan instance

or keep a :class:`PlanSession`, which remembers the last result for you.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.runtime.backends import BACKENDS, RunOptions, solve_with
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState

__all__ = ["PlanSession", "apply_delta", "warm_state"]


def warm_state(
    plan: IRPlan,
    previous: SolveResult,
    options: SolveOptions | None = None,
    *,
    before: IRPlan | None = None,
) -> SolverState:
    """The warm start for ``plan`` from a previous result (its ``state``, else its values).

    New objects get an x whose consensus-linked vars equal the shared values (a better first
    CVXPY warm start; the x-update itself only depends on the centres). A previous result
    without a solver state (a centralised solve) still gives x and z, with zero duals.

    Couplings the change touched (terms added or removed, or -- given ``before``, the plan the
    previous result solved -- a new right-hand side) are re-priced: every term gets the mean of
    the known term duals (in sharing ADMM all terms of a coupling share one price at the
    optimum), and a component where the kept terms' copies leave slack gets price zero
    (complementary slackness: a constraint with room is not binding). Without this a released
    share keeps its old, too high, price and the warm start loses to a cold one.
    """
    opts = options or SolveOptions()
    if previous.state is not None:
        st = previous.state
        state = SolverState(
            rho=float(st.rho),
            x={k: np.asarray(v, dtype=np.float64).copy() for k, v in st.x.items()},
            z={k: np.asarray(v, dtype=np.float64).copy() for k, v in st.z.items()},
            duals={k: np.asarray(v, dtype=np.float64).copy() for k, v in st.duals.items()},
            targets={k: np.asarray(v, dtype=np.float64).copy() for k, v in st.targets.items()},
        )
    else:
        state = SolverState(rho=float(opts.rho))
        for obj in plan.objects:
            values = previous.objects.get(obj.name)
            if values is None or any(v.name not in values for v in obj.vars):
                continue
            try:
                state.x[obj.name] = (
                    np.concatenate([np.asarray(values[v.name], dtype=np.float64).reshape(v.size) for v in obj.vars])
                    if obj.vars
                    else np.zeros(0)
                )
            except ValueError:  # a var changed shape: start that object cold
                continue
        for blk in plan.shared:
            values = previous.shared.get(blk.name)
            if values is None or any(v.name not in values for v in blk.vars):
                continue
            try:
                state.z[blk.name] = (
                    np.concatenate([np.asarray(values[v.name], dtype=np.float64).reshape(v.size) for v in blk.vars])
                    if blk.vars
                    else np.zeros(0)
                )
            except ValueError:
                continue
    _reprice(plan, state, before)
    # New members start from z.
    for obj in plan.objects:
        if obj.name in state.x and np.asarray(state.x[obj.name]).shape == (obj.n,):
            continue
        x = np.zeros(obj.n)
        for link in plan.consensus:
            z = state.z.get(link.shared)
            if link.object != obj.name or z is None:
                continue
            var = obj.var(link.var)
            svar = plan.shared_block(link.shared).var(link.shared_var)
            if z.shape == (plan.shared_block(link.shared).n,):
                x[var.offset : var.offset + var.size] = z[svar.offset : svar.offset + svar.size]
        state.x[obj.name] = x
    return state


def _reprice(plan: IRPlan, state: SolverState, before: IRPlan | None) -> None:
    from catopt_dsl.solver.layout import build_layout

    layout = build_layout(plan)
    old = {c.name: c for c in build_layout(before).couplings} if before is not None else {}
    for c in layout.couplings:
        keys = [t.key for t in c.terms]
        prefix = f"coupling:{c.name}:"
        stored = {k for k in state.duals if k.startswith(prefix)}
        changed = stored != set(keys)
        prev = old.get(c.name)
        if prev is not None and ([t.key for t in prev.terms] != keys or not np.array_equal(prev.rhs, c.rhs)):
            changed = True
        if not changed or not stored:
            continue  # untouched (keep every dual) or nothing to start from (cold)
        m = c.rhs.size
        known = [np.asarray(state.duals[k]) for k in sorted(stored) if np.asarray(state.duals[k]).shape == (m,)]
        price = np.mean(known, axis=0) if known else np.zeros(m)
        kept = [np.asarray(state.targets[k]) for k in keys if k in state.targets]
        kept = [t for t in kept if t.shape == (m,)]
        total = np.sum(kept, axis=0) if kept else np.zeros(m)
        tol = 1e-9 * max(1.0, float(np.abs(c.rhs).max(initial=0.0)))
        if c.sense == "<=":
            price = np.where(total < c.rhs - tol, 0.0, price)
        elif c.sense == ">=":
            price = np.where(total > c.rhs + tol, 0.0, price)
        for k in stored - set(keys):
            state.duals.pop(k, None)  # a removed term's share is released
            state.targets.pop(k, None)
        for k in keys:
            state.duals[k] = np.array(price, dtype=np.float64)


def apply_delta(
    plan: IRPlan,
    delta_name: str,
    previous: SolveResult,
    *,
    options: SolveOptions | None = None,
    backend: str = "inprocess",
    address: str | None = None,
    centralized: bool = False,
    run: RunOptions | None = None,
) -> SolveResult:
    """Re-solve ``plan.delta(delta_name).result`` warm-started from ``previous`` (x, z, u, rho).

    ``run``: the protocol runtimes' options for the re-solve (a signed run's ``auth`` must cover
    the changed plan's owners).

    ``centralized`` solves the changed plan as one CVXPY problem instead (no warm start). Raises
    ``KeyError`` for an unknown delta and ``ValueError`` for an unknown backend.
    """
    changed = plan.delta(delta_name).result
    if centralized:
        backend = "centralized"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    warm = warm_state(changed, previous, options, before=plan)
    return solve_with(changed, options, backend=backend, address=address, warm_start=warm, run=run)


@dataclass
class PlanSession:
    """A running plan: ``solve()`` once, then ``apply(delta)`` re-solves warm after each change.

    ``base`` is the spec's plan (deltas are declared against it); ``plan`` is the plan as it
    stands; ``results`` every result so far, in order.
    """

    base: IRPlan
    options: SolveOptions = field(default_factory=SolveOptions)
    backend: str = "inprocess"
    address: str | None = None
    plan: IRPlan | None = None
    results: list[SolveResult] = field(default_factory=list)

    @property
    def last(self) -> SolveResult | None:
        return self.results[-1] if self.results else None

    def solve(self) -> SolveResult:
        """Solve the current plan (cold the first time, warm from the last result after)."""
        current = self.plan if self.plan is not None else self.base
        warm = warm_state(current, self.last, self.options, before=current) if self.last is not None else None
        result = solve_with(current, self.options, backend=self.backend, address=self.address, warm_start=warm)
        self.plan = current
        self.results.append(result)
        return result

    def apply(self, delta_name: str) -> SolveResult:
        """Move to the plan ``delta_name`` yields and re-solve it warm-started."""
        if self.last is None:
            self.solve()
        assert self.last is not None
        result = apply_delta(
            self.base, delta_name, self.last, options=self.options, backend=self.backend, address=self.address
        )
        self.plan = self.base.delta(delta_name).result
        self.results.append(result)
        return result
