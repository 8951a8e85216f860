"""The adapter API (version :data:`ADAPTER_API_VERSION`): what a plug-in implements, what catoptc calls.

An adapter is a Python object published under the entry-point group ``catopt.adapters`` (see
``registry.py``). It carries a :class:`Contract` and is one of two kinds:

* a :class:`FrameworkAdapter` turns a tenant's own loss, written in an ML framework (torch, JAX, ...),
  into a :class:`FrameworkProblem`: the solver-facing seam. A FrameworkProblem has a flat size
  ``n`` and offers ``loss``, ``grad`` and the prox step

      prox(v, rho) = argmin_theta  loss(theta) + rho/2 ||theta - v||^2,

  which is exactly an ADMM x-update for a consensus link ``theta == z`` (``v = z - u``). Every
  vector crossing the seam is a flat float64 numpy array in the order of a :class:`ParamLayout`.
* a :class:`HardwareAdapter` describes the devices of one platform (:class:`DeviceDescriptor`),
  maps each into canonical capacity (:class:`Capacity`, units in ``units.py``) and tells a framework
  adapter where to place its work (``placement``).

Versioning: ``ADAPTER_API_VERSION`` is ``MAJOR.MINOR``. An adapter declares the version it
implements in its contract; catoptc accepts it when the majors are equal and the adapter's minor is
not newer than catoptc's (a minor release only adds optional methods with defaults).

Nothing here imports a framework: torch and JAX load only inside their adapters, on first use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from catopt_dsl.adapters.units import CANONICAL, GIB

__all__ = [
    "ADAPTER_API_VERSION",
    "Adapter",
    "AdapterError",
    "AdapterUnavailable",
    "Availability",
    "Capacity",
    "Contract",
    "DeviceDescriptor",
    "FrameworkAdapter",
    "FrameworkProblem",
    "HardwareAdapter",
    "ParamLayout",
    "ProxOptions",
    "ProxResult",
    "Quantity",
    "RecordedDevice",
    "VarSpec",
    "api_compatible",
    "contract_problems",
    "external_loss",
    "read_data",
    "resolve_callable",
]

ADAPTER_API_VERSION = "1.0"

Kind = Literal["framework", "hardware"]
Convexity = Literal["always", "declared", "never"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Semantic versioning 2.0.0 (https://semver.org), the regular expression it recommends.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_API = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class AdapterError(Exception):
    """A problem with an adapter or with what a spec asks of it; the message is one clear line."""


class AdapterUnavailable(AdapterError):
    """The adapter is installed but cannot serve here (no GPU, framework missing, ...)."""


# ---------------------------------------------------------------------------------------------
# Contract
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A canonical quantity an adapter provides, with its unit (both from ``units.CANONICAL``)."""

    name: str
    unit: str


@dataclass(frozen=True)
class Contract:
    """What an adapter promises. Checked by the conformance kit and shown by ``catoptc adapters show``.

    ``requires`` are PEP 508 requirement strings (``"torch>=2.0"``) of the distributions the
    adapter needs at run time; ``install`` says how to get them. ``convexity`` (framework adapters)
    says what the adapter promises about a tenant's loss: ``"always"`` (every loss it serves is
    convex, e.g. an adapter restricted to generalised linear models), ``"declared"`` (convex exactly
    when the loss declares it with :func:`external_loss`), ``"never"`` (no promise). ``samples``
    (framework adapters) maps each sample problem of the conformance kit to the adapter's own
    implementation of it, as ``"module:function"``.
    """

    name: str
    version: str
    kind: Kind
    api_version: str
    summary: str
    platforms: tuple[str, ...]
    quantities: tuple[Quantity, ...]
    requires: tuple[str, ...] = ()
    install: str = ""
    convexity: Convexity = "never"
    samples: tuple[tuple[str, str], ...] = ()

    def sample(self, name: str) -> str:
        for key, ref in self.samples:
            if key == name:
                return ref
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "api_version": self.api_version,
            "summary": self.summary,
            "platforms": list(self.platforms),
            "quantities": [{"name": q.name, "unit": q.unit} for q in self.quantities],
            "requires": list(self.requires),
            "install": self.install,
        }
        if self.kind == "framework":
            out["convexity"] = self.convexity
            out["samples"] = dict(self.samples)
        return out


def api_compatible(version: str, ours: str = ADAPTER_API_VERSION) -> bool:
    """Whether an adapter implementing API ``version`` can be used by catoptc speaking ``ours``."""
    m, o = _API.match(version), _API.match(ours)
    if not m or not o:
        return False
    return m.group(1) == o.group(1) and int(m.group(2)) <= int(o.group(2))


