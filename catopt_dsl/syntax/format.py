"""Canonical formatting of `.cat` specs: what `catoptc fmt` writes.

The formatter prints the AST, not the tokens, so two specs that mean the same print the same
(up to comments, number spellings and blank lines). The rules, also in docs/language.md
("Formatting"):

* one statement per line, four spaces per nesting level, `{` at the end of its line, `}` alone;
* one blank line between top-level items, none after `{` or before `}`; elsewhere a blank line the
  author left between two statements is kept (several become one);
* expressions through :func:`~catopt_dsl.syntax.unparse.unparse`: spaces around binary operators,
  relations and `=`, none inside brackets, `, ` between arguments, the fewest parentheses that keep
  the tree; numbers as written (`1e-3` stays `1e-3`);
* `name: type` in declarations, `Morphism m : a -> b` and `Functor f : a -> b` as the docs write them;
* comments are kept, in order: a comment on its own line stays on its own line before what follows
  it, a comment after a statement stays after it (two spaces before it), and a comment inside a
  multi-line statement moves to the line above that statement.

Long lines are not wrapped: data belongs in `load()` files, and a wrapped expression would have to
be re-joined to be edited.

Every result is checked before anyone writes it: the output must parse to the same AST (spans and
number spellings aside) with the same comments, or :class:`FormatError` is raised and nothing is
written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from catopt_dsl.diagnostics import Diagnostic, DiagnosticSink, Severity
from catopt_dsl.errors import ErrorCode
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.parser import parse_text
from catopt_dsl.syntax.unparse import string_literal, unparse

INDENT = "    "
#: spaces between a statement and the comment that follows it on its line
TRAILING_GAP = "  "


class FormatError(Exception):
    """The formatted text would not mean what the source means: a bug in the formatter."""


@dataclass(frozen=True)
class Formatted:
    """The formatted text, or None with the diagnostics that kept the file from being formatted."""

    text: str | None
    diagnostics: tuple[Diagnostic, ...] = ()


def format_source(text: str, file: str) -> Formatted:
    """Format one spec's text. A spec that does not parse is returned with its diagnostics (only a
    missing or unsupported `catopt N;` header is no obstacle: the AST is whole without it)."""
    sink = DiagnosticSink()
    comments: list[ast.Comment] = []
    spec = parse_text(text, file, sink, comments)
    blocking = [d for d in sink.sorted() if d.severity is Severity.ERROR and d.code is not ErrorCode.VERSION]
    if spec is None or blocking:
        return Formatted(None, tuple(sink.sorted()))
    out = _Writer(text, comments).spec(spec)
    _check_same(spec, comments, out, file)
    return Formatted(out)


def _check_same(spec: ast.Spec, comments: Sequence[ast.Comment], out: str, file: str) -> None:
    sink = DiagnosticSink()
    again: list[ast.Comment] = []
    spec2 = parse_text(out, file, sink, again)
    if spec2 is None or any(d.code is not ErrorCode.VERSION for d in sink.errors()):
        first = next((d for d in sink.errors()), None)
        raise FormatError(f"the formatted text of {file} does not parse: {first.message if first else '?'}")
    if meaning(spec2) != meaning(spec):
        raise FormatError(f"the formatted text of {file} does not mean what the source means")
    if [_comment_text(c) for c in again] != [_comment_text(c) for c in comments]:
        raise FormatError(f"formatting {file} would lose or change a comment")


def meaning(node: Any) -> Any:
    """What a node means: its fields, recursively, without spans and without fields that do not
    compare (number spellings, block positions). Two specs the formatter may swap agree here."""
    if is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            meaning(getattr(node, f.name))
            for f in fields(node)
            if f.compare and f.name != "file" and not isinstance(getattr(node, f.name), Span)
        )
    if isinstance(node, tuple | list):
        return tuple(meaning(x) for x in node)
    return node


def _comment_text(c: ast.Comment) -> str:
    return "\n".join(line.rstrip() for line in c.text.split("\n"))


# ---------------------------------------------------------------------------------------------
# Layout: the AST as nested lines
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """One statement (``children is None``) or one block, with where it lies in the source."""

    head: str
    span: Span
    children: tuple[_Node, ...] | None = None
    close: str = "}"
    separate: bool = False  # at the top level: one blank line before it

    @property
    def start(self) -> tuple[int, int]:
        return (self.span.line, self.span.col)

    @property
    def end(self) -> tuple[int, int]:
        return (self.span.end_line, self.span.end_col)


def _x(e: ast.Expr | ast.Star) -> str:
    return unparse(e, 0, literals=True)


def _type(t: ast.TypeRef) -> str:
    return t.base + (f"[{', '.join(str(d) for d in t.dims)}]" if t.dims else "")


def _family(f: ast.Family | None) -> str:
    return "" if f is None else f"[{f.index} in {f.start}..{f.stop}]"


def _sorted(nodes: list[_Node]) -> tuple[_Node, ...]:
    return tuple(sorted(nodes, key=lambda n: n.start))


def _constraint(c: ast.Constraint) -> _Node:
    return _Node(f"{_x(c.left)} {c.op} {_x(c.right)};", c.span)


def _field_maps(maps: Sequence[ast.FieldMap]) -> tuple[_Node, ...]:
    return _sorted([_Node(f"{m.field} = {_x(m.expr)};", m.span) for m in maps])


def _body(body: ast.Body) -> tuple[_Node, ...]:
    nodes = [_Node(f"param {p.name}: {_type(p.type)} = {_x(p.value)};", p.span) for p in body.params]
    nodes += [_Node(f"var {v.name}: {_type(v.type)};", v.span) for v in body.vars]
    nodes += [_Node(f"{o.sense} {_x(o.expr)};", o.span) for o in body.objectives]
    nodes += [_Node(_external(o), o.span) for o in body.externals]
    placed: set[int] = set()
    for block in body.blocks:
        inside = [c for c in body.constraints if _within(c.span, block)]
        placed.update(id(c) for c in inside)
        nodes.append(_Node("subject to", block, _sorted([_constraint(c) for c in inside])))
    rest = [c for c in body.constraints if id(c) not in placed]
    if rest:  # an AST built without block positions: one block where the first constraint is
        first = min((c.span for c in rest), key=lambda s: (s.line, s.col))
        nodes.append(_Node("subject to", first, _sorted([_constraint(c) for c in rest])))
    return _sorted(nodes)


def _external(o: ast.ExternalLoss) -> str:
    args = ", ".join(f"{k} = {string_literal(v)}" for k, v in o.args)
    return f"{o.sense} {string_literal(o.reference)}({args});"


def _within(inner: Span, outer: Span) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)


def _item(item: ast.Item, prefix: str = "", separate: bool = True) -> _Node:
    if isinstance(item, ast.Schema):
        fields_ = [
            _Node(f"{f.name}: {_type(f.type)}" + (f" = {_x(f.default)}" if f.default is not None else "") + ";", f.span)
            for f in item.fields
        ]
        return _Node(f"{prefix}schema {item.name} v{item.version}", item.span, _sorted(fields_), separate=separate)
    if isinstance(item, ast.SharedVariables):
        return _Node(f"{prefix}SharedVariables {item.name}", item.span, _body(item.body), separate=separate)
    if isinstance(item, ast.LocalProblem):
        head = f"{prefix}LocalProblem {item.name}{_family(item.family)}"
        head += f" on {item.platform}" if item.platform is not None else ""
        head += f" {item.platform_version}" if item.platform is not None and item.platform_version else ""
        head += f" via {item.adapter}" if item.adapter is not None else ""
        head += f" {item.adapter_version}" if item.adapter is not None and item.adapter_version else ""
        head += f" owner {string_literal(item.owner)}" if item.owner is not None else ""
        return _Node(head, item.span, _body(item.body), separate=separate)
    if isinstance(item, ast.Morphism):
        src = item.source.name + (f"[{_x(item.source.index)}]" if item.source.index is not None else "")
        head = f"{prefix}Morphism {item.name}{_family(item.family)} : {src} -> {item.target} carries {item.schema} v{item.version}"
        return _Node(head, item.span, _field_maps(item.mappings), separate=separate)
    if isinstance(item, ast.Limit):
        head = f"{prefix}Limit {item.name}{_family(item.family)} on {item.target}"
        return _Node(head, item.span, _sorted([_constraint(c) for c in item.constraints]), separate=separate)
    if isinstance(item, ast.Colimit):
        return _Node(f"{prefix}Colimit {item.name} of {', '.join(o.name for o in item.objects)};", item.span, separate=separate)
    if isinstance(item, ast.Functor):
        rules = _sorted([_Node(f"{r.name} = {_x(r.expr)};", r.span) for r in item.rules])
        return _Node(f"{prefix}Functor {item.name} : {item.source} -> {item.target}", item.span, rules, separate=separate)
    if isinstance(item, ast.PlanDelta):
        return _Node(f"{prefix}PlanDelta {item.name}", item.span, _sorted([_delta_op(op) for op in item.ops]), separate=separate)
    raise TypeError(f"not an item: {type(item).__name__}")  # pragma: no cover


def _delta_op(op: ast.DeltaOp) -> _Node:
    if isinstance(op, ast.AddItem):
        inner = _item(op.item, "add ", separate=False)
        return _Node(inner.head, op.span, inner.children, inner.close)
    if isinstance(op, ast.RemoveItem):
        return _Node(f"remove {op.kind} {op.name};", op.span)
    if isinstance(op, ast.SetParam):
        return _Node(f"set {op.object}.{op.param} = {_x(op.value)};", op.span)
    head = f"migrate {op.morphism} to {op.schema} v{op.version}"
    if not op.mappings:
        return _Node(head + ";", op.span)
    return _Node(head, op.span, _field_maps(op.mappings), close="};")


def _spec_nodes(spec: ast.Spec) -> tuple[_Node, ...]:
    nodes: list[_Node] = []
    if spec.header_span is not None:
        nodes.append(_Node(f"catopt {spec.version};", spec.header_span))
    for k, imp in enumerate(spec.imports):
        nodes.append(_Node(f"import {string_literal(imp.path)};", imp.span, separate=k == 0))
    nodes += [_item(item) for item in spec.items]
    return _sorted(nodes)


# ---------------------------------------------------------------------------------------------
# Writing: lines, blank lines and comments
# ---------------------------------------------------------------------------------------------


class _Writer:
    def __init__(self, source: str, comments: Sequence[ast.Comment]) -> None:
        self.blank = [line.strip() == "" for line in source.split("\n")]
        self.comments = sorted(comments, key=lambda c: (c.span.line, c.span.col))
        self.next = 0  # the first comment not written yet
        self.out: list[str] = []

    def spec(self, spec: ast.Spec) -> str:
        self.block(_spec_nodes(spec), 0, None, top=True)
        text = "\n".join(line.rstrip() for line in self.out)
        return text + "\n" if text else ""

    # -- comments ----------------------------------------------------------------------------------
    def _peek(self) -> ast.Comment | None:
        return self.comments[self.next] if self.next < len(self.comments) else None

    def _before(self, pos: tuple[int, int] | None) -> ast.Comment | None:
        """The next comment if it starts before ``pos`` (None: anywhere)."""
        c = self._peek()
        if c is None or (pos is not None and (c.span.line, c.span.col) >= pos):
            return None
        return c

    def _take(self) -> ast.Comment:
        c = self.comments[self.next]
        self.next += 1
        return c

    def _comment_lines(self, c: ast.Comment, depth: int) -> None:
        first, *rest = c.text.split("\n")
        self.out.append(INDENT * depth + first)
        self.out.extend(rest)  # a block comment's own lines, as written

    def _trailing(self, line: int, until: tuple[int, int] | None) -> tuple[str, int]:
        """The comments that start on source line ``line`` before ``until`` (where the next
        statement, or the enclosing block's `}`, begins): they follow what was written."""
        texts: list[str] = []
        last = line
        while (c := self._before(until)) is not None and c.span.line == line:
            texts.append(self._take().text)
            last = c.span.end_line
        return (TRAILING_GAP + " ".join(texts) if texts else ""), last

    # -- layout ------------------------------------------------------------------------------------
    def _gap(self, after_line: int | None, before_line: int, force: bool) -> None:
        if after_line is None:
            return
        if force or any(self.blank[k - 1] for k in range(after_line + 1, before_line) if 0 < k <= len(self.blank)):
            self.out.append("")

    def block(self, nodes: Sequence[_Node], depth: int, end: tuple[int, int] | None, top: bool = False) -> None:
        last: int | None = None  # the source line the previous entry ended on
        for k, node in enumerate(nodes):
            until = nodes[k + 1].start if k + 1 < len(nodes) else end
            first = True
            while (c := self._before(node.start)) is not None:
                self._gap(last, c.span.line, force=top and node.separate and first)
                self._take()
                self._comment_lines(c, depth)
                last, first = c.span.end_line, False
            self._gap(last, node.span.line, force=top and node.separate and first)
            last = self.node(node, depth, until)
        while (c := self._before(end)) is not None:
            self._gap(last, c.span.line, force=False)
            self._take()
            self._comment_lines(c, depth)
            last = c.span.end_line

    def node(self, node: _Node, depth: int, until: tuple[int, int] | None) -> int:
        """Write ``node``; the source line it (with its trailing comments) ends on. ``until``: where
        the next statement or the enclosing `}` starts."""
        pad = INDENT * depth
        if node.children is None:
            while (c := self._before(node.end)) is not None:  # inside a statement: moved above it
                self._take()
                self._comment_lines(c, depth)
            tail, last = self._trailing(node.span.end_line, until)
            self.out.append(pad + node.head + tail)
            return max(last, node.span.end_line)
        inner_start = node.children[0].start if node.children else node.end
        head_comments: list[str] = []
        while (c := self._before(inner_start)) is not None and c.span.line == node.span.line:
            head_comments.append(self._take().text)
        if not node.children and self._before(node.end) is None and not head_comments:
            tail, last = self._trailing(node.span.end_line, until)
            self.out.append(pad + node.head + " {" + node.close + tail)
            return max(last, node.span.end_line)
        self.out.append(pad + node.head + " {" + (TRAILING_GAP + " ".join(head_comments) if head_comments else ""))
        self.block(node.children, depth + 1, node.end)
        tail, last = self._trailing(node.span.end_line, until)
        self.out.append(pad + node.close + tail)
        return max(last, node.span.end_line)
