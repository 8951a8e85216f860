"""The reference ADMM, run distributed: every contribution and broadcast travels as protocol frames.

:func:`solve_distributed` runs the same iteration as :func:`catopt_dsl.solver.solve` -- the same
:class:`~catopt_dsl.solver.worker.LocalWorker` x-updates and the same
:class:`~catopt_dsl.solver.coordinator.Coordinator` z/y/u updates -- but the workers live behind
:class:`~catopt_dsl.sync.protocol.NodeProtocol` endpoints and the coordinator behind a
:class:`~catopt_dsl.sync.protocol.CoordinatorProtocol`, and every message is an encoded frame
handed to a transport (by default a perfect in-process one; tests pass the fault-injecting
:class:`~catopt_dsl.sync.transport.FaultyTransport`).

Application payloads (names inside the frames, see ``docs/protocol.md`` "Runtime"):

* Broadcast / Snapshot ``z``: ``d:<node id>`` the ADMM centres ``d_i = t_i - u_i - e_i`` of the
  node's objects, concatenated in the node's object order (the x-update needs nothing else), and
  ``z:<shared block>`` the stacked shared values. One entry per node, not per object: every node
  decodes the whole broadcast, so the entry count is what a round costs.
* Snapshot node state: ``d:<node id>`` (a joining node's first centres).
* Delta: ``x:<object>`` the stacked local x; residual terms ``f:<object>`` (f_i(x_i)),
  ``g:<object>`` (the objective's scale for rho adaptation, ``Contribution.grad_scale``) and
  ``status:<object>`` (0 ok, 1 infeasible, 2 unbounded, 3 failed); when nonzero, ``inacc:<object>``
  (CVXPY solves flagged inaccurate so far) and ``ubd:<object>`` (1: its objective is unbounded
  below along a direction its rows ignore; it now solves for feasibility only, see
  ``LocalWorker.step``).
* Certificates (``catopt_dsl.solver.certificate``): a Broadcast may carry a query for an object,
  ``qid:<object>`` (one float, the query id) with ``lam:<object>`` (its rows of a candidate Farkas
  vector) and/or ``dir:<object>`` (its part of a candidate recession direction); the node answers
  in its next Delta with residual terms ``qid:<object>``, ``sup:<object>`` (its support value) and
  ``slope:<object>`` (its recession slope; NaN when it cannot certify one).

The coordinator owns the row system (M_i, e_i), so nodes send x and the coordinator forms
``a_i = M_i x_i + e_i``; it never sees local objectives or constraints. The x-update is a pure
function of (centres, rho), so a contribution applied twice would be harmless -- the protocol's
exactly-once guarantee still holds and is what makes a run reproducible event by event.

**Membership.** The solver's coordinator is built for the plan *restricted to the current
members* (:func:`restrict_plan`). When the member set changes (a crash detected by the member
timeout, a Leave, a late Join) it is rebuilt, warm-started from the previous one's
:class:`~catopt_dsl.solver.result.SolverState` (keyed by names, so it survives the change):
the consensus means are then taken over the current members only (re-weighted z-update), a
removed member's coupling terms disappear from the sharing projection and its duals are
forgotten (its share is released), and a new member starts from the current z with zero duals.
ADMM converges from any starting point, so the run ends at the optimum of the plan *as it stands
after the change*. A member that was admitted but has not answered yet is left out of the
z-update until its first contribution arrives.

With the default :class:`~catopt_dsl.sync.protocol.SyncSettings` (quorum 1, staleness 0) every
round uses every member's answer to that round's broadcast: the iterates are those of
``solver.solve`` whatever the transport drops, duplicates or reorders. With ``quorum < 1`` or
``max_staleness > 0`` a round uses each member's newest contribution (asynchronous ADMM).

Certificates of infeasibility and unboundedness travel as payload entries (above), so a
distributed run reaches the same status as ``solver.solve`` at the same iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from catopt_dsl.ir.analysis import ObjectAnalysis, analyze_ir
from catopt_dsl.ir.model import IRObject, IRPlan
from catopt_dsl.solver.certificate import CertificateAnswer, CertificateQuery
from catopt_dsl.solver.coordinator import Coordinator
from catopt_dsl.solver.glue import glue_solution
from catopt_dsl.solver.layout import build_layout
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState, inaccurate_warnings
from catopt_dsl.solver.worker import Contribution, FastBatch, LocalWorker, unbounded_note
from catopt_dsl.sync.frame import ZERO_HASH, spec_hash_bytes
from catopt_dsl.sync.messages import Delta, Message
from catopt_dsl.sync.protocol import (
    COORDINATOR_ID,
    BroadcastState,
    BroadcastView,
    CoordinatorProtocol,
    FrameAuth,
    NodeOutput,
    NodeProtocol,
    ProtocolStats,
    RoundInput,
    Send,
    SyncSettings,
)
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

if TYPE_CHECKING:  # the key-holding layer is only imported by callers that authenticate
    from catopt_dsl.sync.auth import RunAuth

__all__ = [
    "DEFAULT_MAX_NODES",
    "STATUS_CODES",
    "DistributedSolve",
    "HostFactory",
    "LocalNodes",
    "NodeHost",
    "NodeSpec",
    "RunTrace",
    "SolverCoordinator",
    "SolverNode",
    "Transport",
    "assign_nodes",
    "node_ids",
    "node_specs",
    "reported_objects",
    "restrict_plan",
    "solve_distributed",
]

ProgressFn = Callable[[dict[str, float]], None]

#: status of a local solve as carried in the ``status:<object>`` residual term
STATUS_CODES: dict[str, int] = {"ok": 0, "infeasible": 1, "unbounded": 2, "failed": 3}
_CODE_STATUS = {0: "ok", 1: "infeasible", 2: "unbounded", 3: "local_solver_failed"}


def reported_objects(msg: Message) -> set[str]:
    """The objects a node's Delta reports for: the ``<object>`` of every ``x:<object>`` entry and
    residual term (an entry of another shape counts as reporting for its whole name)."""
    if not isinstance(msg, Delta):
        return set()
    return {k.split(":", 1)[1] if ":" in k else k for k in (*msg.contributions, *msg.residuals)}


# ---------------------------------------------------------------------------------------------
# Plans and node assignment
# ---------------------------------------------------------------------------------------------


def restrict_plan(plan: IRPlan, keep: Iterable[str]) -> IRPlan:
    """The plan with only the objects named in ``keep`` (plan order kept).

    Removes every other object with its morphisms, consensus links and coupling terms; shared
    blocks, couplings (possibly left without terms), schemas and the colimit stay. The spec hash
    is kept (it identifies the run, not the member set); deltas are dropped.
    """
    names = set(keep)
    unknown = names - {o.name for o in plan.objects}
    if unknown:
        raise KeyError(f"no such object(s): {sorted(unknown)}")
    return IRPlan(
        name=plan.name,
        source=plan.source,
        spec_hash=plan.spec_hash,
        schemas=plan.schemas,
        shared=plan.shared,
        objects=tuple(o for o in plan.objects if o.name in names),
        morphisms=tuple(m for m in plan.morphisms if m.source in names),
        consensus=tuple(c for c in plan.consensus if c.object in names),
        couplings=tuple(replace(c, terms=tuple(t for t in c.terms if t.object in names)) for c in plan.couplings),
        functors=plan.functors,
        colimit=plan.colimit,
        deltas=(),
    )


#: node count above which objects are batched when no ``max_nodes`` is given
DEFAULT_MAX_NODES = 32


def assign_nodes(plan: IRPlan, max_nodes: int | None = None) -> dict[int, tuple[str, ...]]:
    """Node id (1, 2, ...) -> the objects it hosts, in plan order.

    One object per node when there are at most ``max_nodes`` objects (default
    :data:`DEFAULT_MAX_NODES`); otherwise the objects are cut into ``max_nodes`` contiguous,
    balanced batches (family members are declared together, so a batch is mostly one family's
    members). Every node decodes every broadcast, so hundreds of one-object nodes in one process
    would spend their time decoding.
    """
    names = [o.name for o in plan.objects]
    if max_nodes is None:
        max_nodes = DEFAULT_MAX_NODES
    if max_nodes >= len(names):
        return {i + 1: (name,) for i, name in enumerate(names)}
    k = max(1, int(max_nodes))
    q, r = divmod(len(names), k)
    out: dict[int, tuple[str, ...]] = {}
    start = 0
    for i in range(k):
        size = q + (1 if i < r else 0)
        out[i + 1] = tuple(names[start : start + size])
        start += size
    return out


def node_ids(plan: IRPlan, max_nodes: int | None = None) -> dict[str, int]:
    """Object name -> the id of the node hosting it (for ``FaultPlan.crash_at`` / ``join_at``)."""
    return {obj: nid for nid, objs in assign_nodes(plan, max_nodes).items() for obj in objs}


@dataclass(frozen=True, eq=False)
class NodeSpec:
    """What a node needs to run its x-updates: each object with its rows ``M``, ``e``."""

    node_id: int
    objects: tuple[tuple[IRObject, np.ndarray, np.ndarray], ...]
    auth: FrameAuth | None = None  # signs its frames and checks the coordinator's (authenticated runs)
    #: each object's IR analysis (same order as ``objects``; computed once by the driver)
    analyses: tuple[ObjectAnalysis, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o, _M, _e in self.objects)

    @property
    def label(self) -> str:
        """A short node name for Join messages: ``tenant_a`` or ``site[0]..site[49]``."""
        names = self.names
        return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


def node_specs(plan: IRPlan, assignment: Mapping[int, Sequence[str]]) -> dict[int, NodeSpec]:
    """The :class:`NodeSpec` of every node (an object's rows do not depend on the other members)."""
    layout = build_layout(plan)
    rows = {o.obj.name: o for o in layout.objects}
    analysis = analyze_ir(plan)
    return {
        nid: NodeSpec(
            nid,
            tuple((rows[n].obj, rows[n].M, rows[n].e) for n in objs),
            analyses=tuple(analysis.object(n) for n in objs),
        )
        for nid, objs in sorted(assignment.items())
    }


# ---------------------------------------------------------------------------------------------
# Node application
# ---------------------------------------------------------------------------------------------


class SolverNode:
    """``NodeApp``: the x-updates of a batch of objects, with their LocalWorkers kept warm.

    The CVXPY problems are compiled once (DPP) and the fast-path factorisations cached per rho,
    across rounds. ``restore`` takes the centres a Snapshot hands a (re)joining node.
    """

    def __init__(
        self,
        node_id: int,
        objects: Sequence[tuple[IRObject, np.ndarray, np.ndarray]],
        options: SolveOptions,
        warm_x: Mapping[str, np.ndarray] | None = None,
        analyses: Sequence[ObjectAnalysis] = (),
    ) -> None:
        self.node_id = node_id
        found = list(analyses) if len(analyses) == len(objects) else [None] * len(objects)
        self.workers = [
            LocalWorker(o, M, e, fast_path=options.fast_path, analysis=a) for (o, M, e), a in zip(objects, found)
        ]
        for w in self.workers:
            x = (warm_x or {}).get(w.name)
            if x is not None and np.asarray(x).shape == (w.n,):
                w.set_x(x)
        self.batch = FastBatch(self.workers)
        self.slow = [w for w in self.workers if not w.fast]
        self.centres = {w.name: np.zeros(w.r) for w in self.workers}
        self._rows = sum(w.r for w in self.workers)
        self.steps = 0

    def _take(self, entries: Mapping[str, np.ndarray]) -> None:
        d = entries.get(f"d:{self.node_id}")
        if d is None or np.asarray(d).size != self._rows:
            return  # not in this broadcast (just admitted): keep the Snapshot's centres
        flat = np.asarray(d, dtype=np.float64).reshape(-1)
        start = 0
        for w in self.workers:
            # copy: decoded arrays are read-only views into the frame
            self.centres[w.name] = np.array(flat[start : start + w.r])
            start += w.r

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self._take(state)

    def step(self, view: BroadcastView) -> NodeOutput:
        self._take(view.z)
        rho = float(view.rho)
        self.batch.step_all(self.centres, rho)
        for w in self.slow:
            w.step(self.centres[w.name], rho)
        arrays: dict[str, np.ndarray] = {}
        residuals: dict[str, float] = {}
        for w in self.workers:
            ok = w.status == "ok"
            arrays[f"x:{w.name}"] = np.asarray(w.x, dtype=np.float64).copy()
            c = w.contribution()
            residuals[f"f:{w.name}"] = c.objective if ok else float("nan")
            residuals[f"g:{w.name}"] = c.grad_scale
            residuals[f"status:{w.name}"] = float(STATUS_CODES.get(w.status, 3))
            if w.inaccurate:
                residuals[f"inacc:{w.name}"] = float(w.inaccurate)
            if w.unbounded:
                residuals[f"ubd:{w.name}"] = 1.0
            answer = w.answer(query_from_entries(view.z, w.name))
            if answer is not None:
                residuals.update(answer_to_residuals(w.name, answer))
                if answer.lineality is not None:
                    arrays[f"lin:{w.name}"] = np.asarray(answer.lineality, dtype=np.float64).reshape(-1)
        self.steps += 1
        return NodeOutput(arrays, residuals)


def query_to_entries(name: str, query: CertificateQuery) -> dict[str, np.ndarray]:
    """A certificate query as Broadcast entries (see the module docstring)."""
    # qid entry: [query id] or [query id, 1] when the lineality space is wanted
    out = {f"qid:{name}": np.array([float(query.qid), 1.0] if query.want_lineality else [float(query.qid)])}
    if query.lam is not None:
        out[f"lam:{name}"] = np.asarray(query.lam, dtype=np.float64)
    if query.direction is not None:
        out[f"dir:{name}"] = np.asarray(query.direction, dtype=np.float64)
    return out


def query_from_entries(entries: Mapping[str, np.ndarray], name: str) -> CertificateQuery | None:
    qid = entries.get(f"qid:{name}")
    if qid is None or np.asarray(qid).size not in (1, 2):
        return None
    flat = np.asarray(qid, dtype=np.float64).reshape(-1)
    lam = entries.get(f"lam:{name}")
    d = entries.get(f"dir:{name}")
    return CertificateQuery(
        int(flat[0]),
        lam=None if lam is None else np.array(lam, dtype=np.float64).reshape(-1),
        direction=None if d is None else np.array(d, dtype=np.float64).reshape(-1),
        want_lineality=flat.size == 2,
    )


def answer_to_residuals(name: str, answer: CertificateAnswer) -> dict[str, float]:
    nan = float("nan")
    return {
        f"qid:{name}": float(answer.qid),
        f"sup:{name}": nan if answer.support is None else float(answer.support),
        f"slope:{name}": nan if answer.slope is None else float(answer.slope),
    }


def answer_from_residuals(
    residuals: Mapping[str, float], arrays: Mapping[str, np.ndarray], name: str, n: int
) -> CertificateAnswer | None:
    qid = residuals.get(f"qid:{name}")
    if qid is None or not np.isfinite(qid):
        return None
    sup = residuals.get(f"sup:{name}", float("nan"))
    slope = residuals.get(f"slope:{name}", float("nan"))
    lin = arrays.get(f"lin:{name}")
    basis = None
    if lin is not None and n > 0 and np.asarray(lin).size % n == 0:
        basis = np.array(lin, dtype=np.float64).reshape(n, -1)
    # NaN means "no answer"; -inf is a real support value (the object's set is unbounded that way)
    return CertificateAnswer(
        int(qid), None if np.isnan(sup) else float(sup), None if np.isnan(slope) else float(slope), basis
    )


# ---------------------------------------------------------------------------------------------
# Coordinator application
# ---------------------------------------------------------------------------------------------


class SolverCoordinator:
    """``CoordinatorApp`` around the solver's :class:`Coordinator` for the current members."""

    def __init__(
        self,
        plan: IRPlan,
        options: SolveOptions,
        assignment: Mapping[int, Sequence[str]],
        warm_start: SolverState | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.plan = plan
        self.opts = options
        self.assignment = {int(k): tuple(v) for k, v in assignment.items()}
        self.progress = progress
        self.full = build_layout(plan)
        self._rows = {o.obj.name: o for o in self.full.objects}
        # Memory of every row block's dual, *unscaled* (y = rho u) so it survives rho changes,
        # and of the coupling copies: members that are absent right now keep theirs here.
        self._rho = float(options.rho)
        self._z: dict[str, np.ndarray] = {}
        self._y: dict[str, np.ndarray] = {}
        self._targets: dict[str, np.ndarray] = {}
        if warm_start is not None:
            self._rho = float(warm_start.rho)
            self._z = {k: np.asarray(v, dtype=np.float64).copy() for k, v in warm_start.z.items()}
            self._y = {k: self._rho * np.asarray(v, dtype=np.float64) for k, v in warm_start.duals.items()}
            self._targets = {k: np.asarray(v, dtype=np.float64).copy() for k, v in warm_start.targets.items()}
        self._released: set[str] = set()
        self.active: tuple[str, ...] = ()
        self.coordinator = self._make(())
        self.x: dict[str, np.ndarray] = {}
        self.f: dict[str, float] = {}
        self.g: dict[str, float] = {}
        self.answers: dict[str, CertificateAnswer | None] = {}
        self.inaccurate: dict[str, int] = {}
        self.unbounded: set[str] = set()
        self.history: list[dict[str, float]] = []
        #: (iteration, objects) each time the solver's coordinator was rebuilt for a new member set
        self.rebuilds: list[tuple[int, tuple[str, ...]]] = []
        self.done = False
        self.status = "max_iterations"
        self.message = ""
        self.objective: float | None = None

    # -- membership ----------------------------------------------------------------------------
    def _memory_state(self) -> SolverState:
        rho = self._rho
        return SolverState(
            rho=rho,
            z={k: v.copy() for k, v in self._z.items()},
            duals={k: v / rho for k, v in self._y.items()},
            targets={k: v.copy() for k, v in self._targets.items()},
        )

    def _make(self, objects: tuple[str, ...]) -> Coordinator:
        layout = build_layout(restrict_plan(self.plan, objects))
        return Coordinator(layout, self.opts, self._memory_state())

    def _remember(self) -> None:
        st = self.coordinator.state({})
        self._rho = float(st.rho)
        self._z.update({k: v.copy() for k, v in st.z.items()})
        self._y.update({k: st.rho * v for k, v in st.duals.items()})
        self._targets.update({k: v.copy() for k, v in st.targets.items()})
        for name in self._released:
            for block in self._rows[name].blocks:
                self._y.pop(block.key, None)
                self._targets.pop(block.key, None)
        self._released.clear()

    def _ensure(self, objects: tuple[str, ...]) -> None:
        if objects == self.active:
            return
        old = self.coordinator
        self._remember()
        self.coordinator = self._make(objects)
        self.coordinator.iteration = old.iteration  # rho adaptation keeps its cadence
        self.coordinator.last = old.last
        self.active = objects
        self.rebuilds.append((old.iteration, objects))

    def member_joined(self, member: int, name: str) -> None:
        self._released.difference_update(self.assignment.get(member, ()))

    def member_left(self, member: int) -> None:
        # Release the member's share: its duals and coupling copies are forgotten at the next
        # rebuild, and its last x no longer counts.
        for name in self.assignment.get(member, ()):
            self._released.add(name)
            self.x.pop(name, None)
            self.f.pop(name, None)

    def _centres_of(self, name: str) -> np.ndarray:
        """The centres ``t - u - e`` the object would get now (current or fresh from memory)."""
        coord = self.coordinator
        if name in self.active:
            o = coord.layout.object_rows(name)
            return np.asarray(coord.t[o.rows] - coord.u[o.rows] - o.e, dtype=np.float64)
        o = self._rows[name]
        rho = coord.rho
        d = np.zeros(o.M.shape[0])
        for block in o.blocks:
            size = block.local.stop - block.local.start
            y = None if name in self._released else self._y.get(block.key)
            u = np.zeros(size) if y is None or y.shape != (size,) else y / rho
            if block.kind == "consensus":
                assert block.shared is not None and block.shared_var is not None
                var = self.plan.shared_block(block.shared).var(block.shared_var)
                t = coord.z[block.shared][var.offset : var.offset + var.size]
            else:
                tt = None if name in self._released else self._targets.get(block.key)
                t = np.zeros(size) if tt is None or tt.shape != (size,) else tt
            d[block.local] = t - u
        return np.asarray(d - o.e, dtype=np.float64)

    def _node_centres(self, member: int) -> np.ndarray:
        parts = [self._centres_of(name) for name in self.assignment.get(member, ())]
        return np.concatenate(parts) if parts else np.zeros(0)

    def snapshot_for(self, member: int) -> dict[str, np.ndarray]:
        return {f"d:{member}": self._node_centres(member)}

    # -- rounds ----------------------------------------------------------------------------------
    def _broadcast(self) -> BroadcastState:
        coord = self.coordinator
        z: dict[str, np.ndarray] = {f"z:{k}": v.copy() for k, v in coord.z.items()}
        active = set(self.active)
        for member, names in sorted(self.assignment.items()):
            if names and all(n in active for n in names):
                z[f"d:{member}"] = self._node_centres(member)
        if coord.last is not None:
            for name, query in sorted(coord.last.queries.items()):
                z.update(query_to_entries(name, query))
        return BroadcastState(z, coord.rho)

    def initial(self) -> BroadcastState:
        return self._broadcast()

    def _finish(self, status: str, message: str, objective: float | None) -> None:
        self.done, self.status, self.message, self.objective = True, status, message, objective

    def update(self, inp: RoundInput) -> BroadcastState:
        if self.done:
            return self._broadcast()
        ready = [m for m in inp.members if m in inp.latest]
        present = {name for m in ready for name in self.assignment.get(m, ())}
        statuses: dict[str, tuple[int, int]] = {}
        for m in ready:
            c = inp.latest[m]
            for name in self.assignment.get(m, ()):
                code = int(c.residuals.get(f"status:{name}", 3.0))
                x = c.arrays.get(f"x:{name}")
                n = self._rows[name].obj.n
                if code == 0 and (x is None or np.asarray(x).size != n):
                    # code 0 with a missing or mis-sized x: a broken node, not a solver verdict
                    self._finish("local_solver_failed", f"object `{name}` (node {m}): sent no usable x", None)
                    return self._broadcast()
                statuses[name] = (code, m)
                if x is not None and np.asarray(x).size == n:
                    self.x[name] = np.array(x, dtype=np.float64).reshape(-1)
                self.f[name] = float(c.residuals.get(f"f:{name}", float("nan")))
                self.g[name] = float(c.residuals.get(f"g:{name}", 0.0))
                self.inaccurate[name] = int(c.residuals.get(f"inacc:{name}", 0.0))
                if c.residuals.get(f"ubd:{name}", 0.0) > 0.0:
                    self.unbounded.add(name)
                self.answers[name] = answer_from_residuals(c.residuals, c.arrays, name, n)
        objects = tuple(o.name for o in self.plan.objects if o.name in present)
        self._ensure(objects)
        if not objects:
            return self._broadcast()
        contributions: dict[str, Contribution] = {}
        for o in self.coordinator.layout.objects:
            name = o.obj.name
            code, member = statuses.get(name, (0, 0))
            status = {0: "ok", 1: "infeasible", 2: "unbounded"}.get(code, "failed")
            x = self.x.get(name, np.zeros(o.obj.n))
            contributions[name] = Contribution(
                name,
                o.M @ x + o.e,
                self.f[name],
                status=status,
                message="" if code == 0 else f"object `{name}` (node {member}): local solve reported `{_CODE_STATUS.get(code, 'local_solver_failed')}`",
                grad_scale=self.g.get(name, 0.0),
                x=x,
                answer=self.answers.get(name),
                unbounded=unbounded_note(name) if name in self.unbounded else "",
            )
        bc = self.coordinator.update(contributions)
        if bc.status is not None:
            self._finish(bc.status, bc.message, None)
            return self._broadcast()
        row = {
            "iteration": float(self.coordinator.iteration),
            "r_prim": bc.r_prim,
            "r_dual": bc.r_dual,
            "rho": bc.rho,
            "objective": bc.objective,
        }
        self.history.append(row)
        if self.progress is not None:
            self.progress(dict(row))
        if bc.converged:
            self._finish("optimal", "", bc.objective)
        elif self.coordinator.iteration >= self.opts.max_iter:
            self._finish("max_iterations", self.coordinator.no_convergence_message(self.opts.max_iter), bc.objective)
        return self._broadcast()

    def stalled(self, message: str) -> None:
        """The driver saw no round close for too long (e.g. every member crashed)."""
        last = self.coordinator.last
        self._finish("max_iterations", message, None if last is None else last.objective)

    # -- result -----------------------------------------------------------------------------------
    def result(self, solve_time_s: float) -> SolveResult:
        coord = self.coordinator
        plan = self.plan
        objects: dict[str, dict[str, np.ndarray]] = {}
        for name in self.active:
            obj = plan.object(name)
            x = self.x.get(name, np.zeros(obj.n))
            objects[name] = {v.name: x[v.offset : v.offset + v.size].reshape(v.shape).copy() for v in obj.vars}
        names = set(plan.colimit.shared) if plan.colimit is not None else {b.name for b in plan.shared}
        shared: dict[str, dict[str, np.ndarray]] = {}
        for blk in plan.shared:
            if blk.name in names:
                z = coord.z[blk.name]
                shared[blk.name] = {v.name: z[v.offset : v.offset + v.size].reshape(v.shape).copy() for v in blk.vars}
        last = coord.last
        failed = self.status in ("infeasible", "unbounded", "local_solver_failed")
        objective = None if failed else self.objective
        if objective is not None and self.active:
            # Like solver.solve: report the point glued along the consensus links (x[var] := z),
            # which is feasible for them, and the plan objective there.
            z_all = {
                blk.name: {v.name: coord.z[blk.name][v.offset : v.offset + v.size].reshape(v.shape) for v in blk.vars}
                for blk in plan.shared
            }
            objects, objective = glue_solution(restrict_plan(plan, self.active), objects, z_all)
        return SolveResult(
            status=self.status,
            objective=objective,
            iterations=coord.iteration,
            primal_residual=None if last is None else last.r_prim,
            dual_residual=None if last is None else last.r_dual,
            solve_time_s=solve_time_s,
            objects=objects,
            shared=shared,
            message=self.message,
            history=list(self.history),
            state=coord.state({n: self.x[n] for n in self.active if n in self.x}),
            warnings=inaccurate_warnings(
                self.status,
                {**self.inaccurate, **{n: p.inaccurate for n, p in coord.proxes.items()}},
                coord.iteration,
            ),
        )


# ---------------------------------------------------------------------------------------------
# Transport and node hosting
# ---------------------------------------------------------------------------------------------


class Transport(Protocol):
    """What the driver needs of a transport (``FaultyTransport`` is one)."""

    def send(self, src: int, dst: int, data: bytes, now: int) -> None: ...

    def deliver(self, now: int) -> list[tuple[int, int, bytes]]: ...


class NodeHost(Protocol):
    """Where the nodes run: in this process (:class:`LocalNodes`) or as Ray actors."""

    def start(self, node_id: int, now: int) -> list[Send]: ...

    def leave(self, node_id: int, now: int) -> list[Send]: ...

    def crash(self, node_id: int) -> None: ...

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        """Hand each node its frames for this tick, then tick every live node; return their sends."""
        ...

    def close(self) -> None: ...


HostFactory = Callable[[Mapping[int, NodeSpec], SolveOptions, SyncSettings, Mapping[str, np.ndarray]], NodeHost]


class LocalNodes:
    """Runs each node's :class:`NodeProtocol` + :class:`SolverNode` in this process."""

    def __init__(
        self,
        specs: Mapping[int, NodeSpec],
        options: SolveOptions,
        settings: SyncSettings,
        warm_x: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.specs = dict(specs)
        self.options = options
        self.settings = settings
        self.warm_x = dict(warm_x or {})
        self.nodes: dict[int, NodeProtocol] = {}
        self.apps: dict[int, SolverNode] = {}
        self.crashed: set[int] = set()

    def start(self, node_id: int, now: int) -> list[Send]:
        spec = self.specs[node_id]
        app = SolverNode(node_id, spec.objects, self.options, self.warm_x, spec.analyses)
        node = NodeProtocol(node_id, spec.label, app, self.settings, auth=spec.auth)
        self.apps[node_id], self.nodes[node_id] = app, node
        return node.start(now)

    def leave(self, node_id: int, now: int) -> list[Send]:
        return self.nodes[node_id].leave(now)

    def crash(self, node_id: int) -> None:
        self.crashed.add(node_id)

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        out: list[tuple[int, list[Send]]] = []
        for nid in sorted(self.nodes):
            if nid in self.crashed:
                continue
            node = self.nodes[nid]
            sends: list[Send] = []
            for data in inbox.get(nid, ()):
                sends += node.receive(data, now)
            sends += node.tick(now)
            out.append((nid, sends))
        return out

    def close(self) -> None:
        self.nodes.clear()
        self.apps.clear()


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


@dataclass
class RunTrace:
    """What happened on the wire: protocol counters and membership changes."""

    ticks: int = 0
    rounds: int = 0
    epoch: int = 0
    members: tuple[int, ...] = ()
    crashed: tuple[int, ...] = ()
    joined_late: tuple[int, ...] = ()
    left: tuple[int, ...] = ()
    coordinator_stats: ProtocolStats = field(default_factory=ProtocolStats)


class DistributedSolve:
    """One distributed run: build it, :meth:`run` it, then read :attr:`trace` and :attr:`app`.

    ``faults`` is the transport's fault plan and the crash/join schedule (node id -> coordinator
    round, ids from :func:`node_ids`); ``leave_at`` schedules graceful Leaves the same way.
    ``transport`` replaces the default ``FaultyTransport(faults, seed)`` (the schedule in
    ``faults`` still applies). ``host_factory(specs, options, settings, warm_x)`` replaces the
    in-process nodes (the Ray backend passes one that starts actors); ``assignment`` (node id ->
    object names) replaces :func:`assign_nodes` (``max_nodes``). ``auth`` (a
    :class:`~catopt_dsl.sync.auth.RunAuth`) signs every frame and makes the coordinator refuse
    frames that are forged, replayed, stale, for another plan or tenant, or from removed members
    (counted in ``trace.coordinator_stats.errors``); nodes are then cut so that each speaks for one
    owner. The run is deterministic: same arguments, same frames, same result.
    """

    def __init__(
        self,
        plan: IRPlan,
        options: SolveOptions | None = None,
        *,
        transport: Transport | None = None,
        faults: FaultPlan = FaultPlan(),
        seed: int = 0,
        settings: SyncSettings | None = None,
        warm_start: SolverState | None = None,
        max_nodes: int | None = None,
        leave_at: Mapping[int, int] | None = None,
        progress: ProgressFn | None = None,
        host_factory: HostFactory | None = None,
        assignment: Mapping[int, Sequence[str]] | None = None,
        auth: RunAuth | None = None,
    ) -> None:
        self.plan = plan
        self.options = options or SolveOptions()
        st = settings or SyncSettings()
        if st.spec_hash == ZERO_HASH and plan.spec_hash:
            try:
                st = replace(st, spec_hash=spec_hash_bytes(plan.spec_hash))
            except Exception:  # a hand-built plan without a real hash: keep the zero hash
                pass
        self.settings = st
        self.faults = faults
        self.leave_at = dict(leave_at or {})
        if assignment is None:
            assignment = assign_nodes(plan, max_nodes)
            if auth is not None:
                assignment = auth.split(assignment)
        self.assignment = {int(k): tuple(v) for k, v in assignment.items()}
        self.specs = node_specs(plan, self.assignment)
        self.app = SolverCoordinator(plan, self.options, self.assignment, warm_start, progress)
        coordinator_auth = None
        if auth is not None:
            coordinator_auth, node_auth = auth.bind(self.assignment, reported_objects)
            self.specs = {nid: replace(spec, auth=node_auth.get(nid)) for nid, spec in self.specs.items()}
        self.protocol = CoordinatorProtocol(self.app, st, auth=coordinator_auth)
        self.transport: Transport = transport if transport is not None else FaultyTransport(faults, seed)
        warm_x = dict(warm_start.x) if warm_start is not None else {}
        factory: HostFactory = host_factory if host_factory is not None else LocalNodes
        self.host: NodeHost = factory(self.specs, self.options, st, warm_x)
        self.trace = RunTrace()
        #: rounds without progress before the run gives up (every member crashed, say)
        self.stall_ticks = 4 * st.member_timeout + 20 * st.retransmit_after + 100

    def _send(self, src: int, sends: list[Send], now: int) -> None:
        for dst, data in sends:
            self.transport.send(src, dst, data, now)

    def run(self) -> SolveResult:
        """Run until the solver's stopping test passes (or max_iter, or a stall); return the result."""
        start = time.perf_counter()
        proto, app, host = self.protocol, self.app, self.host
        now = 0
        started: set[int] = set()
        crashed: set[int] = set()
        left: set[int] = set()
        late: set[int] = set()
        proto.start(now)
        try:
            for nid in sorted(self.assignment):
                if nid not in self.faults.join_at:
                    started.add(nid)
                    self._send(nid, host.start(nid, now), now)
            last_round, last_change = proto.round, now
            while not app.done:
                now += 1
                inbox: dict[int, list[bytes]] = {}
                for _src, dst, data in self.transport.deliver(now):
                    if dst == COORDINATOR_ID:
                        self._send(COORDINATOR_ID, proto.receive(data, now), now)
                    elif dst in started and dst not in crashed:
                        inbox.setdefault(dst, []).append(data)
                for nid, sends in host.exchange(inbox, now):
                    self._send(nid, sends, now)
                self._send(COORDINATOR_ID, proto.tick(now), now)
                rnd = proto.round
                for nid in sorted(self.faults.crash_at):
                    if nid in started and nid not in crashed and rnd >= self.faults.crash_at[nid]:
                        crashed.add(nid)  # it stops silently; what it already sent still arrives
                        host.crash(nid)
                for nid in sorted(self.faults.join_at):
                    if nid in self.assignment and nid not in started and rnd >= self.faults.join_at[nid]:
                        started.add(nid)
                        late.add(nid)
                        self._send(nid, host.start(nid, now), now)
                for nid in sorted(self.leave_at):
                    if nid in started and nid not in crashed | left and rnd >= self.leave_at[nid]:
                        left.add(nid)
                        self._send(nid, host.leave(nid, now), now)
                if proto.round != last_round:
                    last_round, last_change = proto.round, now
                elif not app.done and now - last_change > self.stall_ticks:
                    app.stalled(f"stalled: no round closed in {self.stall_ticks} ticks (members {proto.members})")
        finally:
            host.close()
        self.trace = RunTrace(
            ticks=now,
            rounds=proto.round,
            epoch=proto.epoch,
            members=proto.members,
            crashed=tuple(sorted(crashed)),
            joined_late=tuple(sorted(late)),
            left=tuple(sorted(left)),
            coordinator_stats=proto.stats,
        )
        return app.result(time.perf_counter() - start)


def solve_distributed(
    plan: IRPlan,
    options: SolveOptions | None = None,
    *,
    transport: Transport | None = None,
    faults: FaultPlan = FaultPlan(),
    seed: int = 0,
    settings: SyncSettings | None = None,
    warm_start: SolverState | None = None,
    max_nodes: int | None = None,
    leave_at: Mapping[int, int] | None = None,
    progress: ProgressFn | None = None,
    auth: RunAuth | None = None,
) -> SolveResult:
    """ADMM with every contribution and broadcast sent as frames through the delta-sync protocol.

    Defaults: a perfect in-process transport, synchronous protocol settings, one node per object.
    ``faults`` injects drops/duplicates/reordering/delays/corruption and crashes or late joins
    (node ids from :func:`node_ids`); the result is the optimum of the plan as it stands after
    the membership changes (:class:`DistributedSolve` for the wire trace). ``auth`` signs and
    checks every frame (see :class:`DistributedSolve`).
    """
    run = DistributedSolve(
        plan,
        options,
        transport=transport,
        faults=faults,
        seed=seed,
        settings=settings,
        warm_start=warm_start,
        max_nodes=max_nodes,
        leave_at=leave_at,
        progress=progress,
        auth=auth,
    )
    return run.run()