def contract_problems(contract: Any) -> list[str]:
    """Everything wrong with a contract, as messages (empty when it is well formed)."""
    if not isinstance(contract, Contract):
        return [f"`contract` must be a catopt_dsl.adapters.Contract, not {type(contract).__name__}"]
    out: list[str] = []
    if not _NAME.match(contract.name):
        out.append(f"name `{contract.name}` must be lower-case letters, digits and `_`, starting with a letter")
    if not _SEMVER.match(contract.version):
        out.append(f"version `{contract.version}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)")
    if contract.kind not in ("framework", "hardware"):
        out.append(f"kind `{contract.kind}` must be `framework` or `hardware`")
    if not _API.match(contract.api_version):
        out.append(f"api_version `{contract.api_version}` must be MAJOR.MINOR (this catoptc speaks {ADAPTER_API_VERSION})")
    elif not api_compatible(contract.api_version):
        out.append(f"implements adapter API {contract.api_version}, but this catoptc speaks {ADAPTER_API_VERSION}")
    if not contract.platforms:
        out.append("platforms is empty: name at least one platform the adapter serves (e.g. `cpu`)")
    if not contract.quantities:
        out.append("quantities is empty: an adapter provides at least one canonical quantity")
    for q in contract.quantities:
        known = CANONICAL.get(q.name)
        if known is None:
            out.append(f"quantity `{q.name}` is not canonical (known: {', '.join(sorted(CANONICAL))})")
        elif known.unit != q.unit:
            out.append(f"quantity `{q.name}` is measured in `{known.unit}`, not `{q.unit}`")
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging ships with pip and every build tool
        Requirement = None  # type: ignore[assignment,misc]
    for req in contract.requires:
        if Requirement is None:
            break
        try:
            Requirement(req)
        except InvalidRequirement as exc:
            out.append(f"requirement `{req}` is not a PEP 508 requirement: {exc}")
    if contract.kind == "framework":
        if contract.convexity not in ("always", "declared", "never"):
            out.append(f"convexity `{contract.convexity}` must be `always`, `declared` or `never`")
        for key, ref in contract.samples:
            if ":" not in ref:
                out.append(f"sample `{key}` must be a `module:function` reference, not `{ref}`")
    return out


@dataclass(frozen=True)
class Availability:
    """Whether an installed adapter can serve on this machine, and if not, why (one line)."""

    ok: bool
    reason: str = ""


# ---------------------------------------------------------------------------------------------
# Parameter layout
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VarSpec:
    """One declared var of the tenant: a name and a shape (``()`` for a scalar)."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


@dataclass(frozen=True)
class ParamLayout:
    """The documented order of the shared vector: vars in declaration order, each row-major (C order).

    This is the order the ``.cat`` language already uses for an object's stacked variable vector,
    so a tenant's flat ``theta`` lines up with the spec's vars without any permutation.
    """

    vars: tuple[VarSpec, ...]

    @classmethod
    def of(cls, *pairs: tuple[str, Sequence[int]]) -> ParamLayout:
        return cls(tuple(VarSpec(name, tuple(int(d) for d in shape)) for name, shape in pairs))

    @property
    def n(self) -> int:
        return sum(v.size for v in self.vars)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.vars)

    def offsets(self) -> dict[str, slice]:
        out: dict[str, slice] = {}
        start = 0
        for v in self.vars:
            out[v.name] = slice(start, start + v.size)
            start += v.size
        return out

    def flatten(self, parts: Mapping[str, Any]) -> np.ndarray:
        """Reference flattening of numpy-convertible parts (what every adapter must agree with)."""
        missing = [v.name for v in self.vars if v.name not in parts]
        if missing:
            raise AdapterError(f"missing parameters: {', '.join(missing)}")
        chunks = []
        for v in self.vars:
            a = np.asarray(parts[v.name], dtype=np.float64)
            if a.shape != v.shape:
                raise AdapterError(f"parameter `{v.name}` has shape {a.shape}, the layout says {v.shape}")
            chunks.append(a.reshape(-1, order="C"))
        return np.concatenate(chunks) if chunks else np.zeros(0)

    def unflatten(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Reference unflattening into numpy arrays (copies, C order)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        if theta.size != self.n:
            raise AdapterError(f"a flat vector of {theta.size} floats does not fit this layout of {self.n}")
        return {v.name: theta[s].reshape(v.shape, order="C").copy() for v, s in zip(self.vars, self.offsets().values())}

    def describe(self) -> str:
        return ", ".join(f"{v.name}: float[{', '.join(map(str, v.shape))}]" if v.shape else f"{v.name}: float" for v in self.vars)


# ---------------------------------------------------------------------------------------------
# Framework problems: the solver-facing seam
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxOptions:
    """Stopping rule of the prox step.

    The step stops when ``||grad F(theta)||_inf <= tol * max(1, ||rho (theta - v)||_inf)`` for the
    prox objective ``F = loss + rho/2 ||theta - v||^2`` (at the answer ``rho (theta - v)`` equals
    minus the loss gradient: the bound is relative to the size of the gradients that cancel). For a
    convex loss F is rho-strongly convex, so the answer is then within ``sqrt(n) * ||grad F|| / rho``
    of the exact prox point. ``max_iter`` bounds the optimiser's iterations per step; ``history`` is
    L-BFGS's memory where the adapter uses L-BFGS.
    """

    tol: float = 1e-9
    max_iter: int = 1000
    history: int = 50


@dataclass(frozen=True, eq=False)
class ProxResult:
    """One prox step's answer. ``converged`` is True only when the stopping rule held."""

    theta: np.ndarray
    iterations: int
    converged: bool
    message: str = ""
    grad_norm: float = float("nan")  # ||grad F(theta)||_inf at the returned theta
    loss: float = float("nan")  # loss(theta) at the returned theta


