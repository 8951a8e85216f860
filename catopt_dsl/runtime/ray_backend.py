"""The Ray runtime: local problems as Ray actors speaking the delta-sync protocol.

:func:`solve_on_ray` runs :class:`catopt_dsl.sync.run.DistributedSolve` with its nodes hosted by
Ray actors. Each actor holds one node: a batch of objects (one LocalProblem, or several family
members) with their :class:`~catopt_dsl.solver.worker.LocalWorker`\\ s -- CVXPY problems compiled
once, fast-path factorisations cached -- plus the node's
:class:`~catopt_dsl.sync.protocol.NodeProtocol`. The coordinator protocol and the transport run
in the driver; every message crosses the driver/actor boundary as encoded frame bytes, so the
actors see exactly what a networked node would (and the fault-injecting transport works
unchanged). One driver tick calls every actor that has frames (or a retransmission check) due, in
parallel, and waits for all of them.

Ray session: with ``address`` the run joins that cluster (the package is shipped to it as a
``py_modules`` runtime env); with no address and no Ray running in this process a local Ray is
started in a temporary directory (no dashboard, ``num_cpus=2``, worker logs not forwarded, usage
stats off) and shut down afterwards; if Ray is already initialised in this process (a test
fixture, a notebook) it is used as is and left running.

Accelerators: a node whose objects are declared ``on cuda`` / ``on rocm`` asks Ray for a GPU
share (``num_gpus``) and, when the cluster labels its accelerators, the matching
``accelerator_type`` (NVIDIA types for cuda, ``AMD-*`` for rocm). A cluster without a matching
GPU gets the node on CPU with a warning (``warnings.warn`` and one line on stderr) -- the local
problems are CVXPY/numpy either way, so the answer is the same.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState
from catopt_dsl.sync.protocol import NodeProtocol, Send, SyncSettings
from catopt_dsl.sync.run import DistributedSolve, NodeSpec, SolverNode, assign_nodes
from catopt_dsl.sync.transport import FaultPlan

__all__ = [
    "AcceleratorFallbackWarning",
    "DEFAULT_MAX_ACTORS",
    "RayNodes",
    "placement_for",
    "ray_session",
    "solve_on_ray",
]

#: actors per run unless told otherwise (family members are batched to stay under it)
DEFAULT_MAX_ACTORS = 4

_ACCEL = ("cuda", "rocm")


class AcceleratorFallbackWarning(RuntimeWarning):
    """An object asked for an accelerator the Ray cluster does not have; it runs on CPU."""


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


_TOKEN: list[str] = []


def _process_token() -> str:
    if not _TOKEN:
        _TOKEN.append(secrets.token_hex(32))
    return _TOKEN[0]


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int = 2) -> Iterator[Any]:
    """Yield the ``ray`` module with a session up (see the module docstring for which session)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield ray  # someone else's session: use it, leave it running
        return
    if address is not None:
        ray.init(
            address=address,
            log_to_driver=False,
            runtime_env={"py_modules": [str(_package_root())]},
        )
        try:
            yield ray
        finally:
            _POOL.clear()
            _ACTOR_CLASS.clear()
            ray.shutdown()
        return
    # Workers must import this package: put its folder on their path (it may not be installed).
    parent = str(_package_root().parent)
    path = os.pathsep.join(p for p in (parent, os.environ.get("PYTHONPATH", "")) if p)
    # A short path: Ray's unix sockets live under it and must stay under ~107 bytes.
    tmp = tempfile.mkdtemp(prefix="catray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    # Ray >= 2.59 turns on token authentication for local clusters and writes a token to
    # ~/.ray/auth_token. A throwaway local session must leave nothing in the user's home: give it
    # a token file inside its own temporary folder (unless the user configured a token).
    saved_env = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN_PATH",)}
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        token_file = Path(tmp) / "auth_token"
        # One token per process: Ray's client keeps the first token it read, so a second local
        # session in this process with a fresh token would be refused by its own GCS.
        token_file.write_text(_process_token(), encoding="ascii")
        token_file.chmod(0o600)
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_file)
    try:
        ray.init(
            _temp_dir=tmp,
            include_dashboard=False,
            num_cpus=num_cpus,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}},
        )
        yield ray
    finally:
        _POOL.clear()
        _ACTOR_CLASS.clear()
        if ray.is_initialized():
            ray.shutdown()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(tmp, ignore_errors=True)


