"""The solver's protocol apps: ADMM x-updates behind a node, the ADMM coordinator behind the coordinator.

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
  ``g:<object>`` (the objective's scale for rho adaptation, ``LocalReport.grad_scale``) and
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
timeout, a Leave, a late Join, a restart) it is rebuilt, warm-started from the previous one's
:class:`~catopt_dsl.solver.result.SolverState` (keyed by names, so it survives the change):
the consensus means are then taken over the current members only (re-weighted z-update), a
removed member's coupling terms disappear from the sharing projection and its duals are
forgotten (its share is released), and a new member starts from the current z with zero duals
(a restarted one also gets its last x, to warm-start its local solver). A member that was
admitted but has not answered yet is left out of the z-update until its first contribution
arrives.

**Required membership.** The run was asked to solve the whole plan: it ends ``optimal`` only if
every object is a member when the stopping test passes. A missing object (never joined, dropped,
left) has a window to come (back): ``join_timeout`` ticks from the start, ``rejoin_timeout`` ticks
from its removal (a Leave closes the window at once); meanwhile the run goes on with the
remaining plan and does not end even if that converges. Once a window closes the run can only
end ``member_lost``: at once when fewer than ``min_members`` objects could still take part, else
when the remaining plan converges (``RunReport.remaining_status`` says what the remaining plan
reached; the reported point is *its* solution) or reaches ``max_iter``. A local infeasibility
and a local solver failure keep their status (they hold for the whole plan too).

With the default :class:`~catopt_dsl.sync.protocol.SyncSettings` (quorum 1, staleness 0) every
round uses every member's answer to that round's broadcast: the iterates are those of
``solver.solve`` whatever the transport drops, duplicates or reorders. With ``quorum < 1``,
``max_staleness > 0`` or a ``round_timeout`` a round uses each member's newest contribution
(asynchronous ADMM, Zhang & Kwok 2014), and the run is made stable by construction: no
over-relaxation (``alpha`` forced to 1), a fixed rho (residuals that mix stale contributions
misguide the adaptation), duals updated only for the contributions new in the round (a stale
contribution is reused in the z-update, never integrated twice), and the stopping test must keep
passing until every member has answered a broadcast sent after it first passed (at most
``max_staleness + 1`` rounds). The result's ``warnings`` say which options were forced.

Certificates of infeasibility and unboundedness travel as payload entries (above), so a
distributed run reaches the same status as ``solver.solve`` at the same iteration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from catopt_dsl.ir.analysis import ObjectAnalysis, analyze_ir
from catopt_dsl.ir.model import IRObject, IRPlan
from catopt_dsl.ir.transform import restrict_plan
from catopt_dsl.solver.certificate import CertificateAnswer, CertificateQuery
from catopt_dsl.solver.coordinator import Coordinator
from catopt_dsl.solver.glue import glue_solution
from catopt_dsl.solver.layout import build_layout
from catopt_dsl.solver.local import Accuracy
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState, heuristic_message, inaccurate_warnings
from catopt_dsl.solver.worker import FastBatch, LocalReport, make_workers, unbounded_note
from catopt_dsl.sync.messages import Delta, Message
from catopt_dsl.sync.protocol import (
    BroadcastState,
    BroadcastView,
    FrameAuth,
    NodeOutput,
    RoundInput,
    SyncSettings,
)

log = logging.getLogger("catopt_dsl.sync")

__all__ = [
    "STATUS_CODES",
    "NodeSpec",
    "SolverCoordinator",
    "SolverNode",
    "answer_from_residuals",
    "answer_to_residuals",
    "node_specs",
    "query_from_entries",
    "query_to_entries",
    "reported_objects",
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
        # one batch per structure among this node's objects (a family slice solves as one)
        self.workers = make_workers(
            [(o, M, e, a) for (o, M, e), a in zip(objects, found)],
            fast_path=options.fast_path,
            accuracy=Accuracy(options.eps_abs, options.eps_rel),
        )
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
        for w in self.workers:  # a restarted node: its last x warm-starts the local solver
            x = state.get(f"w:{w.name}")
            if x is not None and np.asarray(x).size == w.n and bool(np.isfinite(x).all()):
                w.set_x(np.asarray(x, dtype=np.float64).reshape(-1))

    def _refuse_view(self) -> NodeOutput:
        """A broadcast with a non-finite rho or centre is never handed to a local solver (CVXPY
        would raise on it): every object reports failure, flagged ``nf``, with its last x."""
        arrays = {f"x:{w.name}": np.asarray(w.x, dtype=np.float64).copy() for w in self.workers}
        residuals: dict[str, float] = {}
        for w in self.workers:
            residuals.update({f"f:{w.name}": float("nan"), f"g:{w.name}": 0.0,
                              f"status:{w.name}": float(STATUS_CODES["failed"]), f"nf:{w.name}": 1.0})
        self.steps += 1
        return NodeOutput(arrays, residuals)

    def step(self, view: BroadcastView) -> NodeOutput:
        self._take(view.z)
        rho = float(view.rho)
        if not np.isfinite(rho) or not all(bool(np.isfinite(c).all()) for c in self.centres.values()):
            return self._refuse_view()
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


class SolverCoordinator:
    """``CoordinatorApp`` around the solver's :class:`Coordinator` for the current members."""

    def __init__(
        self,
        plan: IRPlan,
        options: SolveOptions,
        assignment: Mapping[int, Sequence[str]],
        warm_start: SolverState | None = None,
        progress: ProgressFn | None = None,
        *,
        settings: SyncSettings | None = None,
        min_members: int = 1,
        start_iteration: int = 0,
        after_round: Callable[[SolverCoordinator], None] | None = None,
    ) -> None:
        """``settings``: the protocol settings (membership windows; asynchronous mode when
        ``settings.asynchronous``); ``min_members``: the fewest objects the run goes on with once
        a missing object's window closed (module docstring); ``start_iteration``: the iteration a
        resumed run continues from (``warm_start`` holds its state)."""
        self.settings = settings or SyncSettings()
        self.asynchronous = self.settings.asynchronous
        self.forced: list[str] = []
        if self.asynchronous:
            # Stable by construction (module docstring): no over-relaxation of stale contributions.
            if options.alpha != 1.0:
                self.forced.append(f"alpha {options.alpha:g} -> 1 (over-relaxing a stale contribution diverges)")
                options = replace(options, alpha=1.0)
            if options.adaptive_rho:
                self.forced.append("a fixed rho (residuals mixing stale contributions misguide the adaptation)")
                options = replace(options, adaptive_rho=False)
        self.plan = plan
        self.opts = options
        self.assignment = {int(k): tuple(v) for k, v in assignment.items()}
        self.progress = progress
        self.required: tuple[str, ...] = tuple(o.name for o in plan.objects)
        if not 1 <= min_members <= max(1, len(self.required)):
            raise ValueError(f"min_members must be between 1 and the plan's {len(self.required)} objects")
        self.min_members = int(min_members)
        self.start_iteration = int(start_iteration)
        #: called after every round that ran an iteration (checkpoints hook in here)
        self.after_round = after_round
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
        #: rho's curvature secant per row block (a resumed run's first rho decision needs it)
        self._secant: dict[str, tuple[np.ndarray, np.ndarray]] = {} if warm_start is None else dict(warm_start.secant)
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
        #: with status member_lost: what the remaining plan reached
        self.remaining_status: str | None = None
        #: required objects not in the plan now -> (tick it went missing, why)
        self.missing: dict[str, tuple[int, str]] = dict.fromkeys(self.required, (0, "not joined"))
        self._now = 0
        self._pass_since: int | None = None  # round since which the stopping test passes (asynchronous)
        self._last_x: dict[str, np.ndarray] = {}  # every object's newest x, kept across removals
        if warm_start is not None:
            self._last_x = {k: np.asarray(v, dtype=np.float64).copy() for k, v in warm_start.x.items()}

    # -- membership ----------------------------------------------------------------------------
    def _memory_state(self) -> SolverState:
        rho = self._rho
        return SolverState(
            rho=rho,
            z={k: v.copy() for k, v in self._z.items()},
            duals={k: v / rho for k, v in self._y.items()},
            targets={k: v.copy() for k, v in self._targets.items()},
            secant=dict(self._secant),
        )

    def _make(self, objects: tuple[str, ...], continues: Coordinator | None = None) -> Coordinator:
        layout = build_layout(restrict_plan(self.plan, objects))
        # A resumed run keeps its iteration count and rho cadence (the state is its own, not a
        # previous solve's).
        return Coordinator(layout, self.opts, self._memory_state(), continues=continues, resumed_at=self.start_iteration)

    def _remember(self) -> None:
        st = self.coordinator.state({})
        self._rho = float(st.rho)
        self._z.update({k: v.copy() for k, v in st.z.items()})
        self._y.update({k: st.rho * v for k, v in st.duals.items()})
        self._targets.update({k: v.copy() for k, v in st.targets.items()})
        self._secant.update(st.secant)
        for name in self._released:
            for block in self._rows[name].blocks:
                self._y.pop(block.key, None)
                self._targets.pop(block.key, None)
                self._secant.pop(block.key, None)
        self._released.clear()

    def checkpoint_state(self) -> SolverState:
        """Everything needed to go on from here (``checkpoint.py``): the current coordinator's state
        merged over the memory of absent members, with every object's newest x. Reads only."""
        st = self.coordinator.state({})
        rho = float(st.rho)
        y = dict(self._y)
        targets = dict(self._targets)
        y.update({k: rho * v for k, v in st.duals.items()})
        targets.update(st.targets)
        secant = {**self._secant, **st.secant}
        for name in self._released:
            for block in self._rows[name].blocks:
                y.pop(block.key, None)
                targets.pop(block.key, None)
                secant.pop(block.key, None)
        return SolverState(
            rho=rho,
            x={k: v.copy() for k, v in self._last_x.items()},
            z={**{k: v.copy() for k, v in self._z.items()}, **{k: v.copy() for k, v in st.z.items()}},
            duals={k: v / rho for k, v in y.items()},
            targets={k: v.copy() for k, v in targets.items()},
            secant=secant,
        )

    def _ensure(self, objects: tuple[str, ...]) -> None:
        if objects == self.active:
            return
        old = self.coordinator
        self._remember()
        self.coordinator = self._make(objects, continues=old)
        self.active = objects
        self.rebuilds.append((old.iteration, objects))

    def member_joined(self, member: int, name: str) -> None:
        self._released.difference_update(self.assignment.get(member, ()))

    def member_removed(self, member: int, reason: str, now: int) -> None:
        """Start the object's window to come back (``left``: none; ``replaced``: a restart that is
        already rejoining)."""
        for name in self.assignment.get(member, ()):
            if name not in self.missing:
                self.missing[name] = (now, reason)

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
            return coord.centres_of(name)
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
        """The centres to start from, and (warm state for a restart) each object's last x."""
        out = {f"d:{member}": self._node_centres(member)}
        for name in self.assignment.get(member, ()):
            x = self._last_x.get(name)
            if x is not None:
                out[f"w:{name}"] = x.copy()
        return out

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
        if status == "optimal":
            heuristic = [
                o.name for o in self.plan.objects if o.external is not None and not o.external.convex and o.name in self.active
            ]
            if heuristic:  # converged on a loss no one vouches is convex: not a proven optimum
                status, message = "stationary", heuristic_message(heuristic)
        self.done, self.status, self.message, self.objective = True, status, message, objective

    # -- membership policy ---------------------------------------------------------------------------
    def _window_open(self, name: str) -> bool:
        since, why = self.missing[name]
        if why == "left":
            return False  # a Leave is final
        limit = self.settings.join_ticks if why == "not joined" else self.settings.rejoin_ticks
        return self._now - since < limit

    def _could_take_part(self) -> int:
        """Objects that are members, or missing with their window still open."""
        return sum(1 for n in self.required if n not in self.missing or self._window_open(n))

    def _describe_missing(self) -> str:
        groups: dict[str, list[str]] = {}
        for name in self.required:
            if name in self.missing:
                since, why = self.missing[name]
                what = "never joined" if why == "not joined" else f"{why} at tick {since}"
                groups.setdefault(what, []).append(name)
        parts = []
        for what, names in groups.items():
            shown = ", ".join(f"`{n}`" for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            parts.append(f"{shown} ({what})")
        return "; ".join(parts)

    def _lose(self, remaining: str, detail: str, objective: float | None) -> None:
        """End ``member_lost``: the plan solved is not the plan asked for."""
        self.remaining_status = remaining
        what = {
            "optimal": "converged: the reported point is the optimum of the plan WITHOUT them, not of the plan asked for",
            "max_iterations": "did not converge",
            "stalled": "stopped: no round closed",
            "below_min_members": f"was not solved: fewer than --min-members {self.min_members} objects could take part",
        }.get(remaining, f"ended `{remaining}`")
        message = f"required member(s) missing from the plan: {self._describe_missing()}; the remaining plan {what}"
        if detail:
            message += f" ({detail})"
        log.info(message, extra={"event": "member_lost", "remaining_status": remaining,
                                    "lost": sorted(self.missing), "tick": self._now})
        self._finish("member_lost", message, objective)

    def _verdict(self, status: str, message: str, local_infeasible: bool) -> None:
        # A local failure, and a local infeasibility, hold for the whole plan; a certificate about
        # the remaining plan does not.
        if self.missing and status != "local_solver_failed" and not (status == "infeasible" and local_infeasible):
            self._lose(status, message, None)
        else:
            self._finish(status, message, None)

    def update(self, inp: RoundInput) -> BroadcastState:
        if self.done:
            return self._broadcast()
        self._now = inp.now
        ready = [m for m in inp.members if m in inp.latest]
        fresh_members = {m for m in ready if inp.new.get(m)}
        present = {name for m in ready for name in self.assignment.get(m, ())}
        statuses: dict[str, tuple[int, int]] = {}
        refused_view: list[str] = []
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
                if c.residuals.get(f"nf:{name}", 0.0) > 0.0:
                    refused_view.append(f"`{name}` (node {m})")
                statuses[name] = (code, m)
                if x is not None and np.asarray(x).size == n:
                    self.x[name] = np.array(x, dtype=np.float64).reshape(-1)
                    if bool(np.isfinite(self.x[name]).all()):
                        self._last_x[name] = self.x[name]
                self.f[name] = float(c.residuals.get(f"f:{name}", float("nan")))
                self.g[name] = float(c.residuals.get(f"g:{name}", 0.0))
                self.inaccurate[name] = int(c.residuals.get(f"inacc:{name}", 0.0))
                if c.residuals.get(f"ubd:{name}", 0.0) > 0.0:
                    self.unbounded.add(name)
                self.answers[name] = answer_from_residuals(c.residuals, c.arrays, name, n)
        if refused_view:
            self._finish("local_solver_failed", f"object(s) {', '.join(refused_view)}: the broadcast held a non-finite "
                         "centre or rho (the iterates diverged); no local solve was attempted", None)
            return self._broadcast()
        objects = tuple(o.name for o in self.plan.objects if o.name in present)
        for name in objects:
            self.missing.pop(name, None)
        if self.missing and self._could_take_part() < self.min_members:
            self._lose("below_min_members", "", None)
            return self._broadcast()
        self._ensure(objects)
        if not objects:
            return self._broadcast()
        contributions: dict[str, LocalReport] = {}
        for o in self.coordinator.layout.objects:
            name = o.obj.name
            code, member = statuses.get(name, (0, 0))
            status = {0: "ok", 1: "infeasible", 2: "unbounded"}.get(code, "failed")
            x = self.x.get(name, np.zeros(o.obj.n))
            contributions[name] = LocalReport(
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
        fresh = None
        if self.asynchronous:
            fresh = {name for m in fresh_members for name in self.assignment.get(m, ())}
        bc = self.coordinator.update(contributions, fresh)
        if bc.status is not None:
            self._verdict(bc.status, bc.message, any(code == 1 for code, _m in statuses.values()))
            return self._broadcast()
        diverged = sorted(n for n, d in bc.centres.items() if not bool(np.isfinite(d).all()))
        diverged += sorted(f"shared block {k}" for k, z in self.coordinator.z.items() if not bool(np.isfinite(z).all()))
        if diverged or not np.isfinite(bc.rho):
            self._finish("local_solver_failed", f"the iterates diverged at iteration {bc.iteration}: non-finite values for "
                         f"{', '.join(diverged) or 'rho'}; the solve stopped before sending them", None)
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
        if self.after_round is not None:
            self.after_round(self)
        converged = bc.converged
        if self.asynchronous:
            # A stale contribution can make one round look converged: the test must keep passing
            # until every member has answered a broadcast sent after it first passed (at most
            # tau + 1 rounds: no contribution used is older than tau).
            if not converged:
                self._pass_since = None
            elif self._pass_since is None:
                self._pass_since = inp.round
            since = self._pass_since
            converged = since is not None and all(
                m in inp.latest and inp.latest[m].round > since for m in inp.members
            )
        if converged:
            if not self.missing:
                self._finish("optimal", "", bc.objective)
            elif not any(self._window_open(n) for n in self.missing):
                self._lose("optimal", "", bc.objective)
            # else: a missing member may still come back; the run goes on
        elif self.coordinator.iteration >= self.opts.max_iter:
            message = self.coordinator.no_convergence_message(self.opts.max_iter)
            if self.missing:
                self._lose("max_iterations", message, bc.objective)
            else:
                self._finish("max_iterations", message, bc.objective)
        return self._broadcast()

    def stalled(self, message: str) -> None:
        """The driver saw no round close for too long (e.g. every member crashed)."""
        last = self.coordinator.last
        objective = None if last is None else last.objective
        if self.missing:
            self._lose("stalled", message, None)
        else:
            self._finish("max_iterations", message, objective)

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
        failed = self.status in ("infeasible", "unbounded", "local_solver_failed") or (
            self.status == "member_lost" and self.remaining_status not in ("optimal", "max_iterations")
        )
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
            prices=coord.prices() if self.status == "optimal" else {},
            warnings=[
                *(f"asynchronous mode (quorum < 1 or staleness > 0) forced {what}" for what in self.forced),
                *inaccurate_warnings(
                    self.status,
                    {**self.inaccurate, **{n: p.inaccurate for n, p in coord.proxes.items()}},
                    coord.iteration,
                ),
            ],
        )