class FrameworkProblem(ABC):
    """A tenant's loss behind a framework adapter, seen as a function of one flat float64 vector.

    Attributes every implementation sets: ``layout`` (:class:`ParamLayout`), ``convex`` (whether
    the adapter vouches for convexity, see :class:`Contract`), ``convexity`` (a sentence saying who
    declared it, for diagnostics), ``device`` (where the work runs, e.g. ``"cpu"``, ``"cuda:0"``),
    ``adapter`` (the adapter's name) and ``reference`` (the loss reference, ``module:function``).
    """

    layout: ParamLayout
    convex: bool
    convexity: str
    device: str
    adapter: str
    reference: str

    @property
    def n(self) -> int:
        """Flat size: the number of floats in the shared vector."""
        return self.layout.n

    @abstractmethod
    def loss(self, theta: np.ndarray) -> float:
        """loss(theta) for a flat float64 theta of size n."""

    @abstractmethod
    def grad(self, theta: np.ndarray) -> np.ndarray:
        """The gradient of the loss at theta (flat float64, size n)."""

    @abstractmethod
    def prox(self, v: np.ndarray, rho: float, warm: np.ndarray | None = None) -> ProxResult:
        """argmin_theta loss(theta) + rho/2 ||theta - v||^2, started from ``warm`` (default: the
        previous answer, or ``v`` on the first call)."""

    @abstractmethod
    def flatten(self, params: Mapping[str, Any]) -> np.ndarray:
        """Framework-native parameters (name -> tensor) -> flat float64 vector, in layout order."""

    @abstractmethod
    def unflatten(self, theta: np.ndarray) -> dict[str, Any]:
        """Flat float64 vector -> framework-native parameters (name -> tensor), on the device."""

    def hvp(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Hessian-vector product; by default central differences of ``grad`` (adapters may do better)."""
        theta = np.asarray(theta, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
        h = 1e-6 * max(1.0, float(np.linalg.norm(theta))) / max(1e-300, float(np.linalg.norm(u)))
        return (self.grad(theta + h * u) - self.grad(theta - h * u)) / (2 * h)


# ---------------------------------------------------------------------------------------------
# Hardware
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceDescriptor:
    """One device as a hardware adapter sees it (the schema the kit checks).

    ``compute_units`` counts cores (CPU) or streaming multiprocessors (GPU). ``peak_fp32_tflops``
    is the device's fp32 dense-matmul rate and ``peak_source`` says where it comes from: ``"spec"``
    (computed from the device's published architecture and clocks), ``"estimate"`` (computed from
    what the OS reports, e.g. CPU flags and clock), ``"probe"`` (measured by ``probe``) or
    ``"unknown"`` (then ``peak_fp32_tflops`` is None). ``extra`` holds vendor fields as text.
    """

    platform: str
    index: int
    name: str
    memory_bytes: int
    compute_units: int
    clock_mhz: float | None
    peak_fp32_tflops: float | None
    peak_source: Literal["spec", "estimate", "probe", "unknown"]
    extra: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "index": self.index,
            "name": self.name,
            "memory_bytes": self.memory_bytes,
            "compute_units": self.compute_units,
            "clock_mhz": self.clock_mhz,
            "peak_fp32_tflops": self.peak_fp32_tflops,
            "peak_source": self.peak_source,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class Capacity:
    """A device's capacity in canonical units (see ``units.py``): ncu, GiB, devices."""

    compute_ncu: float | None  # None: unknown until probed
    memory_gib: float
    devices: int = 1

    def compute_hours(self, hours: float) -> float | None:
        """ncu_h offered over ``hours`` of wall time."""
        return None if self.compute_ncu is None else self.compute_ncu * hours

    def to_json(self) -> dict[str, Any]:
        return {
            "compute": {"value": self.compute_ncu, "unit": "ncu"},
            "memory": {"value": self.memory_gib, "unit": "GiB"},
            "devices": {"value": self.devices, "unit": "count"},
        }


@dataclass(frozen=True)
class RecordedDevice:
    """A device descriptor recorded as raw tool output, with the capacity it must map to.

    The conformance kit parses ``raw`` with the adapter's own parser (``parse_recorded``) and checks
    the resulting capacity against ``expected_ncu`` (an independent figure, e.g. the vendor's
    published fp32 peak) within ``rel_tol``, and the memory against ``expected_gib``.
    """

    label: str
    raw: Mapping[str, str]
    expected_ncu: float | None
    expected_gib: float
    rel_tol: float = 0.03


# ---------------------------------------------------------------------------------------------
# Adapters
# ---------------------------------------------------------------------------------------------


class Adapter(ABC):
    """Common base: a contract and an availability check. Subclass one of the two kinds."""

    contract: Contract

    def availability(self) -> Availability:
        """Whether this adapter can serve here. The default checks the contract's requirements."""
        missing = missing_requirements(self.contract.requires)
        if missing:
            hint = f"; install with: {self.contract.install}" if self.contract.install else ""
            return Availability(False, f"needs {', '.join(missing)}{hint}")
        return Availability(True)


class FrameworkAdapter(Adapter):
    """Turns a tenant's loss (``module:function`` + data) into a :class:`FrameworkProblem`."""

    @abstractmethod
    def problem(
        self,
        loss: str | Callable[..., Any],
        data: Mapping[str, np.ndarray],
        layout: ParamLayout,
        *,
        device: str = "cpu",
        options: ProxOptions | None = None,
        search_path: Sequence[Path] = (),
    ) -> FrameworkProblem:
        """Build the problem. ``loss`` is a ``module:function`` reference (resolved with
        :func:`resolve_callable`, first in ``search_path``) or the function itself; it is called as
        ``loss(params, data)`` with ``params`` a dict var name -> native tensor shaped as declared
        and ``data`` a dict of native tensors, and returns a scalar. Raises :class:`AdapterError`
        with a one-line message when the reference does not resolve or the loss does not fit the
        layout."""


class HardwareAdapter(Adapter):
    """Describes one platform's devices in canonical units and places framework work on them."""

    @abstractmethod
    def describe(self) -> tuple[DeviceDescriptor, ...]:
        """The devices present here (raises :class:`AdapterUnavailable` when there are none)."""

    @abstractmethod
    def capacity(self, device: DeviceDescriptor) -> Capacity:
        """The device's capacity in canonical units."""

    @abstractmethod
    def probe(self, device: DeviceDescriptor, seconds: float = 0.5) -> DeviceDescriptor:
        """Measure fp32 matmul throughput on the device; returns the descriptor with
        ``peak_source="probe"``."""

    @abstractmethod
    def placement(self, framework: str, index: int = 0) -> str:
        """The device string framework ``framework`` should use for device ``index`` (e.g.
        ``"cuda:0"`` for torch); raises :class:`AdapterUnavailable` with the reason."""

    def recorded(self) -> tuple[RecordedDevice, ...]:
        """Recorded descriptors the kit checks the unit mapping on (default: none)."""
        return ()

    def parse_recorded(self, recorded: RecordedDevice) -> DeviceDescriptor:
        """Turn a recorded descriptor's raw output into a :class:`DeviceDescriptor`."""
        raise NotImplementedError(f"adapter `{self.contract.name}` ships no recorded descriptors")


# ---------------------------------------------------------------------------------------------
# Helpers shared by adapters
# ---------------------------------------------------------------------------------------------


def missing_requirements(requires: Sequence[str]) -> list[str]:
    """The requirements in ``requires`` that the installed distributions do not satisfy."""
    import importlib.metadata

    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version

    missing = []
    for text in requires:
        req = Requirement(text)
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{text} (not installed)")
            continue
        try:
            ok = req.specifier.contains(Version(installed), prereleases=True)
        except InvalidVersion:
            ok = True  # an unparsable local version: do not block on it
        if not ok:
            missing.append(f"{text} (installed: {installed})")
    return missing


def external_loss(
    *, convex: bool = False, params: Mapping[str, Sequence[int]] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a tenant's loss: ``convex`` declares it convex (the adapter reports who vouched for
    it); ``params`` states the parameter shapes it expects, so a spec declaring different vars gets
    an error naming both instead of a framework's shape error."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__catopt_convex__ = bool(convex)  # type: ignore[attr-defined]
        if params is not None:
            fn.__catopt_params__ = {k: tuple(int(d) for d in v) for k, v in params.items()}  # type: ignore[attr-defined]
        return fn

    return mark


def declared_convex(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__catopt_convex__", False))


def check_declared_params(fn: Callable[..., Any], layout: ParamLayout, ref: str) -> None:
    """Raise if the loss states parameter shapes (``external_loss(params=...)``) that differ from the layout."""
    declared = getattr(fn, "__catopt_params__", None)
    if declared is None:
        return
    want = ParamLayout.of(*declared.items())
    if want != layout:
        raise AdapterError(
            f"loss `{ref}` expects {want.n} parameters ({want.describe()}) but the spec declares "
            f"{layout.n} ({layout.describe()})"
        )


def resolve_callable(ref: str, search_path: Sequence[Path] = ()) -> Callable[..., Any]:
    """Resolve ``"package.module:function"`` (the function part may be dotted: ``Class.method``).

    A module found as a file under one of ``search_path`` (``pkg/mod.py`` for ``pkg.mod``; the spec's
    folder, typically) is loaded from there under a private name, so tenants' helper files never
    shadow installed packages; otherwise the module is imported normally. Raises
    :class:`AdapterError` with one line saying what failed.
    """
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise AdapterError(f"loss reference `{ref}` must be `module:function` (e.g. `my_pkg.losses:site_loss`)")
    module_name, attr = ref.split(":")
    if not module_name or not attr or not all(p.isidentifier() for p in module_name.split(".") + attr.split(".")):
        raise AdapterError(f"loss reference `{ref}` must be `module:function` with dotted Python names")
    module: Any = None
    for folder in search_path:
        candidate = Path(folder) / (module_name.replace(".", "/") + ".py")
        if candidate.is_file():
            module = _load_file(candidate, module_name)
            break
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            where = f" (looked in {', '.join(str(p) for p in search_path)} and the installed packages)" if search_path else ""
            raise AdapterError(f"cannot import module `{module_name}` of loss reference `{ref}`{where}: {exc}") from exc
        except Exception as exc:  # the tenant's module raised while importing
            raise AdapterError(f"importing module `{module_name}` of `{ref}` raised {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AdapterError(f"module `{module_name}` has no attribute `{attr}` (loss reference `{ref}`)")
        obj = getattr(obj, part)
    if not callable(obj):
        raise AdapterError(f"`{ref}` is a {type(obj).__name__}, not a function")
    return obj  # type: ignore[no-any-return]


def _load_file(path: Path, module_name: str) -> Any:
    resolved = path.resolve()
    private = f"_catopt_ext_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}_{module_name.replace('.', '_')}"
    if private in sys.modules:
        return sys.modules[private]
    spec = importlib.util.spec_from_file_location(private, resolved)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise AdapterError(f"cannot load `{resolved}` as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[private] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[private]
        raise AdapterError(f"loading `{resolved}` raised {type(exc).__name__}: {exc}") from exc
    return module


def read_data(path: Path) -> dict[str, np.ndarray]:
    """Read a tenant's data file: ``.npz`` (every array by its name) or ``.npy`` (one array named
    after the file's stem). Pickled objects are refused; arrays must be numeric and finite.

    Where the path may lie is the caller's rule (the checker applies the same confinement as
    ``load()``: the spec's folder or an ``--allow-path``)."""
    path = Path(path)
    if path.suffix not in (".npz", ".npy"):
        raise AdapterError(f"{path}: adapter data must be a .npz or .npy file")
    try:
        if path.suffix == ".npy":
            arrays = {path.stem: np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{path}: cannot read: {exc}") from exc
    for key, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise AdapterError(f"{path}: array `{key}` has dtype {a.dtype}; numeric arrays only")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise AdapterError(f"{path}: array `{key}` contains NaN or Inf")
    return arrays


def memory_gib(nbytes: int) -> float:
    return nbytes / GIB