def _vendor_types(resources: Mapping[str, float], platform: str) -> list[str]:
    types = sorted(k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:"))
    if platform == "rocm":
        return [t for t in types if t.upper().startswith("AMD")]
    return [t for t in types if not t.upper().startswith(("AMD", "INTEL", "TPU"))]


def placement_for(
    platforms: Mapping[str, str | None], resources: Mapping[str, float], gpu_nodes: int = 1
) -> tuple[dict[str, Any], str | None]:
    """Ray actor options for a node whose objects have ``platforms`` (object -> platform).

    Returns ``(options, warning)``: ``{}`` (CPU) for CPU-only nodes; ``num_gpus`` (a share, so
    ``gpu_nodes`` accelerator nodes fit on the cluster's GPUs) and, where the cluster labels its
    accelerators, ``accelerator_type`` for ``cuda``/``rocm`` nodes; ``{}`` plus a warning text when
    the cluster has no matching GPU (or the batch mixes cuda and rocm objects).
    """
    wanted = sorted({p for p in platforms.values() if p in _ACCEL})
    if not wanted:
        return {}, None
    accel_names = sorted(n for n, p in platforms.items() if p in _ACCEL)
    # A batch can hold hundreds of family members: name a few, count the rest.
    names = ", ".join(accel_names[:5]) + (f" and {len(accel_names) - 5} more" if len(accel_names) > 5 else "")
    if len(wanted) > 1:
        return {}, f"objects {names} mix cuda and rocm in one Ray actor; running it on CPU"
    platform = wanted[0]
    gpus = float(resources.get("GPU", 0.0))
    labelled = any(k.startswith("accelerator_type:") for k in resources)
    types = _vendor_types(resources, platform)
    vendor = "AMD (rocm)" if platform == "rocm" else "NVIDIA (cuda)"
    if gpus <= 0.0 or (labelled and not types):
        return {}, f"object(s) {names} declared `on {platform}` but the Ray cluster has no {vendor} GPU; running on CPU"
    share = min(1.0, gpus / max(1, gpu_nodes))
    opts: dict[str, Any] = {"num_gpus": share}
    if types:
        opts["accelerator_type"] = types[0]
    return opts, None


class _NodeWorker:
    """The actor body: one node's protocol endpoint and its solver app, fed frame bytes.

    ``configure`` (re)loads it with a node, so a pooled actor process -- its imports done, its
    Python warm -- can serve the next run in the same Ray session.
    """

    def __init__(self) -> None:
        self.app: SolverNode | None = None
        self.node: NodeProtocol | None = None

    def configure(
        self, spec: NodeSpec, options: SolveOptions, settings: SyncSettings, warm_x: Mapping[str, np.ndarray]
    ) -> bool:
        self.app = SolverNode(spec.node_id, spec.objects, options, warm_x, spec.analyses)
        self.node = NodeProtocol(spec.node_id, spec.label, self.app, settings, auth=spec.auth)
        return True

    def reset(self) -> bool:
        self.app, self.node = None, None
        return True

    def _endpoint(self) -> NodeProtocol:
        if self.node is None:
            raise RuntimeError("node actor used before configure()")
        return self.node

    def start(self, now: int) -> list[Send]:
        return self._endpoint().start(now)

    def leave(self, now: int) -> list[Send]:
        return self._endpoint().leave(now)

    def exchange(self, frames: list[bytes], now: int) -> list[Send]:
        node = self._endpoint()
        out: list[Send] = []
        for data in frames:
            out += node.receive(data, now)
        out += node.tick(now)
        return out


# Idle actors of the current Ray session, by placement; reused by the next run in that session
# (starting an actor process and importing CVXPY costs seconds, a run often less).
_POOL: dict[str, list[Any]] = {}
_POOL_SESSION: list[str] = [""]
_ACTOR_CLASS: list[Any] = []


def _session_key(ray: Any) -> str:
    ctx = ray.get_runtime_context()
    return f"{ctx.gcs_address}/{ctx.get_node_id()}"


def _pool(ray: Any) -> dict[str, list[Any]]:
    key = _session_key(ray)
    if _POOL_SESSION[0] != key:  # a new session: the old actors died with the old one
        _POOL.clear()
        _ACTOR_CLASS.clear()
        _POOL_SESSION[0] = key
    if not _ACTOR_CLASS:
        _ACTOR_CLASS.append(ray.remote(_NodeWorker))
    return _POOL


def _placement_key(opts: Mapping[str, Any]) -> str:
    return repr(sorted(opts.items()))


class RayNodes:
    """A :class:`~catopt_dsl.sync.run.NodeHost` whose nodes are Ray actors (one per node)."""

    def __init__(
        self,
        specs: Mapping[int, NodeSpec],
        options: SolveOptions,
        settings: SyncSettings,
        warm_x: Mapping[str, np.ndarray],
    ) -> None:
        import ray

        self.ray = ray
        self.settings = settings
        self.crashed: set[int] = set()
        self.started: set[int] = set()
        resources = dict(getattr(ray, "cluster_resources")())  # untyped in ray's stubs
        accel = {nid: {o.name: o.platform for o, _M, _e in spec.objects} for nid, spec in specs.items()}
        gpu_nodes = sum(1 for p in accel.values() if any(v in _ACCEL for v in p.values()))
        pool = _pool(ray)
        actor_cls = _ACTOR_CLASS[0]
        self.placements: dict[int, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.actors: dict[int, Any] = {}
        warm = {k: np.asarray(v, dtype=np.float64) for k, v in warm_x.items()}
        # Create every actor up front: Ray starts them in parallel, and start() waits only on its own.
        for nid in sorted(specs):
            opts, warning = placement_for(accel[nid], resources, gpu_nodes)
            if warning is not None:
                self.warnings.append(warning)
                warnings.warn(warning, AcceleratorFallbackWarning, stacklevel=3)
                print(f"catoptc: warning: {warning}", file=sys.stderr)
            self.placements[nid] = opts
            mine = {o.name: warm[o.name] for o, _M, _e in specs[nid].objects if o.name in warm}
            idle = pool.get(_placement_key(opts))
            actor = idle.pop() if idle else actor_cls.options(**opts).remote()
            # Actor calls run in submission order: start() runs after this configure.
            actor.configure.remote(specs[nid], options, settings, mine)
            self.actors[nid] = actor

    def start(self, node_id: int, now: int) -> list[Send]:
        self.started.add(node_id)
        return list(self.ray.get(self.actors[node_id].start.remote(now)))

    def leave(self, node_id: int, now: int) -> list[Send]:
        return list(self.ray.get(self.actors[node_id].leave.remote(now)))

    def crash(self, node_id: int) -> None:
        self.crashed.add(node_id)
        self.ray.kill(self.actors[node_id])

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        # Only actors with frames, plus every actor on retransmission-check ticks: a call per actor
        # per tick would cost a Ray round trip for nothing.
        check = now % self.settings.retransmit_after == 0
        due = [n for n in sorted(self.started - self.crashed) if inbox.get(n) or check]
        refs = [self.actors[n].exchange.remote(list(inbox.get(n, ())), now) for n in due]
        results = self.ray.get(refs) if refs else []
        return [(n, list(r)) for n, r in zip(due, results)]

    def close(self) -> None:
        """Return the live actors to the session's pool (reset); crashed ones were killed."""
        pool = _pool(self.ray)
        live = [nid for nid in sorted(self.actors) if nid not in self.crashed]
        for nid in live:
            actor = self.actors[nid]
            try:
                self.ray.get(actor.reset.remote())
            except Exception:  # its process died: do not pool it
                continue
            pool.setdefault(_placement_key(self.placements[nid]), []).append(actor)
        self.actors.clear()


def solve_on_ray(
    plan: IRPlan,
    options: SolveOptions | None = None,
    *,
    address: str | None = None,
    warm_start: SolverState | None = None,
    max_actors: int = DEFAULT_MAX_ACTORS,
    settings: SyncSettings | None = None,
    faults: FaultPlan = FaultPlan(),
    seed: int = 0,
) -> SolveResult:
    """Solve ``plan`` with ADMM whose local problems run as Ray actors (see the module docstring).

    ``max_actors`` caps the actor count (objects are batched in plan order); ``settings``,
    ``faults`` and ``seed`` are those of :func:`catopt_dsl.sync.run.solve_distributed` (the
    transport runs in the driver). Same options => the same iterates as the in-process solver.
    """
    opts = options or SolveOptions()
    assignment = assign_nodes(plan, max_actors)
    with ray_session(address):
        run = DistributedSolve(
            plan,
            opts,
            faults=faults,
            seed=seed,
            settings=settings,
            warm_start=warm_start,
            assignment=assignment,
            host_factory=RayNodes,
        )
        return run.run()
