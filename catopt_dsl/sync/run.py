"""The reference ADMM, run distributed: every contribution and broadcast travels as protocol frames.

:func:`solve_distributed` runs the iteration of :func:`catopt_dsl.solver.solve` with the
workers behind :class:`~catopt_dsl.sync.protocol.NodeProtocol` endpoints and the coordinator
behind a :class:`~catopt_dsl.sync.protocol.CoordinatorProtocol`: the apps are in ``apps.py``
(the payloads they exchange are documented there), the event loop in ``driver.py`` (the same
loop the protocol's fault tests use), node placement here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.ir.transform import restrict_plan
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState
from catopt_dsl.sync.apps import (
    STATUS_CODES,
    NodeSpec,
    ProgressFn,
    SolverCoordinator,
    SolverNode,
    node_specs,
    reported_objects,
)
from catopt_dsl.sync.checkpoint import Checkpoint, write_checkpoint
from catopt_dsl.sync.driver import Driver, LocalNodes, NodeHost, RunTrace, Transport
from catopt_dsl.sync.frame import ZERO_HASH, spec_hash_bytes
from catopt_dsl.sync.protocol import (
    CoordinatorProtocol,
    FrameAuth,
    NodeApp,
    SyncSettings,
)
from catopt_dsl.sync.report import RunReport
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

if TYPE_CHECKING:  # the key-holding layer is only imported by callers that authenticate
    from catopt_dsl.sync.auth import RunAuth

__all__ = [
    "DEFAULT_MAX_NODES",
    "STATUS_CODES",
    "DistributedSolve",
    "HostFactory",
    "NodeHost",
    "NodeSpec",
    "RunReport",
    "RunTrace",
    "SolverCoordinator",
    "SolverNode",
    "Transport",
    "assign_nodes",
    "local_solver_nodes",
    "node_ids",
    "node_specs",
    "restrict_plan",
    "solve_distributed",
]

#: ``host_factory(specs, options, settings, warm_x)``: where the nodes of a run live
HostFactory = Callable[[Mapping[int, NodeSpec], SolveOptions, SyncSettings, Mapping[str, np.ndarray]], NodeHost]


#: node count above which objects are batched when no ``max_nodes`` is given
DEFAULT_MAX_NODES = 32

log = logging.getLogger("catopt_dsl.sync")


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


def local_solver_nodes(
    specs: Mapping[int, NodeSpec],
    options: SolveOptions,
    settings: SyncSettings,
    warm_x: Mapping[str, np.ndarray] | None = None,
) -> LocalNodes:
    """The default :data:`HostFactory`: every node's :class:`SolverNode` in this process."""
    warm = dict(warm_x or {})

    def make(node_id: int) -> tuple[NodeApp, str, FrameAuth | None]:
        spec = specs[node_id]
        return SolverNode(node_id, spec.objects, options, warm, spec.analyses), spec.label, spec.auth

    return LocalNodes(make, settings)


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

    Membership: the run is asked to solve the whole plan and ends ``optimal`` only with every
    object a member; round 0 waits for every node (``settings.join_timeout`` ticks). ``min_members``
    is the fewest objects it goes on with once a missing object's window to (re)join closed (see
    :mod:`catopt_dsl.sync.apps`); below it the run ends ``member_lost`` at once, otherwise when the
    remaining plan converges. The result's ``run`` (a :class:`RunReport`) holds the final
    membership, the epoch, the protocol counters and per-round metrics.

    Checkpoints (:mod:`catopt_dsl.sync.checkpoint`): with ``checkpoint`` a file the coordinator
    state is written to atomically every ``checkpoint_every`` iterations; ``resume`` (a
    :class:`Checkpoint` of this plan) continues a run from one: its state is the warm start, its
    iteration count goes on, and its epochs and incarnations fence the interrupted run's processes.
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
        min_members: int = 1,
        checkpoint: Path | None = None,
        checkpoint_every: int = 10,
        resume: Checkpoint | None = None,
    ) -> None:
        self.plan = plan
        self.options = options or SolveOptions()
        if auth is not None or any(o.owner is not None for o in plan.objects):
            from catopt_dsl.sync.auth import require_plan_auth

            require_plan_auth(plan, auth)  # a plan with owners always runs signed
        self.auth = auth
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be >= 1")
        self.checkpoint_path = None if checkpoint is None else Path(checkpoint)
        self.checkpoint_every = int(checkpoint_every)
        self.checkpoints_written = 0
        self.checkpoint_s = 0.0  # wall-clock seconds spent writing checkpoints
        if resume is not None:
            resume.check_plan(plan.spec_hash)
            warm_start = resume.state
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
        self.app = SolverCoordinator(
            plan,
            self.options,
            self.assignment,
            warm_start,
            progress,
            settings=st,
            min_members=min_members,
            start_iteration=0 if resume is None else resume.iteration,
            after_round=self._after_round if self.checkpoint_path is not None else None,
        )
        coordinator_auth = None
        if auth is not None:
            coordinator_auth, node_auth = auth.bind(self.assignment, reported_objects)
            self.specs = {nid: replace(spec, auth=node_auth.get(nid)) for nid, spec in self.specs.items()}
        self.protocol = CoordinatorProtocol(self.app, st, auth=coordinator_auth, expected=tuple(self.assignment))
        if resume is not None:
            self.protocol.restore(resume.epoch, resume.seq, resume.incarnations)
        self.transport: Transport = transport if transport is not None else FaultyTransport(faults, seed)
        warm_x = dict(warm_start.x) if warm_start is not None else {}
        factory: HostFactory = host_factory if host_factory is not None else local_solver_nodes
        self.host: NodeHost = factory(self.specs, self.options, st, warm_x)
        self.trace = RunTrace()
        #: rounds without progress before the run gives up (every member crashed, say)
        self.stall_ticks = 4 * st.member_timeout + 20 * st.retransmit_after + 100 + st.join_ticks
        #: wall-clock seconds of start-up phases (node hosts that have them, e.g. Ray, add theirs)
        self.startup_s: dict[str, float] = {}

    def checkpoint(self) -> Checkpoint:
        """The coordinator's state now, as a :class:`Checkpoint`."""
        app, proto = self.app, self.protocol
        return Checkpoint(
            spec_hash=self.plan.spec_hash,
            plan=self.plan.name,
            iteration=app.coordinator.iteration,
            state=app.checkpoint_state(),
            epoch=proto.epoch,
            seq=proto.seq,
            incarnations=proto.incarnations,
            missing={name: why for name, (_since, why) in sorted(app.missing.items())},
        )

    def _after_round(self, app: SolverCoordinator) -> None:
        if self.checkpoint_path is None or app.coordinator.iteration % self.checkpoint_every != 0:
            return
        t0 = time.perf_counter()
        cp = self.checkpoint()
        if not all(bool(np.isfinite(v).all()) for d in (cp.state.x, cp.state.z, cp.state.duals) for v in d.values()):
            log.warning("checkpoint skipped at iteration %d: the state holds non-finite values", cp.iteration,
                        extra={"event": "checkpoint_skipped", "iteration": cp.iteration})
            return
        write_checkpoint(self.checkpoint_path, cp)
        self.checkpoints_written += 1
        self.checkpoint_s += time.perf_counter() - t0
        log.debug("checkpoint written at iteration %d", cp.iteration,
                  extra={"event": "checkpoint", "iteration": cp.iteration, "path": str(self.checkpoint_path)})

    def report(self) -> RunReport:
        """The run's membership, counters and per-round metrics (after :meth:`run`)."""
        tr, app = self.trace, self.app
        stats = tr.coordinator_stats
        members = tuple(n for n in app.required if n not in app.missing)
        startup = dict(self.startup_s)
        startup.update(getattr(self.host, "startup_s", {}) or {})
        return RunReport(
            mode="asynchronous" if self.settings.asynchronous else "synchronous",
            required=app.required,
            members=members,
            lost=tuple(n for n in app.required if n in app.missing),
            epoch=tr.epoch,
            ticks=tr.ticks,
            dropped=stats.dropped_members,
            fenced=stats.fenced,
            retransmits=stats.retransmits,
            duplicates=stats.duplicates,
            rejected=stats.rejected,
            restarts=stats.restarts,
            incarnations=dict(tr.incarnations),
            remaining_status=app.remaining_status,
            events=tuple((e.now, e.round, e.epoch, e.kind, e.member, e.incarnation) for e in tr.events),
            startup_s=startup,
            rounds=tuple(tr.round_metrics),
            signed=self.auth is not None,
            rejected_by=dict(stats.errors),
        )

    def run(self) -> SolveResult:
        """Run until the solver's stopping test passes (or max_iter, or a stall); return the result."""
        start = time.perf_counter()
        driver = Driver(self.protocol, self.host, tuple(self.assignment), self.transport, self.faults, self.leave_at)
        self.trace = driver.run(lambda: self.app.done, self.stall_ticks, on_stall=self.app.stalled)
        result = self.app.result(time.perf_counter() - start)
        result.run = self.report()
        host_warnings = [w for w in getattr(self.host, "warnings", ()) if w not in result.warnings]
        result.warnings = [*host_warnings, *result.warnings]
        return result


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
    min_members: int = 1,
) -> SolveResult:
    """ADMM with every contribution and broadcast sent as frames through the delta-sync protocol.

    Defaults: a perfect in-process transport, synchronous protocol settings, one node per object.
    ``faults`` injects drops/duplicates/reordering/delays/corruption and crashes or late joins
    (node ids from :func:`node_ids`). The status is ``optimal`` only for the whole plan; a run that
    lost a required member ends ``member_lost`` with the solution of the remaining plan, marked in
    ``result.run`` (see :class:`DistributedSolve`, also for ``min_members`` and the wire trace).
    ``auth`` signs and checks every frame (see :class:`DistributedSolve`).
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
        min_members=min_members,
    )
    return run.run()
