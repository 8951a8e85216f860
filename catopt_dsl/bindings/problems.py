"""``LocalProblemBase`` / ``FamilyBase``: the bases of generated LocalProblem classes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from catopt_dsl.ir.model import IRObject, IRPlan


class PlanLike(Protocol):
    """What an object needs of its plan (``PlanBase``)."""

    @property
    def ir(self) -> IRPlan: ...

    def set_param(self, owner: str, name: str, value: Any) -> None: ...


class LocalProblemBase:
    """One LocalProblem of a plan (or one member of a family), backed by its IR object.

    Generated subclasses add one typed read-only property per param; everything else is here.
    """

    NAME: ClassVar[str]  # the LocalProblem (or family) name in the spec
    PARAM_NAMES: ClassVar[tuple[str, ...]] = ()
    VAR_SHAPES: ClassVar[dict[str, tuple[int, ...]]] = {}

    def __init__(self, ir: IRObject, plan: PlanLike | None = None) -> None:
        self._own = ir
        self._plan = plan  # when set, the object reads its (possibly updated) IR from the plan

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._own.name!r})"

    @property
    def _ir(self) -> IRObject:
        return self._plan.ir.object(self._own.name) if self._plan is not None else self._own

    @property
    def ir(self) -> IRObject:
        return self._ir

    def set_param(self, name: str, value: Any) -> None:
        """Give param ``name`` a new value (same shape; checked). The plan's next ``solve()``
        uses it, warm-started from the previous solve (the cvxpy "update a parameter, re-solve"
        habit). Raises ``KeyError``/``ValueError`` for an unknown param or a wrong value."""
        if self._plan is None:
            raise ValueError(f"`{self._own.name}` belongs to no plan: build it through the generated Plan")
        self._plan.set_param(self._own.name, name, value)

    @property
    def name(self) -> str:
        """The object's name in the plan (``site[3]`` for a family member)."""
        return self._ir.name

    @property
    def family(self) -> str | None:
        return self._ir.family

    @property
    def index(self) -> int | None:
        return self._ir.index

    @property
    def platform(self) -> str | None:
        return self._ir.platform

    @property
    def adapter(self) -> str | None:
        return self._ir.adapter

    @property
    def functors(self) -> tuple[str, ...]:
        return self._ir.functors

    @property
    def n(self) -> int:
        """Length of the stacked variable vector ``x``."""
        return self._ir.n

    @property
    def var_shapes(self) -> dict[str, tuple[int, ...]]:
        """Variable name -> shape, in stacking order."""
        return {v.name: v.shape for v in self._ir.vars}

    @property
    def params(self) -> dict[str, npt.NDArray[Any]]:
        """Param name -> value (read-only arrays; 0-d for scalars)."""
        return {p.name: p.value for p in self._ir.params}

    def param(self, name: str) -> npt.NDArray[Any]:
        return self._ir.param(name).value

    def build(self) -> tuple[Any, dict[str, Any]]:
        """The ADMM prox problem of this object, as CVXPY.

        ``minimize f(x) + rho/2 * ||x - centre||^2  s.t.  x in C``, where ``x`` is the stacked
        variable vector (vars flattened in C order, concatenated in declaration order). Returns
        ``(problem, {"x": Variable(n), "centre": Parameter(n), "rho": Parameter(nonneg)})``; set
        ``centre.value``/``rho.value`` and call ``problem.solve()`` repeatedly. ``rho`` multiplies
        a term that contains ``centre``, so the problem is not DPP and CVXPY recompiles it on every
        solve (the solver's own workers use a sqrt(rho)-scaled form for speed; this one favours the
        textbook parameters).
        """
        import cvxpy  # lazy: importing cvxpy is slow and only build() needs it

        from catopt_dsl.solver.cvx import to_cvxpy

        cp: Any = cvxpy  # cvxpy's partial annotations do not cover its atoms
        n = self._ir.n
        x = cp.Variable(n, name="x")
        centre = cp.Parameter(n, name="centre", value=np.zeros(n))
        rho = cp.Parameter(nonneg=True, name="rho", value=1.0)
        views = var_views(self._ir, x)
        params = self.params
        objective = to_cvxpy(self._ir.objective, views, params) + (rho / 2) * cp.sum_squares(x - centre)
        constraints = []
        for c in self._ir.constraints:
            lhs = to_cvxpy(c.lhs, views, params)
            rhs = to_cvxpy(c.rhs, views, params)
            constraints.append(lhs <= rhs if c.op == "<=" else lhs >= rhs if c.op == ">=" else lhs == rhs)
        return cp.Problem(cp.Minimize(objective), constraints), {"x": x, "centre": centre, "rho": rho}


def var_views(obj: IRObject, x: Any) -> dict[str, Any]:
    """Each var of ``obj`` as a view into the stacked CVXPY vector ``x`` (C order)."""
    import cvxpy

    cp: Any = cvxpy
    views: dict[str, Any] = {}
    for v in obj.vars:
        if v.shape == ():
            views[v.name] = x[v.offset]
        elif len(v.shape) == 1:
            views[v.name] = x[v.offset : v.offset + v.size]
        else:
            views[v.name] = cp.reshape(x[v.offset : v.offset + v.size], v.shape, order="C")
    return views


M = TypeVar("M", bound=LocalProblemBase)


class FamilyBase(Generic[M]):
    """A LocalProblem family: its members in index order; ``family[3]`` is the member with index 3."""

    NAME: ClassVar[str]

    def __init__(self, members: Sequence[M]) -> None:
        self._members = tuple(sorted(members, key=lambda m: m.index if m.index is not None else 0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._members)} members)"

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def members(self) -> tuple[M, ...]:
        return self._members

    def member(self, index: int) -> M:
        """The member with family index ``index`` (the ``3`` of ``site[3]``), not the position."""
        for m in self._members:
            if m.index == index:
                return m
        raise KeyError(f"{self.NAME}[{index}]")

    def __getitem__(self, index: int) -> M:
        return self.member(index)

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[M]:
        return iter(self._members)
