"""``PlanBase`` / ``PlanResult``: the bases of the generated ``Plan`` classes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from catopt_dsl.bindings.problems import FamilyBase, LocalProblemBase
from catopt_dsl.ir.model import IRObject, IRPlan, IRShared

P = TypeVar("P", bound=LocalProblemBase)
F = TypeVar("F", bound=FamilyBase[Any])


def load_plan(package_file: str | Path) -> IRPlan:
    """The IR plan shipped next to a generated module (``<package>/_data/plan.json`` + ``.npy``)."""
    from catopt_dsl.ir.serialize import DATA_FOLDER, plan_from_files

    return plan_from_files(Path(package_file).resolve().parent / DATA_FOLDER)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _arrays(m: Mapping[str, Any]) -> dict[str, dict[str, npt.NDArray[np.float64]]]:
    return {
        name: {var: np.asarray(val, dtype=np.float64) for var, val in vars_.items()}
        for name, vars_ in sorted(m.items())
    }


@dataclass(frozen=True)
class PlanResult:
    """The outcome of :meth:`PlanBase.solve` / :meth:`PlanBase.centralized`.

    ``objective`` is the plan objective in minimise form; ``objects``/``shared`` map an object or
    shared block name (``site[3]`` for family members) to ``{var: value of the var's shape}``.
    Optional numbers are ``None`` when the solver did not produce them (e.g. infeasible).
    """

    status: str
    objective: float | None
    iterations: int | None
    primal_residual: float | None
    dual_residual: float | None
    solve_time_s: float
    objects: Mapping[str, Mapping[str, npt.NDArray[np.float64]]] = field(default_factory=dict)
    shared: Mapping[str, Mapping[str, npt.NDArray[np.float64]]] = field(default_factory=dict)
    message: str = ""
    #: dual prices (``optimal`` only): ``prices["couplings"]["cap#0"]`` is the multiplier of
    #: ``sum(terms) - rhs`` (>= 0 for ``<=``: the objective falls by it per unit of extra
    #: capacity); ``prices["consensus"]["site[3].w"]`` the multiplier of ``site[3].w - shared``
    prices: Mapping[str, Mapping[str, npt.NDArray[np.float64]]] = field(default_factory=dict)

    @classmethod
    def from_solver(cls, result: Any) -> PlanResult:
        """Convert a ``catopt_dsl.solver.SolveResult`` (duck-typed, so no import is needed)."""
        return cls(
            status=str(result.status),
            objective=_opt_float(result.objective),
            iterations=None if result.iterations is None else int(result.iterations),
            primal_residual=_opt_float(result.primal_residual),
            dual_residual=_opt_float(result.dual_residual),
            solve_time_s=float(result.solve_time_s),
            objects=_arrays(result.objects),
            shared=_arrays(result.shared),
            message=str(getattr(result, "message", "")),
            prices=_arrays(getattr(result, "prices", {})),
        )

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "solved")

    def value(self, obj: str, var: str) -> npt.NDArray[np.float64]:
        """The value of ``obj.var`` (an object or a shared block)."""
        if obj in self.objects:
            return self.objects[obj][var]
        return self.shared[obj][var]


class PlanBase:
    """A whole plan: its objects as typed attributes, solving, and one method per PlanDelta.

    ``Plan()`` loads the plan the generated package ships; ``Plan(ir)`` wraps any IR plan of the same
    structure. ``DELTA_PATH`` names the deltas (from the package's base plan) that lead to this class's
    plan, so a delta plan class can also be built from the package data alone.
    """

    NAME: ClassVar[str]
    DELTA_PATH: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ir: IRPlan | None = None, *, package_file: str | Path | None = None) -> None:
        if ir is None:
            if package_file is None:
                raise ValueError(f"{type(self).__name__}: no plan given and no package data to load")
            ir = load_plan(package_file)
            for name in self.DELTA_PATH:
                ir = ir.delta(name).result
        self._ir = ir
        self._last: Any = None  # the last ADMM result (its state warm-starts the next solve)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._ir.name!r}, {len(self._ir.objects)} objects)"

    @property
    def ir(self) -> IRPlan:
        return self._ir

    @property
    def name(self) -> str:
        return self._ir.name

    @property
    def objects(self) -> tuple[str, ...]:
        """Object names in plan order."""
        return tuple(o.name for o in self._ir.objects)

    @property
    def deltas(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._ir.deltas)

    def param(self, owner: str, name: str) -> npt.NDArray[Any]:
        """The current value of ``owner.name`` (an object, ``site[3]``, or a shared block)."""
        holders: tuple[IRObject | IRShared, ...] = (*self._ir.objects, *self._ir.shared)
        for o in holders:
            if o.name == owner:
                return o.param(name).value
        raise KeyError(f"no object or shared block `{owner}`")

    def set_param(self, owner: str, name: str, value: Any) -> None:
        """Set ``owner.name`` (checked: same shape, finite). What depends on it follows: coupling
        coefficients of an object, coupling bounds on a shared block (``ir.transform.set_param``).
        The next :meth:`solve` starts from the previous solution."""
        from catopt_dsl.ir.transform import set_param

        self._ir = set_param(self._ir, owner, name, value)

    def solve(
        self,
        backend: str = "inprocess",
        *,
        address: str | None = None,
        warm: bool = True,
        max_iter: int = 10_000,
        eps_abs: float = 1e-5,
        eps_rel: float = 1e-5,
        rho: float = 1.0,
        alpha: float = 1.6,
        adaptive_rho: bool = True,
        verbose: bool = False,
        native_lang: str = "cpp",
    ) -> PlanResult:
        """Solve with any backend the CLI has (``catopt_dsl.runtime.backends``: ``inprocess``,
        ``distributed``, ``ray``, ``centralized``, ``native``). ``warm``: start from the previous
        solve of this plan (after :meth:`set_param`, say; ADMM backends only); the other options
        are those of ``catoptc solve``.

        ``backend="native"`` solves with the plan's generated solver (QP objects only), built with
        the machine's compiler on first use and cached by content (``$CATOPT_CACHE``), so a plan
        changed by :meth:`set_param` gets a build of its own; ``native_lang="rust"`` builds the
        Rust crate's C API instead of the C++ library's. The result is the same :class:`PlanResult`
        (no prices: the native coordinator does not report them)."""
        from catopt_dsl.runtime.backends import RunOptions, solve_with  # lazy: the solver pulls in cvxpy
        from catopt_dsl.solver import SolveOptions

        options = SolveOptions(
            max_iter=max_iter,
            eps_abs=eps_abs,
            eps_rel=eps_rel,
            rho=rho,
            alpha=alpha,
            adaptive_rho=adaptive_rho,
            verbose=verbose,
        )
        start = self._last.state if warm and self._last is not None else None
        run = RunOptions(native_lang=native_lang) if native_lang != "cpp" else None
        raw = solve_with(self._ir, options, backend=backend, address=address, warm_start=start, run=run)
        if getattr(raw, "state", None) is not None:
            self._last = raw
        return PlanResult.from_solver(raw)

    def centralized(self) -> PlanResult:
        """Solve the whole plan as one CVXPY problem (the reference the ADMM result is checked against)."""
        from catopt_dsl.solver import solve_centralized

        return PlanResult.from_solver(solve_centralized(self._ir))

    # -- helpers the generated __init__ uses ---------------------------------------------------
    def _object(self, cls: type[P], name: str) -> P:
        return cls(self._ir.object(name), self)

    def _family(self, cls: type[F], member: type[LocalProblemBase], family: str) -> F:
        return cls([member(o, self) for o in self._ir.objects if o.family == family])

    def _delta_ir(self, name: str) -> IRPlan:
        return self._ir.delta(name).result
