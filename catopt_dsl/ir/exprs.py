"""AST expression -> IR expression.

Lowering runs after checking succeeded and never reports: it reads every node's shape and folded
value from the checker's :class:`~catopt_dsl.check.exprs.TypeMap` of the scope the expression was
checked in (nothing is typed twice), then builds IR nodes:

* constant sub-expressions that mention no param (literals, family indices, ``load(...)``) become
  one :class:`IRConst`; params stay :class:`IRParamRef` so generated code shows their names and
  ``set`` deltas / functors can change their values without re-lowering;
* ``+e`` disappears, ``-e`` is :class:`IRNeg`; the transpose of a vector or scalar disappears;
* ``multiply(a, b)`` becomes ``IRBinary("*")``, ``dot(a, b)`` becomes ``IRBinary("@")``,
  ``mean(x)`` becomes ``sum(x) / size`` and ``transpose(x)`` becomes :class:`IRTranspose`, so
  backends implement fewer atoms (every ``IRCall.atom`` is in :data:`LOWERED_ATOMS`);
* constant arguments that are options (``sum``'s axis, ``huber``'s ``M``, default ``M = 1.0`` made
  explicit) move into ``IRCall.options``;
* index keys are normalised: non-negative ints and ``(start, stop, step)`` triples with
  ``0 <= start, stop <= n`` and ``step >= 1``, one entry per dimension of the base.
"""

from __future__ import annotations

import numpy as np

from catopt_dsl.check.atoms import ATOMS
from catopt_dsl.check.exprs import NP_DTYPES, ExprType, TypeMap
from catopt_dsl.check.scope import ParamSymbol, Scope, VarSymbol
from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRConst,
    IRExpr,
    IRIndex,
    IRNeg,
    IRParamRef,
    IRStack,
    IRTranspose,
    IRVarRef,
    frozen_array,
)
from catopt_dsl.syntax import ast

# The atoms that can appear in ``IRCall.atom`` after lowering (what backends must implement).
LOWERED_ATOMS: frozenset[str] = frozenset(name for name, spec in ATOMS.items() if not spec.rewritten)


def lower_expr(expr: ast.Expr, types: TypeMap, scope: Scope) -> IRExpr:
    """Lower a checked expression, reading the types the checker recorded for ``scope``.

    Raises ``KeyError`` when ``expr`` was not typed in that scope (a bug upstream, not user input).
    """
    return _Lowerer(types, scope).lower(expr)


class _Lowerer:
    def __init__(self, types: TypeMap, scope: Scope) -> None:
        self.types = types
        self.scope = scope
        self._params: dict[int, bool] = {}

    def t(self, e: ast.Expr) -> ExprType:
        return self.types.type(e)

    def mentions_param(self, e: object) -> bool:
        key = id(e)
        hit = self._params.get(key)
        if hit is None:
            if isinstance(e, ast.Name):
                hit = isinstance(self.scope.lookup(e.name), ParamSymbol)
            else:
                hit = any(self.mentions_param(c) for c in _children(e))
            self._params[key] = hit
        return hit

    def lower(self, e: ast.Expr) -> IRExpr:
        t = self.t(e)
        if t.is_constant and not self.mentions_param(e):
            if t.const is None:
                raise ValueError(f"constant without a value at {getattr(e, 'span', '?')}")
            return IRConst(frozen_array(t.const, np.dtype(NP_DTYPES[t.dtype]).name), t.shape)
        if isinstance(e, ast.Name):
            sym = self.scope.lookup(e.name)
            if isinstance(sym, ParamSymbol):
                return IRParamRef(e.name, t.shape)
            if isinstance(sym, VarSymbol):
                return IRVarRef(e.name, t.shape)
            raise ValueError(f"cannot lower name `{e.name}`")  # pragma: no cover
        if isinstance(e, ast.UnaryOp):
            inner = self.lower(e.operand)
            return inner if e.op == "+" else IRNeg(inner, t.shape)
        if isinstance(e, ast.BinOp):
            return IRBinary(e.op, self.lower(e.left), self.lower(e.right), t.shape)
        if isinstance(e, ast.Transpose):
            return self._transpose(e.operand, t)
        if isinstance(e, ast.Index):
            key = self.types.index_key(e)
            return IRIndex(self.lower(e.base), key, t.shape)
        if isinstance(e, ast.ArrayLit):
            return IRStack(tuple(self.lower(x) for x in e.elements), t.shape)
        if isinstance(e, ast.Call):
            if e.func == "multiply":
                return IRBinary("*", self.lower(e.args[0]), self.lower(e.args[1]), t.shape)
            if e.func == "dot":
                return IRBinary("@", self.lower(e.args[0]), self.lower(e.args[1]), t.shape)
            if e.func == "transpose":
                return self._transpose(e.args[0], t)
            if e.func == "mean":
                # `sum(x) / size`: one atom fewer for every backend.
                arg = e.args[0]
                size = int(np.prod(self.t(arg).shape, dtype=np.int64))
                total = IRCall("sum", (self.lower(arg),), ())
                return IRBinary("/", total, IRConst(frozen_array(float(size)), ()), ())
            spec = ATOMS[e.func]
            args = tuple(self.lower(a) for i, a in enumerate(e.args) if i not in spec.option_args)
            options = self.types.call_options(e)
            return IRCall(e.func, args, t.shape, tuple(options))
        raise ValueError(f"cannot lower {type(e).__name__}")  # pragma: no cover

    def _transpose(self, operand: ast.Expr, t: ExprType) -> IRExpr:
        inner = self.lower(operand)
        if len(t.shape) < 2:
            return inner  # transpose of a vector or scalar is the identity
        return IRTranspose(inner, t.shape)


def _children(e: object) -> tuple[object, ...]:
    if isinstance(e, ast.Call):
        return tuple(e.args)
    if isinstance(e, ast.BinOp):
        return (e.left, e.right)
    if isinstance(e, ast.UnaryOp):
        return (e.operand,)
    if isinstance(e, ast.Index):
        return (e.base,) + tuple(e.subscripts)
    if isinstance(e, ast.Slice):
        return tuple(p for p in (e.start, e.stop, e.step) if p is not None)
    if isinstance(e, ast.Transpose):
        return (e.operand,)
    if isinstance(e, ast.ArrayLit):
        return tuple(e.elements)
    return ()
