"""The AST: what the user wrote, as frozen dataclasses with source spans.

Produced by :mod:`catopt_dsl.syntax.parser` (the only module that sees ``lark``); read by the checker
and by lowering. Nodes are never mutated; passes return new data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from catopt_dsl.span import Span

# ---------------------------------------------------------------------------------------------
# Expressions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float | int
    is_int: bool
    span: Span
    #: the literal as written (`1e-3`, `.5`): the formatter keeps it; not part of the meaning
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class Name:
    """A bare identifier: a param, var, family index, shared object or morphism name."""

    name: str
    span: Span


@dataclass(frozen=True)
class Call:
    """`func(args...)`: an atom such as `sum_squares`, or `sum(a.x, b.x)` in a coupling limit."""

    func: str
    func_span: Span
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Load:
    """`load("path.npy")`: data read relative to the spec's folder."""

    path: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / @
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # "-" or "+"
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Slice:
    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@dataclass(frozen=True)
class Star:
    """`[*]`: every member of a family."""

    span: Span


Subscript = Union["Expr", Slice, Star]


@dataclass(frozen=True)
class Index:
    base: Expr
    subscripts: tuple[Subscript, ...]
    span: Span


@dataclass(frozen=True)
class Attr:
    """`base.name`: a var of an object (`site[*].w`), or a field of a morphism (`a_usage.hours`)."""

    base: Expr
    name: str
    name_span: Span
    span: Span


@dataclass(frozen=True)
class Transpose:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class ArrayLit:
    """`[1, 2, 3]` or `[[1, 2], [3, 4]]`."""

    elements: tuple[Expr, ...]
    span: Span


Expr = Union[Number, Bool, Name, Call, Load, BinOp, UnaryOp, Index, Attr, Transpose, ArrayLit]

# ---------------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef:
    base: str  # "float" | "int" | "bool"
    dims: tuple[int, ...]  # () for a scalar
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    name: str
    type: TypeRef
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class VarDecl:
    name: str
    type: TypeRef
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Objective:
    sense: str  # "minimize" | "maximize"
    expr: Expr
    span: Span


@dataclass(frozen=True)
class ExternalLoss:
    """`minimize "module:function"(data = "data/site_0.npz");`: a loss written in the tenant's own
    framework, served by the object's `via` adapter. ``args`` are the keyword arguments as written
    (``data``: a .npz/.npy file relative to the spec's folder)."""

    sense: str
    reference: str
    args: tuple[tuple[str, str], ...]
    span: Span
    reference_span: Span
    arg_spans: tuple[Span, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Constraint:
    left: Expr
    op: str  # "<=" | ">=" | "=="
    right: Expr
    span: Span


@dataclass(frozen=True)
class Family:
    """`[i in 0..N-1]`: inclusive bounds, already evaluated to integers."""

    index: str
    start: int
    stop: int
    span: Span

    @property
    def members(self) -> range:
        return range(self.start, self.stop + 1)


@dataclass(frozen=True)
class Body:
    params: tuple[ParamDecl, ...]
    vars: tuple[VarDecl, ...]
    objectives: tuple[Objective, ...]  # the checker reports more than one
    constraints: tuple[Constraint, ...]
    #: where each `subject to { ... }` block lies (a body may have several): for the formatter
    blocks: tuple[Span, ...] = field(default=(), compare=False)
    #: objectives computed by an adapter (`minimize "module:function"(...)`); the checker allows one
    externals: tuple[ExternalLoss, ...] = ()


@dataclass(frozen=True)
class LocalProblem:
    name: str
    family: Family | None
    platform: str | None
    adapter: str | None
    body: Body
    span: Span
    name_span: Span
    platform_span: Span | None = None
    adapter_span: Span | None = None
    #: `via torch >= 1.0, < 2`: the PEP 440 specifiers on the adapter's version ("" for none)
    adapter_version: str = ""
    #: `owner "did:key:..."`: the DID the object (every member of a family) belongs to, as written;
    #: the checker validates it (docs/identity.md)
    owner: str | None = None
    owner_span: Span | None = None  # the string literal, quotes included
    #: `on cuda >= 1.0`: the PEP 440 specifiers on the hardware adapter's version ("" for none)
    platform_version: str = ""


@dataclass(frozen=True)
class SharedVariables:
    name: str
    body: Body
    span: Span
    name_span: Span


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: TypeRef
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Schema:
    name: str
    version: int
    fields: tuple[SchemaField, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class FieldMap:
    field: str
    expr: Expr
    span: Span
    field_span: Span


@dataclass(frozen=True)
class ObjRef:
    """`tenant_a` or `site[i]` as a morphism source."""

    name: str
    index: Expr | None
    span: Span


@dataclass(frozen=True)
class Morphism:
    name: str
    family: Family | None
    source: ObjRef
    target: str
    target_span: Span
    schema: str
    version: int
    schema_span: Span
    mappings: tuple[FieldMap, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Limit:
    name: str
    family: Family | None
    target: str
    target_span: Span
    constraints: tuple[Constraint, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Colimit:
    name: str
    objects: tuple[Name, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class FunctorRule:
    name: str
    expr: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Functor:
    name: str
    source: str
    target: str
    rules: tuple[FunctorRule, ...]
    span: Span
    name_span: Span
    source_span: Span
    target_span: Span


@dataclass(frozen=True)
class AddItem:
    item: LocalProblem | Morphism | Limit
    span: Span


@dataclass(frozen=True)
class RemoveItem:
    kind: str  # "LocalProblem" | "Morphism" | "Limit"
    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True)
class SetParam:
    object: str
    param: str
    value: Expr
    span: Span
    target_span: Span


@dataclass(frozen=True)
class Migrate:
    morphism: str
    schema: str
    version: int
    mappings: tuple[FieldMap, ...]  # extra/replacement mappings for the new version
    span: Span
    name_span: Span


DeltaOp = Union[AddItem, RemoveItem, SetParam, Migrate]


@dataclass(frozen=True)
class PlanDelta:
    name: str
    ops: tuple[DeltaOp, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


Item = Union[Schema, SharedVariables, LocalProblem, Morphism, Limit, Colimit, Functor, PlanDelta]


@dataclass(frozen=True)
class Comment:
    """A `// ...` or `/* ... */` comment as written (only the formatter asks for them)."""

    text: str
    span: Span


@dataclass(frozen=True)
class Spec:
    """One `.cat` file. Imports are resolved by the loader, not here."""

    file: str
    version: int | None
    imports: tuple[Import, ...]
    items: tuple[Item, ...]
    span: Span
    header_span: Span | None = field(default=None, compare=False)  # the `catopt N;` statement
