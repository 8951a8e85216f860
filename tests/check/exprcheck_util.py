"""Test helpers for tests/check: build a scope from declarations and check one statement.

Statements are parsed with the real parser inside a one-object spec, so spans are genuine; tests
locate expected carets with :meth:`Env.loc`, which searches the source text that was parsed.
"""

from __future__ import annotations

from pathlib import Path


import numpy as np

from catopt_dsl.check.exprs import (
    ExprType,
    check_affine,
    check_constraint,
    check_objective,
    check_param,
    make_checker,
    type_expr,
)
from catopt_dsl.check.scope import ExprContext, IndexSymbol, ParamSymbol, Scope, VarSymbol
from catopt_dsl.diagnostics import Diagnostic, DiagnosticSink
from catopt_dsl.ir.exprs import lower_expr
from catopt_dsl.ir.model import IRExpr, IRVar
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.parser import parse_text

FILE = "t.cat"
HEAD = "catopt 1;\nLocalProblem t {\n"


class Env:
    def __init__(
        self,
        decls: str = "",
        spec_dir: Path | str = ".",
        allow: tuple[Path, ...] = (),
        index: dict[str, int] | None = None,
    ) -> None:
        self.decls = decls
        self.ctx = ExprContext(Path(spec_dir), tuple(allow))
        self.sink = DiagnosticSink()
        self.scope = Scope()
        self.src = ""
        body = self._parse("minimize 0;")
        for p in body.params:
            self.scope.define(check_param(p, self.scope, self.ctx, self.sink))
        for v in body.vars:
            self.scope.define(VarSymbol(v.name, tuple(v.type.dims), v.name_span))
        if index:
            inner = Scope(self.scope)
            for name, value in index.items():
                inner.define(IndexSymbol(name, value, Span.unknown(FILE)))
            self.scope = inner
        self.decl_errors = list(self.sink.diagnostics)

    # -- parsing ---------------------------------------------------------------------------------
    def _parse(self, stmt: str) -> ast.Body:
        self.src = HEAD + self.decls + "\n  " + stmt + "\n}\n"
        sink = DiagnosticSink()
        spec = parse_text(self.src, FILE, sink)
        assert spec is not None and not sink.has_errors, [d.message for d in sink.diagnostics]
        item = spec.items[0]
        assert isinstance(item, ast.LocalProblem)
        return item.body

    def expr(self, text: str) -> ast.Expr:
        return self._parse(f"minimize {text};").objectives[-1].expr

    # -- checking --------------------------------------------------------------------------------
    def type(self, text: str) -> ExprType | None:
        return type_expr(self.expr(text), self.scope, self.ctx, self.sink)

    def objective(self, text: str) -> bool:
        obj = self._parse(f"{text};").objectives[-1]
        return check_objective(obj, self.scope, self.ctx, self.sink)

    def constraint(self, text: str) -> bool:
        c = self._parse(f"subject to {{ {text}; }}").constraints[-1]
        return check_constraint(c, self.scope, self.ctx, self.sink)

    def affine(self, text: str, what: str = "morphism field `hours`") -> ExprType | None:
        return check_affine(self.expr(text), self.scope, self.ctx, self.sink, what)

    def param(self, text: str) -> ParamSymbol:
        decl = self._parse(f"{text};").params[-1]
        return check_param(decl, self.scope, self.ctx, self.sink)

    def var(self, text: str) -> VarSymbol:
        decl = self._parse(f"{text};").vars[-1]
        return VarSymbol(decl.name, tuple(decl.type.dims), decl.name_span)

    def lower(self, text: str) -> IRExpr:
        e = self.expr(text)
        typer = make_checker(self.scope, self.ctx, self.sink)
        t = typer.type(e)
        assert t is not None, self.messages()
        return lower_expr(e, typer.type_map(), self.scope)

    # -- inspection ------------------------------------------------------------------------------
    def codes(self) -> list[str]:
        return [d.code.value for d in self.sink.diagnostics]

    def messages(self) -> list[str]:
        return [d.message for d in self.sink.diagnostics]

    def only(self, code: str) -> Diagnostic:
        """The single diagnostic reported (asserting there is exactly one, with ``code``)."""
        assert self.codes() == [code], [(d.code.value, d.message) for d in self.sink.diagnostics]
        return self.sink.diagnostics[0]

    def loc(self, sub: str, nth: int = 0, last_line: bool = True) -> tuple[int, int]:
        """(line, col) of the ``nth`` occurrence of ``sub`` in the statement line (1-based)."""
        lines = self.src.split("\n")
        line_no = len(lines) - 2  # the statement line (before "}" and the final newline)
        text = lines[line_no - 1]
        col = -1
        for _ in range(nth + 1):
            col = text.index(sub, col + 1)
        return line_no, col + 1

    def params(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        scope: Scope | None = self.scope
        while scope is not None:
            for name in scope.names():
                sym = scope.lookup(name)
                if isinstance(sym, ParamSymbol) and sym.value is not None and name not in out:
                    out[name] = sym.value
            scope = scope.parent
        return out

    def irvars(self) -> tuple[IRVar, ...]:
        body = self._parse("minimize 0;")
        out, off = [], 0
        for v in body.vars:
            iv = IRVar(v.name, tuple(v.type.dims), off)
            out.append(iv)
            off += iv.size
        return tuple(out)

    def random_vars(self, rng: np.random.Generator, positive: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
        vs = self.irvars()
        n = sum(v.size for v in vs)
        z = rng.uniform(0.1, 2.0, n) if positive else rng.standard_normal(n)
        vals = {v.name: z[v.offset : v.offset + v.size].reshape(v.shape) for v in vs}
        return vals, z


def at(d: Diagnostic) -> tuple[int, int]:
    return d.span.line, d.span.col


def span_text(env: Env, d: Diagnostic) -> str:
    lines = env.src.split("\n")
    assert d.span.line == d.span.end_line
    return lines[d.span.line - 1][d.span.col - 1 : d.span.end_col - 1]
