"""Framework adapter `torch`: a tenant's loss written in PyTorch, solved on the tenant's device.

The tenant writes ``loss(params, data) -> scalar tensor`` (``params``: var name -> float64 tensor of
the declared shape; ``data``: array name -> tensor, floats as float64, integers as int64). The
adapter:

* flattens parameters to the shared vector in :class:`~catopt_dsl.adapters.api.ParamLayout` order
  (vars in declaration order, each row-major); inside the loss each ``params[name]`` is a *view* of
  one flat leaf tensor, so one backward pass yields the flat gradient;
* computes gradients with autograd and Hessian-vector products with double backward;
* solves the prox step ``argmin loss(theta) + rho/2 ||theta - v||^2`` with ``torch.optim.LBFGS``
  and a strong-Wolfe line search, on the tenant's device, warm-started from the previous answer.
  L-BFGS is deterministic (no sampling, full batch), works for any differentiable loss, needs only
  gradients (so it scales to models whose Hessian does not fit), and in float64 reaches the
  ``ProxOptions.tol`` gradient test in a few dozen iterations on the strongly convex prox
  objective; a few Newton-CG steps on Hessian-vector products then take the gradient from
  L-BFGS's float64 floor (about 1e-7: its line search compares objective values) to the stopping
  rule (see ``framework.newton_polish``). The reported ``converged`` is decided by re-evaluating the
  gradient at the answer, never by trusting the optimiser's own exit.

torch is imported on first use, so listing adapters never loads it.
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

__all__ = ["TorchAdapter", "TorchProblem", "adapter"]

def _stop_rule(gnorm: float, step_scale: float, tol: float) -> bool:
    # Scale-aware: at the prox point grad loss = -rho (theta - v), which can be large; a gradient
    # of the prox objective below tol * max(1, that) is as small as float64 arithmetic allows.
    return gnorm <= tol * max(1.0, step_scale)


class TorchProblem(FrameworkProblem):
    """A torch loss as a :class:`FrameworkProblem` (built by :meth:`TorchAdapter.problem`)."""

    def __init__(
        self,
        resolved: ResolvedLoss,
        data: Mapping[str, np.ndarray],
        layout: ParamLayout,
        device: str,
        options: ProxOptions,
        adapter: str = "torch",
    ) -> None:
        import torch

        self._torch = torch
        try:
            self._device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise AdapterError(f"adapter {adapter}: `{device}` is not a torch device: {exc}") from exc
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise AdapterUnavailable(
                f"adapter {adapter}: device `{device}` asked for, but torch {torch.__version__} sees no CUDA device"
            )
        self.layout = layout
        self.convex = resolved.convex
        self.convexity = resolved.convexity
        self.device = str(self._device)
        self.adapter = adapter
        self.reference = resolved.reference
        self.options = options
        self._fn = resolved.fn
        self._offsets = list(layout.offsets().values())
        self.data = {str(k): self._to_tensor(k, v) for k, v in data.items()}
        self._last: np.ndarray | None = None
        self._trial()

    # -- conversions ---------------------------------------------------------------------------
    def _to_tensor(self, key: str, value: Any) -> Any:
        a = np.array(value, copy=True)  # loaded arrays are read-only; torch wants writable memory
        if a.dtype.kind == "f":
            a = a.astype(np.float64)
        elif a.dtype.kind in "iu":
            a = a.astype(np.int64)
        elif a.dtype.kind != "b":
            raise AdapterError(f"data `{key}` has dtype {a.dtype}; the torch adapter takes numeric arrays")
        return self._torch.from_numpy(a).to(self._device)

    def _flat(self, theta: np.ndarray, requires_grad: bool = False) -> Any:
        arr = np.asarray(theta, dtype=np.float64).reshape(-1)
        if arr.size != self.n:
            raise AdapterError(f"a vector of {arr.size} floats given to a problem of size {self.n}")
        t = self._torch.tensor(arr, dtype=self._torch.float64, device=self._device)
        return t.requires_grad_(requires_grad)

    def _split(self, flat: Any) -> dict[str, Any]:
        return {v.name: flat[s].view(v.shape) for v, s in zip(self.layout.vars, self._offsets)}

    def _value(self, flat: Any) -> Any:
        out = self._fn(self._split(flat), self.data)
        torch = self._torch
        if not isinstance(out, torch.Tensor) or out.numel() != 1 or not out.is_floating_point():
            what = type(out).__name__ if not isinstance(out, torch.Tensor) else f"a {tuple(out.shape)} {out.dtype} tensor"
            raise AdapterError(f"loss `{self.reference}` must return a scalar float tensor, not {what}")
        return out.reshape(())

    def _trial(self) -> None:
        """Evaluate once at zero so a loss that does not fit the declared vars fails here, clearly."""
        try:
            flat = self._flat(np.zeros(self.n), requires_grad=True)
            val = self._value(flat)
            self._torch.autograd.grad(val, flat, allow_unused=True)
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(
                f"loss `{self.reference}` failed on the declared parameters ({self.layout.describe()}): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc

    def _numpy(self, t: Any) -> np.ndarray:
        return np.asarray(t.detach().to("cpu").numpy(), dtype=np.float64).reshape(-1).copy()

    # -- the seam --------------------------------------------------------------------------------
    def flatten(self, params: Mapping[str, Any]) -> np.ndarray:
        chunks = []
        for v in self.layout.vars:
            if v.name not in params:
                raise AdapterError(f"missing parameter `{v.name}`")
            t = self._torch.as_tensor(params[v.name])
            if tuple(t.shape) != v.shape:
                raise AdapterError(f"parameter `{v.name}` has shape {tuple(t.shape)}, the layout says {v.shape}")
            chunks.append(t.detach().to("cpu", self._torch.float64).reshape(-1))
        return self._numpy(self._torch.cat(chunks))

    def unflatten(self, theta: np.ndarray) -> dict[str, Any]:
        flat = self._flat(theta)
        return {k: t.clone() for k, t in self._split(flat).items()}

    def loss(self, theta: np.ndarray) -> float:
        with self._torch.no_grad():
            return float(self._value(self._flat(theta)).item())

    def grad(self, theta: np.ndarray) -> np.ndarray:
        flat = self._flat(theta, requires_grad=True)
        (g,) = self._torch.autograd.grad(self._value(flat), flat, allow_unused=True)
        return np.zeros(self.n) if g is None else self._numpy(g)

    def hvp(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        flat = self._flat(theta, requires_grad=True)
        (g,) = self._torch.autograd.grad(self._value(flat), flat, create_graph=True)
        ut = self._flat(u)
        (hv,) = self._torch.autograd.grad(g @ ut, flat, allow_unused=True)
        return np.zeros(self.n) if hv is None else self._numpy(hv)

    def prox(self, v: np.ndarray, rho: float, warm: np.ndarray | None = None) -> ProxResult:
        torch = self._torch
        if not rho > 0:
            raise AdapterError(f"rho must be positive, not {rho}")
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        start = warm if warm is not None else (self._last if self._last is not None else v)
        x = self._flat(start, requires_grad=True)
        vt = self._flat(v)
        opts = self.options
        opt = torch.optim.LBFGS(
            [x],
            lr=1.0,
            max_iter=opts.max_iter,
            max_eval=opts.max_iter * 2,
            tolerance_grad=opts.tol,
            # Stop on "no progress at all" only: the honest test is the gradient, checked below.
            tolerance_change=1e-20,
            history_size=opts.history,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Any:
            opt.zero_grad()
            f = self._value(x) + 0.5 * rho * torch.sum((x - vt) ** 2)
            f.backward()
            return f

        try:
            opt.step(closure)
        except AdapterError:
            raise
        except Exception as exc:  # the tenant's code raised mid-solve
            raise AdapterError(f"loss `{self.reference}` raised during the prox step: {type(exc).__name__}: {exc}") from exc
        iterations = int(opt.state[x].get("n_iter", 0))
        theta, g, polished = newton_polish(
            self._numpy(x),
            lambda z: self.grad(z) + rho * (z - v),
            lambda z, u: self.hvp(z, u) + rho * u,
            lambda z, gn: _stop_rule(gn, float(np.abs(rho * (z - v)).max(initial=0.0)), opts.tol),
        )
        iterations += polished
        step_scale = float(np.abs(rho * (theta - v)).max(initial=0.0))
        gnorm = float(np.abs(g).max(initial=0.0))
        finite = bool(np.isfinite(theta).all()) and np.isfinite(gnorm)
        converged = finite and _stop_rule(gnorm, step_scale, opts.tol)
        if converged:
            message = ""
            self._last = theta
        elif not finite:
            message = f"prox step of `{self.reference}` diverged (non-finite parameters or gradient)"
        else:
            message = (
                f"prox step of `{self.reference}` stopped after {iterations} iterations with "
                f"||grad||_inf = {gnorm:.2e} above the stopping rule (tol {opts.tol:.0e})"
            )
            self._last = theta
        return ProxResult(theta, iterations, converged, message, gnorm, self.loss(theta) if finite else float("nan"))


class TorchAdapter(FrameworkAdapter):
    """The `torch` framework adapter (entry point ``torch`` in group ``catopt.adapters``)."""

    contract = Contract(
        name="torch",
        version="1.0.0",
        kind="framework",
        api_version=ADAPTER_API_VERSION,
        summary="PyTorch losses: autograd gradients, L-BFGS (strong Wolfe) prox steps on the tenant's device",
        platforms=("cpu", "cuda"),
        quantities=FRAMEWORK_QUANTITIES,
        requires=("torch>=2.0",),
        install="pip install 'catopt-dsl[ml]'",
        convexity="declared",
        samples=(
            ("least_squares", "catopt_dsl.adapters.torch_samples:least_squares"),
            ("logistic", "catopt_dsl.adapters.torch_samples:logistic"),
            ("softmax", "catopt_dsl.adapters.torch_samples:softmax"),
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
        return TorchProblem(resolved, data, layout, device, options or ProxOptions(), self.contract.name)


adapter = TorchAdapter()
