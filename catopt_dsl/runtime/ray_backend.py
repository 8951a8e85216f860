"""The Ray runtime: local problems as Ray actors speaking the delta-sync protocol.

:func:`solve_on_ray` runs :class:`catopt_dsl.sync.run.DistributedSolve` with its nodes hosted by
Ray actors. Each actor holds one node: a batch of objects (one LocalProblem, or several family
members; :func:`actor_count` says how many actors a plan gets) with their
:class:`~catopt_dsl.solver.worker.LocalWorker`\\ s -- CVXPY problems compiled once, fast-path
factorisations cached -- plus the node's
:class:`~catopt_dsl.sync.protocol.NodeProtocol`. The coordinator protocol and the transport run
in the driver; every message crosses the driver/actor boundary as encoded frame bytes, so the
actors see exactly what a networked node would (and the fault-injecting transport works
unchanged). One driver tick calls every actor that has frames (or a retransmission check) due, in
parallel, and waits for all of them -- never longer than a deadline.

Failures map onto the protocol's crash path (``docs/protocol.md`` §8): an actor whose call raises
(it died: ``ActorDiedError``, a killed process, an exception inside it) or does not answer within
``call_timeout_s`` (it hangs) is reported to the driver as crashed: it goes silent, and the
coordinator drops it after ``member_timeout`` ticks. Actors are created with Ray's
``max_restarts``: a dead actor's process is restarted by Ray (a hung one is killed first), and the
driver starts it again as a new process of its node -- a higher boot stamp, so it rejoins with a
new incarnation and warm state from the coordinator's Snapshot, while whatever the old process
still had in flight is fenced. After ``max_restarts`` replacements a node stays down (the run
then ends ``member_lost`` unless the rest suffices, see ``--min-members``). Start-up waits at most
``start_timeout_s``.

Ray session: with ``address`` the run joins that cluster (the package is shipped to it as a
``py_modules`` runtime env); the address is probed first (a TCP connection and an HTTP/2 greeting,
as Ray's GCS speaks gRPC), so a mistyped address or an unreachable cluster is a
:class:`~catopt_dsl.runtime.backends.ClusterConnectionError` within seconds, as is any error
``ray.init`` raises (a missing auth token, a version mismatch). With no address and no Ray running
in this process a local Ray is started in a temporary directory (no dashboard, ``num_cpus=2``,
worker logs not forwarded, usage stats off; its auth token inside that folder) and shut down
afterwards; a start that fails (Ray's own start-up deadline, under load) is retried once in a
fresh folder. Each folder holds the driver's pid, so folders of drivers that died without
cleaning up (SIGKILL) are removed by the next local start. If Ray is already initialised in this
process (a test fixture, a notebook) it is used as is and left running.

Accelerators: a node whose objects are declared ``on cuda`` / ``on rocm`` asks Ray for a GPU
share (``num_gpus``) and, when the cluster labels its accelerators, the matching
``accelerator_type`` (NVIDIA types for cuda, ``AMD-*`` for rocm). A cluster without a matching
GPU gets the node on CPU with an :class:`AcceleratorFallbackWarning` (``warnings.warn``, once per
event) recorded in the result's ``warnings`` -- the local problems are CVXPY/numpy either way, so
the answer is the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.runtime.backends import ClusterConnectionError
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState
from catopt_dsl.sync.protocol import NodeProtocol, Send, SyncSettings
from catopt_dsl.sync.run import DistributedSolve, NodeSpec, SolverNode, assign_nodes
from catopt_dsl.sync.transport import FaultPlan

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_MAX_ACTORS",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_START_TIMEOUT_S",
    "AcceleratorFallbackWarning",
    "RayNodes",
    "actor_count",
    "clean_stale_sessions",
    "placement_for",
    "probe_address",
    "ray_assignment",
    "ray_session",
    "solve_on_ray",
]

log = logging.getLogger("catopt_dsl.ray")
log.addHandler(logging.NullHandler())

#: actors per run unless told otherwise (family members are batched to stay under it; see
#: :func:`actor_count`)
DEFAULT_MAX_ACTORS = 4
#: seconds one tick waits for its actors' answers before calling the late ones hung
DEFAULT_CALL_TIMEOUT_S = 300.0
#: seconds an actor may take to start (process, imports, compiling its CVXPY problems)
DEFAULT_START_TIMEOUT_S = 300.0
#: replacements per node (Ray's max_restarts) before it stays down
DEFAULT_MAX_RESTARTS = 2
#: seconds the probe of an --address may take
PROBE_TIMEOUT_S = 10.0

_ACCEL = ("cuda", "rocm")
_PREFIX = "catray-"
_PID_FILE = "driver.pid"

PhaseFn = Callable[[str], None]


class AcceleratorFallbackWarning(RuntimeWarning):
    """An object asked for an accelerator the Ray cluster does not have; it runs on CPU."""


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


_TOKEN: list[str] = []


def _process_token() -> str:
    if not _TOKEN:
        _TOKEN.append(secrets.token_hex(32))
    return _TOKEN[0]


# ---------------------------------------------------------------------------------------------
# Addresses and sessions
# ---------------------------------------------------------------------------------------------

_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def probe_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Check that ``address`` (``host:port`` or ``ray://host:port``) answers like a Ray cluster
    (gRPC: an HTTP/2 server greets with a SETTINGS frame). ``auto`` is left to Ray.

    Raises :class:`ClusterConnectionError` with a one-line reason: a malformed address, a name that
    does not resolve, nothing listening, no answer within ``timeout_s``, or a server that is not Ray.
    """
    if address == "auto":
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ClusterConnectionError(f"--address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT")
    host = host.strip("[]")
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s) as sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except socket.gaierror as exc:
        raise ClusterConnectionError(f"--address {address!r}: cannot resolve {host!r} ({exc.strerror})") from None
    except TimeoutError:
        raise ClusterConnectionError(f"--address {address!r}: no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise ClusterConnectionError(f"--address {address!r}: cannot connect ({exc.strerror or exc})") from None
    if len(head) < 9 or head[3] != 0x04:  # frame type 4: SETTINGS
        raise ClusterConnectionError(f"--address {address!r}: the server there does not speak gRPC; is it a Ray head node's GCS port?")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _in_use(folder: Path) -> bool:
    """Whether a live process names ``folder`` on its command line (Ray's daemons do)."""
    needle = str(folder).encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return True  # cannot tell: assume so
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def clean_stale_sessions(base: Path | None = None) -> list[Path]:
    """Remove this user's temporary Ray folders whose driver died without cleaning up (SIGKILL):
    its pid file names a dead process and no live process still uses the folder. Returns them."""
    base = Path(base if base is not None else ("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()))
    removed: list[Path] = []
    try:
        candidates = sorted(base.glob(f"{_PREFIX}*"))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for folder in candidates:
        try:
            if not folder.is_dir() or folder.is_symlink() or (uid is not None and folder.stat().st_uid != uid):
                continue
            pid = int((folder / _PID_FILE).read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            continue  # not ours, or still being set up
        if _pid_alive(pid) or _in_use(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
            log.info("removed the stale Ray folder %s (driver %d is gone)", folder, pid,
                     extra={"event": "stale_ray_folder_removed", "path": str(folder), "pid": pid})
    return removed


def _connect(ray: Any, address: str) -> None:
    probe_address(address)
    try:
        ray.init(address=address, log_to_driver=False, runtime_env={"py_modules": [str(_package_root())]})
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        hint = ""
        if "auth" in reason.lower() or "token" in reason.lower():
            hint = " (the cluster wants an auth token: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
        raise ClusterConnectionError(f"cannot join the Ray cluster at {address}: {type(exc).__name__}: {reason}{hint}") from None


def _start_local(ray: Any, num_cpus: int, own_token: bool, phase: PhaseFn | None) -> Path:
    """Start a local Ray in a fresh temporary folder; retry once (Ray's own start-up deadline is
    30 s, which a loaded machine can miss). Returns the folder."""
    # Workers must import this package: put its folder on their path (it may not be installed).
    parent = str(_package_root().parent)
    path = os.pathsep.join(p for p in (parent, os.environ.get("PYTHONPATH", "")) if p)
    last: BaseException | None = None
    for attempt in (1, 2):
        # A short path: Ray's unix sockets live under it and must stay under ~107 bytes.
        tmp = Path(tempfile.mkdtemp(prefix=_PREFIX, dir="/tmp" if os.path.isdir("/tmp") else None))
        (tmp / _PID_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")
        if own_token:
            # One token per process: Ray's client keeps the first token it read, so a second local
            # session in this process with a fresh token would be refused by its own GCS.
            token_file = tmp / "auth_token"
            token_file.write_text(_process_token(), encoding="ascii")
            token_file.chmod(0o600)
            os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_file)
        try:
            ray.init(
                _temp_dir=str(tmp),
                include_dashboard=False,
                num_cpus=num_cpus,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}},
            )
            return tmp
        except (KeyboardInterrupt, SystemExit):
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except Exception as exc:
            last = exc
            if ray.is_initialized():
                ray.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("local Ray failed to start (attempt %d of 2): %s", attempt, exc,
                        extra={"event": "ray_start_failed", "attempt": attempt})
            if phase is not None and attempt == 1:
                phase(f"local Ray failed to start ({type(exc).__name__}); retrying once")
    raise ClusterConnectionError(f"a local Ray did not start (twice): {type(last).__name__}: {last}")


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int = 2, phase: PhaseFn | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module with a session up (see the module docstring for which session).

    ``phase(text)`` hears the start-up steps (for a progress line)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield ray  # someone else's session: use it, leave it running
        return
    if address is not None:
        if phase is not None:
            phase(f"joining the Ray cluster at {address}")
        _connect(ray, address)
        try:
            yield ray
        finally:
            _POOL.clear()
            _ACTOR_CLASS.clear()
            ray.shutdown()
        return
    clean_stale_sessions()
    # Ray >= 2.59 turns on token authentication for local clusters and writes a token to
    # ~/.ray/auth_token. A throwaway local session must leave nothing in the user's home: give it
    # a token file inside its own temporary folder (unless the user configured a token).
    saved_env = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN_PATH",)}
    own_token = not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH")
    if phase is not None:
        phase(f"starting a local Ray ({num_cpus} CPUs)")
    tmp: Path | None = None
    try:
        tmp = _start_local(ray, num_cpus, own_token, phase)
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
        if tmp is not None:
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


def actor_count(objects: int, cpus: float | None, max_actors: int = DEFAULT_MAX_ACTORS, *, shards: bool) -> int:
    """How many node actors a plan of ``objects`` objects gets on a cluster of ``cpus`` CPUs.

    Distinct LocalProblems (``shards`` false: at least one object is no family member) are failure
    domains of their own -- a tenant, a site with its own owner --: one actor per object up to
    ``max_actors``, then ``max_actors`` batches, so that a killed actor loses as few of them as the
    cap allows. Family members (``shards`` true: every object is a member of a family, the shards
    of one problem) beyond ``max_actors`` are batched into one actor per CPU of the cluster, at
    most ``max_actors``: more actor processes than cores only add a Ray call and a process switch
    per actor to every round, without adding parallelism. ``cpus`` None or 0 (unknown): the cap.
    """
    if max_actors < 1:
        raise ValueError("max_actors must be >= 1")
    if not shards or objects <= max_actors or not cpus or cpus < 1:
        return max_actors
    return max(1, min(max_actors, int(cpus)))


def ray_assignment(
    plan: IRPlan, ray: Any = None, max_actors: int = DEFAULT_MAX_ACTORS
) -> dict[int, tuple[str, ...]]:
    """Node id -> objects, as :func:`solve_on_ray` cuts ``plan`` on the running Ray session
    (``ray``: the module, or None to import it): :func:`actor_count` actors, objects in plan order.
    Without a running session the CPU count is unknown and the cap applies."""
    if ray is None:
        import ray
    cpus = ray.cluster_resources().get("CPU") if ray.is_initialized() else None
    shards = bool(plan.objects) and all(o.family is not None for o in plan.objects)
    return assign_nodes(plan, actor_count(len(plan.objects), cpus, max_actors, shards=shards))


# ---------------------------------------------------------------------------------------------
# Actors
# ---------------------------------------------------------------------------------------------


class _NodeWorker:
    """The actor body: one node's protocol endpoint and its solver app, fed frame bytes.

    ``configure`` (re)loads it with a node, so a pooled actor process -- its imports done, its
    Python warm -- can serve the next run in the same Ray session; ``start`` then begins a new
    process of that node (``boot``: its start stamp).
    """

    def __init__(self) -> None:
        self.app: SolverNode | None = None
        self.node: NodeProtocol | None = None
        self.spec: NodeSpec | None = None
        self.settings: SyncSettings | None = None

    def configure(
        self, spec: NodeSpec, options: SolveOptions, settings: SyncSettings, warm_x: Mapping[str, np.ndarray]
    ) -> bool:
        self.app = SolverNode(spec.node_id, spec.objects, options, warm_x, spec.analyses)
        self.spec, self.settings, self.node = spec, settings, None
        return True

    def launch(
        self,
        spec: NodeSpec,
        options: SolveOptions,
        settings: SyncSettings,
        warm_x: Mapping[str, np.ndarray],
        boot: int,
        now: int,
    ) -> tuple[list[Send], int | None]:
        """``configure`` and ``start`` in one call (a replacement process)."""
        self.configure(spec, options, settings, warm_x)
        return self.start(now, boot)

    def reset(self) -> bool:
        self.app, self.node, self.spec, self.settings = None, None, None, None
        return True

    def pid(self) -> int:
        return os.getpid()

    def hang(self, seconds: float) -> bool:
        """Stop answering (a test of the driver's deadlines): later calls wait behind this one."""
        time.sleep(seconds)
        return True

    def _endpoint(self) -> NodeProtocol:
        if self.node is None:
            raise RuntimeError("node actor used before start()")
        return self.node

    def start(self, now: int, boot: int = 1) -> tuple[list[Send], int | None]:
        """Start the node; returns its frames and the tick its next retransmission is due."""
        if self.app is None or self.spec is None or self.settings is None:
            raise RuntimeError("node actor started before configure()")
        spec = self.spec
        self.node = NodeProtocol(spec.node_id, spec.label, self.app, self.settings, auth=spec.auth, boot=boot)
        sends = self.node.start(now)
        return sends, self.node.next_due()

    def leave(self, now: int) -> tuple[list[Send], int | None]:
        node = self._endpoint()
        return node.leave(now), node.next_due()

    def exchange(self, frames: list[bytes], now: int) -> tuple[list[Send], int | None]:
        """Handle the frames, tick; the sends and the tick the next retransmission is due (so the
        driver need not call this actor before then unless frames arrive for it)."""
        node = self._endpoint()
        out: list[Send] = []
        for data in frames:
            out += node.receive(data, now)
        out += node.tick(now)
        return out, node.next_due()


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


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class RayNodes:
    """A :class:`~catopt_dsl.sync.driver.NodeHost` whose nodes are Ray actors (one per node).

    Every wait has a wall-clock deadline: ``start_timeout_s`` for an actor to start (and for a
    replacement), ``call_timeout_s`` for one tick's calls. A call that raises or misses its deadline
    makes the node *failed* (:meth:`failures`); the driver treats that as a crash and starts the
    node again -- Ray restarts the actor process (``max_restarts``), a hung one after it is killed
    -- until ``max_restarts`` replacements are used up (see the module docstring).
    """

    def __init__(
        self,
        specs: Mapping[int, NodeSpec],
        options: SolveOptions,
        settings: SyncSettings,
        warm_x: Mapping[str, np.ndarray],
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        phase: PhaseFn | None = None,
    ) -> None:
        import ray

        if call_timeout_s <= 0 or start_timeout_s <= 0 or max_restarts < 0:
            raise ValueError("timeouts must be > 0 and max_restarts >= 0")
        self.ray = ray
        self.specs = dict(specs)
        self.options = options
        self.settings = settings
        self.call_timeout_s = float(call_timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self.max_restarts = int(max_restarts)
        self.phase = phase
        self.crashed: set[int] = set()  # killed by the fault plan (crash_at)
        self.down: dict[int, str] = {}  # nodes not answering now, and why
        self.started: set[int] = set()
        self.boots: dict[int, int] = {}
        self.restarts: dict[int, int] = {}
        self._due: dict[int, int | None] = {}  # node -> tick its next retransmission is due
        self._failures: list[tuple[int, str]] = []
        self._unstarted: set[int] = set()  # actors whose configure failed: start() replaces them
        self.startup_s: dict[str, float] = {}
        resources = dict(ray.cluster_resources())  # untyped in ray's stubs
        accel = {nid: {o.name: o.platform for o, _M, _e in spec.objects} for nid, spec in specs.items()}
        gpu_nodes = sum(1 for p in accel.values() if any(v in _ACCEL for v in p.values()))
        pool = _pool(ray)
        self.actor_cls = _ACTOR_CLASS[0]
        self.placements: dict[int, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.actors: dict[int, Any] = {}
        warm = {k: np.asarray(v, dtype=np.float64) for k, v in warm_x.items()}
        self.warm = {nid: {o.name: warm[o.name] for o, _M, _e in specs[nid].objects if o.name in warm} for nid in specs}
        t0 = time.perf_counter()
        if phase is not None:
            phase(f"starting {len(specs)} node actor(s)")
        # Create every actor up front: Ray starts them in parallel.
        configured: dict[int, Any] = {}
        for nid in sorted(specs):
            opts, warning = placement_for(accel[nid], resources, gpu_nodes)
            if warning is not None and warning not in self.warnings:
                self.warnings.append(warning)  # the CLI prints result.warnings: one line per event
                warnings.warn(warning, AcceleratorFallbackWarning, stacklevel=3)
            self.placements[nid] = opts
            idle = pool.get(_placement_key(self._actor_options(nid)))
            actor = idle.pop() if idle else self._new_actor(nid)
            configured[nid] = actor.configure.remote(specs[nid], options, settings, self.warm[nid])
            self.actors[nid] = actor
        self._await_configure(configured)
        self.startup_s["actors"] = time.perf_counter() - t0

    def _actor_options(self, nid: int) -> dict[str, Any]:
        return {**self.placements[nid], "max_restarts": self.max_restarts, "max_task_retries": 0}

    def _new_actor(self, nid: int) -> Any:
        return self.actor_cls.options(**self._actor_options(nid)).remote()

    def _await_configure(self, refs: Mapping[int, Any]) -> None:
        """Wait (at most ``start_timeout_s``) for every actor to load its node."""
        ray = self.ray
        pending = {ref: nid for nid, ref in refs.items()}
        deadline = time.monotonic() + self.start_timeout_s
        ready_count, total = 0, len(pending)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done, _rest = ray.wait(list(pending), num_returns=1, timeout=min(left, 5.0))
            for ref in done:
                nid = pending.pop(ref)
                try:
                    ray.get(ref, timeout=self.start_timeout_s)
                    ready_count += 1
                except Exception as exc:
                    self._unstarted.add(nid)
                    log.warning("node %d: its actor did not start: %s", nid, _why(exc),
                                extra={"event": "actor_start_failed", "node": nid})
            if self.phase is not None and done:
                self.phase(f"node actors ready: {ready_count}/{total}")
        for nid in pending.values():
            self._unstarted.add(nid)  # start() will launch it again (Ray's restart, or a new actor)
            log.warning("node %d: its actor did not start within %g s", nid, self.start_timeout_s,
                        extra={"event": "actor_start_timeout", "node": nid})

    def _fail(self, nid: int, reason: str, kill: bool) -> None:
        if nid in self.down:
            return
        self.down[nid] = reason
        self._failures.append((nid, reason))
        log.warning("node %d failed: %s", nid, reason, extra={"event": "node_failed", "node": nid, "reason": reason})
        if kill:  # a hung actor: kill its process; Ray restarts it while restarts remain
            with contextlib.suppress(Exception):  # already gone
                self.ray.kill(self.actors[nid], no_restart=False)

    # -- NodeHost ----------------------------------------------------------------------------
    def start(self, node_id: int, now: int) -> list[Send]:
        """Start the node's process: the configured actor the first time, a replacement after a
        failure or a crash (Ray's restarted process on the same handle, else a new actor)."""
        ray = self.ray
        first = node_id not in self.started
        self.started.add(node_id)
        boot = self.boots.get(node_id, 0) + 1
        self.boots[node_id] = boot
        if first and node_id not in self._unstarted:
            ref = self.actors[node_id].start.remote(now, boot)
        else:
            if not first:
                self.restarts[node_id] = self.restarts.get(node_id, 0) + 1
            if node_id in self.crashed:  # killed for good by the fault plan
                self.actors[node_id] = self._new_actor(node_id)
                self.crashed.discard(node_id)
            spec = self.specs[node_id]
            launch = self.actors[node_id].launch.options(max_task_retries=3)
            ref = launch.remote(spec, self.options, self.settings, self.warm[node_id], boot, now)
        try:
            sends, self._due[node_id] = ray.get(ref, timeout=self.start_timeout_s)
        except Exception as exc:
            if isinstance(exc, ray.exceptions.RayActorError) and not first:
                # Ray gave up on the process (restarts used up): a brand-new actor, same node
                try:
                    self.actors[node_id] = self._new_actor(node_id)
                    spec = self.specs[node_id]
                    ref = self.actors[node_id].launch.remote(spec, self.options, self.settings, self.warm[node_id], boot, now)
                    sends, self._due[node_id] = ray.get(ref, timeout=self.start_timeout_s)
                except Exception as exc2:
                    self.down.pop(node_id, None)
                    self._fail(node_id, f"replacement did not start: {_why(exc2)}", kill=True)
                    return []
            else:
                self.down.pop(node_id, None)
                self._fail(node_id, f"did not start: {_why(exc)}", kill=True)
                return []
        self.down.pop(node_id, None)
        self._unstarted.discard(node_id)
        return list(sends)

    def leave(self, node_id: int, now: int) -> list[Send]:
        if node_id in self.down:
            return []
        try:
            sends, self._due[node_id] = self.ray.get(self.actors[node_id].leave.remote(now), timeout=self.call_timeout_s)
        except Exception as exc:
            self._fail(node_id, _why(exc), kill=True)
            return []
        return list(sends)

    def crash(self, node_id: int) -> None:
        self.crashed.add(node_id)
        self.down[node_id] = "crashed"
        self.ray.kill(self.actors[node_id], no_restart=True)

    def hang(self, node_id: int, ticks: int | None, now: int) -> None:
        """The actor really blocks (a sleep longer than any deadline); the next tick's deadline
        finds it hung."""
        if node_id not in self.down:
            self.actors[node_id].hang.remote(max(3600.0, 10 * self.call_timeout_s))

    def failures(self) -> list[tuple[int, str]]:
        out, self._failures = self._failures, []
        return out

    def can_restart(self, node_id: int) -> bool:
        return self.restarts.get(node_id, 0) < self.max_restarts

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        # Only actors with frames, and those whose retransmission is due (each answer says when):
        # a call per actor per tick would cost a Ray round trip for nothing.
        ray = self.ray

        def waiting(n: int) -> bool:
            t = self._due.get(n)
            return t is not None and now >= t

        due = [n for n in sorted(self.started) if n not in self.down and (inbox.get(n) or waiting(n))]
        if not due:
            return []
        refs = {self.actors[n].exchange.remote(list(inbox.get(n, ())), now): n for n in due}
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=self.call_timeout_s)
        answers: dict[int, list[Send]] = {}
        try:  # one round trip for all the answers (the common case) ...
            values = ray.get(ready, timeout=self.call_timeout_s) if ready else []
        except Exception:
            values = None
        for i, ref in enumerate(ready):
            nid = refs[ref]
            try:
                sends, self._due[nid] = values[i] if values is not None else ray.get(ref, timeout=self.call_timeout_s)
                answers[nid] = list(sends)
            except Exception as exc:
                self._fail(nid, _why(exc), kill=not isinstance(exc, ray.exceptions.RayActorError))
        for ref in late:
            self._fail(refs[ref], f"hung: no answer within {self.call_timeout_s:g} s", kill=True)
        return [(n, answers[n]) for n in due if n in answers]

    def close(self) -> None:
        """Return the live actors to the session's pool (reset); the others are killed."""
        ray = self.ray
        pool = _pool(ray)
        resets = {}
        for nid in sorted(self.actors):
            actor = self.actors[nid]
            if nid in self.down or nid in self.crashed:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
                continue
            resets[nid] = actor.reset.remote()
        if resets:
            ready, _late = ray.wait(list(resets.values()), num_returns=len(resets), timeout=min(30.0, self.call_timeout_s))
            for nid, ref in resets.items():
                try:
                    if ref not in ready:
                        raise TimeoutError("reset did not answer")
                    ray.get(ref, timeout=1.0)
                except Exception:
                    with contextlib.suppress(Exception):
                        ray.kill(self.actors[nid], no_restart=True)
                    continue
                pool.setdefault(_placement_key(self._actor_options(nid)), []).append(self.actors[nid])
        self.actors.clear()


def solve_on_ray(
    plan: IRPlan,
    options: SolveOptions | None = None,
    *,
    address: str | None = None,
    warm_start: SolverState | None = None,
    max_actors: int = DEFAULT_MAX_ACTORS,
    settings: SyncSettings | None = None,
    faults: FaultPlan | Callable[[Mapping[int, tuple[str, ...]]], FaultPlan] = FaultPlan(),
    seed: int = 0,
    progress: Callable[[dict[str, float]], None] | None = None,
    phase: PhaseFn | None = None,
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    **run_options: Any,
) -> SolveResult:
    """Solve ``plan`` with ADMM whose local problems run as Ray actors (see the module docstring).

    ``max_actors`` caps the actor count (objects are batched in plan order; a plan of family
    members only, one actor per CPU of the cluster once they outnumber the cap: :func:`actor_count`); ``settings``, ``faults``
    and ``seed`` are those of :func:`catopt_dsl.sync.run.solve_distributed` (the transport runs
    in the driver) -- ``faults`` may also be a function of the node assignment (node id ->
    objects) returning the plan, for faults written against object names --, as are
    ``run_options`` (``min_members``, ``checkpoint``, ``checkpoint_every``, ``resume``, ``auth``,
    ``leave_at``). ``progress`` hears every iteration,
    ``phase(text)`` every start-up step. ``call_timeout_s``, ``start_timeout_s`` and
    ``max_restarts`` bound how long an actor may hang or take to start, and how often a node is
    replaced. Same options => the same iterates as the in-process solver. A cluster that cannot be
    reached raises :class:`~catopt_dsl.runtime.backends.ClusterConnectionError`.
    """
    opts = options or SolveOptions()
    t0 = time.perf_counter()
    with ray_session(address, phase=phase) as ray:
        ray_init_s = time.perf_counter() - t0
        assignment = ray_assignment(plan, ray, max_actors)
        auth = run_options.get("auth")
        if auth is not None:
            assignment = auth.split(assignment)  # an actor speaks for one tenant: it holds one key
        fault_plan = faults if isinstance(faults, FaultPlan) else faults(assignment)

        def hosts(
            specs: Mapping[int, NodeSpec], o: SolveOptions, st: SyncSettings, warm: Mapping[str, np.ndarray]
        ) -> RayNodes:
            return RayNodes(
                specs,
                o,
                st,
                warm,
                call_timeout_s=call_timeout_s,
                start_timeout_s=start_timeout_s,
                max_restarts=max_restarts,
                phase=phase,
            )

        run = DistributedSolve(
            plan,
            opts,
            faults=fault_plan,
            seed=seed,
            settings=settings,
            warm_start=warm_start,
            assignment=assignment,
            host_factory=hosts,
            progress=progress,
            **run_options,
        )
        run.startup_s["ray_init"] = ray_init_s
        if phase is not None:
            phase(f"solving with {len(assignment)} node actor(s)")
        return run.run()
