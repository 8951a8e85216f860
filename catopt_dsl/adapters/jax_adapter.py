"""Framework adapter `jax`: a tenant's loss written in JAX, jit-compiled, solved with Newton-CG.

The tenant writes ``loss(params, data) -> scalar`` with ``params`` (var name -> ``jax.Array`` of the
declared shape) and ``data`` (array name -> ``jax.Array``; floats float64, integers int64). The
adapter

* jit-compiles the loss, its gradient (``jax.value_and_grad``) and Hessian-vector products
  (forward-over-reverse: ``jax.jvp`` of ``jax.grad``), with the data and ``rho``/``v`` passed as
  arguments, so a new rho or centre never recompiles;
* flattens parameters in :class:`~catopt_dsl.adapters.api.ParamLayout` order (vars in declaration
  order, each row-major), which is also how the jitted loss slices the flat vector;
* solves the prox step with SciPy's trust-region Newton-CG (``trust-ncg``), which uses exactly
  what JAX computes best (gradients and Hessian-vector products, never the full Hessian), is
  deterministic, and converges quadratically on the strongly convex prox objective; a Newton-CG
  polish judged by the gradient alone finishes what float64 objective values cannot resolve.

Turning on ``jax_enable_x64`` is process-wide and happens when the first problem is built: ADMM's
agreement tolerances (1e-5 and below) need float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.adapters.api import (
    ADAPTER_API_VERSION,
    AdapterError,
    AdapterUnavailable,
    Contract,
    FrameworkAdapter,
    FrameworkProblem,
    ParamLayout,
    ProxOptions,
    ProxResult,
)
from catopt_dsl.adapters.framework import (
    FRAMEWORK_QUANTITIES,
    ResolvedLoss,
    newton_polish,
    resolve_loss,
)

__all__ = ["JaxAdapter", "JaxProblem", "adapter"]


def _jax_device(jax: Any, device: str, adapter: str) -> Any:
    kind, _, index = device.partition(":")
    platform = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}.get(kind)
    if platform is None:
        raise AdapterError(f"adapter {adapter}: device `{device}` must be `cpu`, `cuda:N` or `gpu:N`")
    try:
        devices = jax.devices(platform)
    except RuntimeError as exc:
        raise AdapterUnavailable(
            f"adapter {adapter}: device `{device}` asked for, but JAX has no `{platform}` backend here ({str(exc).splitlines()[0]})"
        ) from exc
    i = int(index) if index.isdigit() else 0
    if i >= len(devices):
        raise AdapterUnavailable(f"adapter {adapter}: device `{device}` asked for, JAX sees {len(devices)} {platform} device(s)")
    return devices[i]


class JaxProblem(FrameworkProblem):
    """A JAX loss as a :class:`FrameworkProblem` (built by :meth:`JaxAdapter.problem`)."""

    def __init__(
        self,
        resolved: ResolvedLoss,
        data: Mapping[str, np.ndarray],
        layout: ParamLayout,
        device: str,
        options: ProxOptions,
        adapter: str = "jax",
    ) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self._jax, self._jnp = jax, jnp
        self._dev = _jax_device(jax, device, adapter)
        self.layout = layout
        self.convex = resolved.convex
        self.convexity = resolved.convexity
        self.device = device
        self.adapter = adapter
        self.reference = resolved.reference
        self.options = options
        fn = resolved.fn
        offsets = [(v.name, s.start, s.stop, v.shape) for v, s in zip(layout.vars, layout.offsets().values())]

        def split(theta: Any) -> dict[str, Any]:
            return {name: theta[a:b].reshape(shape) for name, a, b, shape in offsets}

        def f(theta: Any, data: Any) -> Any:
            return jnp.reshape(fn(split(theta), data), ())

        def prox_vg(theta: Any, v: Any, rho: Any, data: Any) -> Any:
            val, g = jax.value_and_grad(f)(theta, data)
            d = theta - v
            return val + 0.5 * rho * jnp.sum(d * d), g + rho * d

        def hvp(theta: Any, u: Any, data: Any) -> Any:
            return jax.jvp(lambda t: jax.grad(f)(t, data), (theta,), (u,))[1]

        self._split = split
        self._raw = fn
        self.data = {str(k): self._to_array(k, a) for k, a in data.items()}
        self._trial()
        self._f = jax.jit(f)
        self._vg = jax.jit(jax.value_and_grad(f))
        self._prox_vg = jax.jit(prox_vg)
        self._hvp = jax.jit(hvp)
        self._last: np.ndarray | None = None

    def _to_array(self, key: str, value: Any) -> Any:
        a = np.asarray(value)
        if a.dtype.kind == "f":
            a = a.astype(np.float64)
        elif a.dtype.kind in "iu":
            a = a.astype(np.int64)
        elif a.dtype.kind != "b":
            raise AdapterError(f"data `{key}` has dtype {a.dtype}; the jax adapter takes numeric arrays")
        return self._jax.device_put(a, self._dev)

    def _flat(self, theta: np.ndarray) -> Any:
        arr = np.asarray(theta, dtype=np.float64).reshape(-1)
        if arr.size != self.n:
            raise AdapterError(f"a vector of {arr.size} floats given to a problem of size {self.n}")
        return self._jax.device_put(arr, self._dev)

    def _trial(self) -> None:
        """Run the loss once, un-jitted, so a loss that does not fit the declared vars fails clearly."""
        try:
            out = self._raw(self._split(self._flat(np.zeros(self.n))), self.data)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise AdapterError(
                f"loss `{self.reference}` failed on the declared parameters ({self.layout.describe()}): "
                f"{type(exc).__name__}: {first}"
            ) from exc
        shape = tuple(getattr(out, "shape", (None,)))
        dtype = getattr(out, "dtype", None)
        if shape not in ((), (1,)) or dtype is None or not self._jnp.issubdtype(dtype, self._jnp.floating):
            raise AdapterError(f"loss `{self.reference}` must return a scalar float, not {type(out).__name__} {shape} {dtype}")

    @staticmethod
    def _numpy(a: Any) -> np.ndarray:
        return np.array(a, dtype=np.float64).reshape(-1)

    # -- the seam --------------------------------------------------------------------------------
    def flatten(self, params: Mapping[str, Any]) -> np.ndarray:
        chunks = []
        for v in self.layout.vars:
            if v.name not in params:
                raise AdapterError(f"missing parameter `{v.name}`")
            a = np.asarray(params[v.name], dtype=np.float64)
            if a.shape != v.shape:
                raise AdapterError(f"parameter `{v.name}` has shape {a.shape}, the layout says {v.shape}")
            chunks.append(a.reshape(-1))
        return np.concatenate(chunks)

    def unflatten(self, theta: np.ndarray) -> dict[str, Any]:
        return self._split(self._flat(theta))

    def loss(self, theta: np.ndarray) -> float:
        return float(self._f(self._flat(theta), self.data))

    def grad(self, theta: np.ndarray) -> np.ndarray:
        _, g = self._vg(self._flat(theta), self.data)
        return self._numpy(g)

    def hvp(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._numpy(self._hvp(self._flat(theta), self._flat(u), self.data))

    def prox(self, v: np.ndarray, rho: float, warm: np.ndarray | None = None) -> ProxResult:
        from scipy.optimize import minimize

        if not rho > 0:
            raise AdapterError(f"rho must be positive, not {rho}")
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        start = warm if warm is not None else (self._last if self._last is not None else v)
        x0 = np.asarray(start, dtype=np.float64).reshape(-1)
        vj = self._flat(v)
        r = float(rho)
        opts = self.options

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            val, g = self._prox_vg(self._flat(z), vj, r, self.data)
            return float(val), self._numpy(g)

        def hessp(z: np.ndarray, u: np.ndarray) -> np.ndarray:
            return self.hvp(z, u) + r * np.asarray(u, dtype=np.float64)

        def done(z: np.ndarray, gnorm: float) -> bool:
            return gnorm <= opts.tol * max(1.0, float(np.abs(r * (z - v)).max(initial=0.0)))

        try:
            res = minimize(fun, x0, jac=True, hessp=hessp, method="trust-ncg",
                           options={"gtol": opts.tol, "maxiter": opts.max_iter})
            theta, g, polished = newton_polish(np.asarray(res.x, dtype=np.float64), lambda z: fun(z)[1], hessp, done)
        except AdapterError:
            raise
        except Exception as exc:  # the tenant's code raised mid-solve
            raise AdapterError(f"loss `{self.reference}` raised during the prox step: {type(exc).__name__}: {exc}") from exc
        iterations = int(res.nit) + polished
        gnorm = float(np.abs(g).max(initial=0.0))
        finite = bool(np.isfinite(theta).all()) and np.isfinite(gnorm)
        converged = finite and done(theta, gnorm)
        if converged:
            message = ""
        elif not finite:
            message = f"prox step of `{self.reference}` diverged (non-finite parameters or gradient)"
        else:
            message = (
                f"prox step of `{self.reference}` stopped after {iterations} iterations with "
                f"||grad||_inf = {gnorm:.2e} above the stopping rule (tol {opts.tol:.0e}): {res.message}"
            )
        if finite:
            self._last = theta
        return ProxResult(theta, iterations, converged, message, gnorm, self.loss(theta) if finite else float("nan"))


class JaxAdapter(FrameworkAdapter):
    """The `jax` framework adapter (entry point ``jax`` in group ``catopt.adapters``)."""

    contract = Contract(
        name="jax",
        version="1.0.0",
        kind="framework",
        api_version=ADAPTER_API_VERSION,
        summary="JAX losses: jit-compiled gradients and Hessian-vector products, trust-region Newton-CG prox steps",
        platforms=("cpu", "cuda"),
        quantities=FRAMEWORK_QUANTITIES,
        requires=("jax>=0.4.20", "jaxlib>=0.4.20"),
        install="pip install 'catopt-dsl[ml]'",
        convexity="declared",
        samples=(
            ("least_squares", "catopt_dsl.adapters.jax_samples:least_squares"),
            ("logistic", "catopt_dsl.adapters.jax_samples:logistic"),
            ("softmax", "catopt_dsl.adapters.jax_samples:softmax"),
        ),
    )

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
        avail = self.availability()
        if not avail.ok:
            raise AdapterUnavailable(f"adapter {self.contract.name}: {avail.reason}")
        resolved = resolve_loss(self.contract, loss, layout, search_path)
        return JaxProblem(resolved, data, layout, device, options or ProxOptions(), self.contract.name)


adapter = JaxAdapter()
