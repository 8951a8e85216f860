"""Source text -> AST. With the grammar loader, the guard and the recovering driver beside it, the
only place that sees `lark`.

Everything that can go wrong with raw input is turned into a diagnostic here: unreadable files,
invalid UTF-8, binary data, oversized files, runaway nesting and syntax errors (every one of them:
:mod:`catopt_dsl.syntax.recover` resynchronises after each, :mod:`catopt_dsl.syntax.hints` words
them). Later stages only ever see :mod:`catopt_dsl.syntax.ast` nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from lark import Token, Tree

from catopt_dsl import limits
from catopt_dsl.diagnostics import DiagnosticSink, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.files import Folders, ReadError, Refusal, read_file
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.guard import DepthTree, guarded
from catopt_dsl.syntax.hints import describe
from catopt_dsl.syntax.recover import Outcome, parse_clean, parse_recovering

LANGUAGE_VERSION = 1
MAX_FILE_BYTES = limits.MAX_SPEC_BYTES
MAX_BRACKET_DEPTH = limits.MAX_BRACKET_DEPTH
MAX_TREE_DEPTH = limits.MAX_TREE_DEPTH
_BOM = "\ufeff"


def read_source(
    path: Path, sink: DiagnosticSink, display: str | None = None, folders: Folders | None = None
) -> str | None:
    """Read a spec file as UTF-8 text through the file gate (:mod:`catopt_dsl.files`), or report
    E0005/E0003 and return None. ``folders=None``: a file the user named on the command line."""
    name = display or str(path)
    data = read_file(path, folders, limits.MAX_SPEC_BYTES)
    if isinstance(data, ReadError):
        sink.error(ErrorCode.UNREADABLE, spec_read_message(name, data), Span.unknown(name), *spec_read_notes(data))
        return None
    return decode_source(data, name, sink)


def spec_read_message(name: str, err: ReadError) -> str:
    if err.kind is Refusal.MISSING:
        return f"no such file `{name}`"
    if err.kind is Refusal.DIRECTORY:
        return f"`{name}` is a directory, not a .cat file"
    return f"cannot read `{name}`: {err.reason}"


def spec_read_notes(err: ReadError) -> list:
    if err.kind is Refusal.TOO_LARGE:
        return [help_("split the plan with `import` or use an indexed family instead of writing objects out")]
    return []


def decode_source(data: bytes, name: str, sink: DiagnosticSink) -> str | None:
    """Bytes -> text: UTF-8 only, no NUL bytes, at most one leading BOM, line endings made ``\\n``.

    CR-only and CRLF endings become LF here, so every later position (Lark counts ``\\n``) and
    the renderer's source lines agree with what an editor shows.
    """
    if b"\x00" in data:
        line = _line_count(data[: data.index(b"\x00")])
        sink.error(ErrorCode.ENCODING, f"`{name}` contains NUL bytes: it looks like a binary file", Span(name, line, 1, line, 2))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = _line_count(head)
        col = exc.start - max(head.rfind(b"\n"), head.rfind(b"\r"))
        sink.error(
            ErrorCode.ENCODING,
            f"invalid UTF-8 byte 0x{data[exc.start]:02x} in `{name}`",
            Span(name, line, col, line, col + 1),
            help_("save the spec as UTF-8"),
        )
        return None
    if text.startswith(_BOM):
        text = text[1:]  # one byte-order mark is an encoding signature; a second one is a stray character
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _line_count(head: bytes) -> int:
    """1-based line of the position after ``head``, counting LF, CRLF and lone CR endings."""
    return head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1


def parse_text(text: str, file: str, sink: DiagnosticSink, comments: list[ast.Comment] | None = None) -> ast.Spec | None:
    """Parse one spec. Returns None (with diagnostics in ``sink``) when the text does not parse.

    ``comments``, when given, receives the file's comments in source order (the formatter's
    input; other callers have no use for them).

    Every syntax error of the file is reported, not only the first (:mod:`catopt_dsl.syntax.recover`
    resynchronises after each); a file with any syntax error yields no AST, so no later stage
    reports follow-on errors about statements the parser had to skip.

    Resource limits (tokens, nesting, list lengths, token sizes) are checked while Lark runs
    (:mod:`catopt_dsl.syntax.guard`), so refusing a hostile input costs work bounded by the limit.
    """
    # Most files parse: the clean loop first (grammar.parse_fast), the recovering driver only for a file that fails.
    with guarded(collect_comments=comments is not None) as guard:
        outcome = parse_clean(text)
    if outcome is None:
        with guarded(collect_comments=comments is not None) as guard:
            outcome = parse_recovering(text)
    if comments is not None:
        comments.extend(ast.Comment(t, Span(file, *where)) for t, where in guard.comments or ())
    if outcome.tree is None:
        _report_syntax_errors(outcome, file, sink)
        return None
    builder = _Builder(file, sink)
    spec = builder.spec(outcome.tree)
    if spec.version is None:
        sink.error(
            ErrorCode.VERSION,
            "missing language header",
            Span(file, 1, 1, 1, 2),
            help_(f"start the file with `catopt {LANGUAGE_VERSION};`"),
        )
    return spec


# ---------------------------------------------------------------------------------------------
# Syntax errors
# ---------------------------------------------------------------------------------------------


def _report_syntax_errors(outcome: Outcome, file: str, sink: DiagnosticSink) -> None:
    for problem in outcome.problems:
        r = describe(problem, file)
        sink.error(r.code, r.message, r.span, *r.notes)
    where = outcome.stop_at
    if outcome.limit is not None:
        exc = outcome.limit
        w = exc.where
        sink.error(exc.code, exc.message, Span(file, w.line, w.col, w.end_line, w.end_col), *([help_(exc.help)] if exc.help else []))
    elif outcome.stopped == "long-string" and where is not None:
        sink.error(
            ErrorCode.LIMIT,
            f"string literal longer than {limits.MAX_STRING_CHARS} characters",
            Span(file, where.line, where.col, where.line, where.col + 1),
        )
    elif outcome.stopped == "comment" and where is not None:
        sink.error(ErrorCode.LEX, "unterminated block comment", Span(file, where.line, where.col, where.line, where.col + 2),
                   help_("close it with `*/`"))
    elif not outcome.problems:  # pragma: no cover - the driver records a problem for every failure
        sink.error(ErrorCode.SYNTAX, "syntax error", Span(file, 1, 1, 1, 2))


# ---------------------------------------------------------------------------------------------
# Parse tree -> AST
# ---------------------------------------------------------------------------------------------


def _span_of(node: Tree | Token, file: str) -> Span:
    if isinstance(node, Token):
        line = node.line or 1
        col = node.column or 1
        end_line = node.end_line or line
        end_col = node.end_column or (col + len(str(node)))
        return Span(file, line, col, end_line, end_col)
    tree = cast(DepthTree, node)  # the parser's tree class holds its own position (guard.py)
    if tree.empty:
        return Span(file, 1, 1, 1, 2)
    return Span(file, tree.line, tree.column, tree.end_line, tree.end_column)


class _Builder:
    """Turns the Lark tree into AST nodes (iteratively bounded by MAX_TREE_DEPTH)."""

    def __init__(self, file: str, sink: DiagnosticSink) -> None:
        self.file = file
        self.sink = sink

    def sp(self, node: Tree | Token) -> Span:
        if type(node) is DepthTree:  # _span_of's tree case, inline: one call per AST node
            if node.empty:
                return Span(self.file, 1, 1, 1, 2)
            return Span(self.file, node.line, node.column, node.end_line, node.end_column)
        return _span_of(node, self.file)

    # -- top level ------------------------------------------------------------------------------
    def spec(self, tree: Tree) -> ast.Spec:
        version: int | None = None
        header: Span | None = None
        imports: list[ast.Import] = []
        items: list[ast.Item] = []
        for child in tree.children:
            if not isinstance(child, Tree):
                continue
            if child.data == "header":
                header = self.sp(child)
                tok = child.children[0]
                version = int(str(tok))
                if version != LANGUAGE_VERSION:
                    self.sink.error(
                        ErrorCode.VERSION,
                        f"this catoptc speaks `catopt {LANGUAGE_VERSION}`, not `catopt {version}`",
                        self.sp(tok),
                    )
            elif child.data == "import_stmt":
                imports.append(ast.Import(self.string(child.children[0]), self.sp(child)))
            else:
                item = self.item(child)
                if item is not None:
                    items.append(item)
        return ast.Spec(self.file, version, tuple(imports), tuple(items), self.sp(tree), header)

    def string(self, tok: Token | Tree) -> str:
        raw = str(tok)[1:-1]
        return raw.replace('\\"', '"').replace("\\\\", "\\")

    def item(self, tree: Tree) -> ast.Item | None:
        method = getattr(self, f"item_{tree.data}", None)
        if method is None:  # pragma: no cover - grammar and builder are kept in step by tests
            raise AssertionError(f"no builder for {tree.data}")
        return method(tree)  # type: ignore[no-any-return]

    def item_schema(self, t: Tree) -> ast.Schema:
        name, version, *fields = t.children
        out = []
        for f in fields:
            fname, ftype, default = f.children
            out.append(
                ast.SchemaField(str(fname), self.type_(ftype), self.expr(default) if default is not None else None, self.sp(f))
            )
        return ast.Schema(str(name), self.version(version), tuple(out), self.sp(t), self.sp(name))

    def version(self, tok: Token | Tree) -> int:
        """A schema version `vN`; versions travel as u32 on the wire (E0007 above that)."""
        value = int(str(tok)[1:])
        if value > limits.MAX_SCHEMA_VERSION:
            self.sink.error(
                ErrorCode.LIMIT,
                f"schema version `{tok}` is larger than {limits.MAX_SCHEMA_VERSION} (versions are u32 on the wire)",
                self.sp(tok),
            )
        return value

    def type_(self, t: Tree) -> ast.TypeRef:
        base, dims = t.children
        shape: tuple[int, ...] = ()
        if dims is not None:
            shape = tuple(int(str(d)) for d in dims.children)
        return ast.TypeRef(str(base), shape, self.sp(t))

    def body(self, members: list[Any]) -> ast.Body:
        params: list[ast.ParamDecl] = []
        vars_: list[ast.VarDecl] = []
        objectives: list[ast.Objective] = []
        constraints: list[ast.Constraint] = []
        blocks: list[Span] = []
        externals: list[ast.ExternalLoss] = []
        for m in members:
            if m.data == "param_decl":
                name, typ, value = m.children
                params.append(ast.ParamDecl(str(name), self.type_(typ), self.expr(value), self.sp(m), self.sp(name)))
            elif m.data == "var_decl":
                name, typ = m.children
                vars_.append(ast.VarDecl(str(name), self.type_(typ), self.sp(m), self.sp(name)))
            elif m.data == "objective":
                sense, e = m.children
                objectives.append(ast.Objective(str(sense), self.expr(e), self.sp(m)))
            elif m.data == "external_objective":
                externals.append(self.external(m))
            elif m.data == "constraints":
                constraints.extend(self.constraint(c) for c in m.children)
                blocks.append(self.sp(m))
        return ast.Body(
            tuple(params), tuple(vars_), tuple(objectives), tuple(constraints), tuple(blocks), tuple(externals)
        )

    def external(self, t: Tree) -> ast.ExternalLoss:
        sense, ref, *args = t.children
        assert isinstance(ref, Token)
        pairs = [(str(a.children[0]), self.string(a.children[1])) for a in args if isinstance(a, Tree)]  # type: ignore[arg-type]
        spans = tuple(self.sp(a) for a in args if isinstance(a, Tree))
        return ast.ExternalLoss(str(sense), self.string(ref), tuple(pairs), self.sp(t), self.sp(ref), spans)

    def adapter_version(self, clauses: list[Any]) -> str:
        """`>= 1.0, <= 1.9` as PEP 440 specifiers. A version lexes as numbers (`1.2.3` is `1.2` then
        `.3`); adjacent ones are one version, separated ones an error."""
        out = []
        for c in clauses:
            op, *nums = c.children
            text = str(nums[0])
            for prev, tok in zip(nums, nums[1:]):
                if (prev.end_line, prev.end_column) != (tok.line, tok.column):
                    self.sink.error(ErrorCode.SYNTAX, "an adapter version is written without spaces (e.g. `1.2.3`)", self.sp(tok))
                text += str(tok)
            out.append(f"{op} {text}")
        return ", ".join(out)

    def constraint(self, t: Tree) -> ast.Constraint:
        left, op, right = t.children
        return ast.Constraint(self.expr(left), str(op), self.expr(right), self.sp(t))

    def item_shared(self, t: Tree) -> ast.SharedVariables:
        name, *members = t.children
        return ast.SharedVariables(str(name), self.body(members), self.sp(t), self.sp(name))

    def item_local(self, t: Tree) -> ast.LocalProblem:
        name = t.children[0]
        family = platform = adapter = None
        platform_span = adapter_span = owner_span = None
        version = platform_version = ""
        owner = None
        members = []
        for c in t.children[1:]:
            if not isinstance(c, Tree):
                continue
            if c.data == "family":
                family = self.family(c)
            elif c.data == "on_clause":
                platform, platform_span = str(c.children[0]), self.sp(c.children[0])
                platform_version = self.adapter_version([v for v in c.children[1:] if isinstance(v, Tree)])
            elif c.data == "via_clause":
                adapter, adapter_span = str(c.children[0]), self.sp(c.children[0])
                version = self.adapter_version([v for v in c.children[1:] if isinstance(v, Tree)])
            elif c.data == "owner_clause":
                tok = c.children[0]
                assert isinstance(tok, Token)
                owner, owner_span = self.string(tok), self.sp(tok)
            else:
                members.append(c)
        return ast.LocalProblem(
            str(name), family, platform, adapter, self.body(members), self.sp(t), self.sp(name), platform_span, adapter_span,
            version,
            owner, owner_span,
            platform_version=platform_version,
        )

    def family(self, t: Tree) -> ast.Family:
        index, rng = t.children
        lo_e, hi_e = rng.children
        lo = self.const_int(self.expr(lo_e))
        hi = self.const_int(self.expr(hi_e))
        span = self.sp(t)
        if lo is None or hi is None:
            self.sink.error(ErrorCode.RANGE, "family bounds must be integer literals (e.g. `0..199`)", self.sp(rng))
            lo, hi = 0, -1
        elif not (limits.INT64_MIN <= lo <= limits.INT64_MAX and limits.INT64_MIN <= hi <= limits.INT64_MAX):
            self.sink.error(
                ErrorCode.LIMIT,
                "family bounds must fit in a 64-bit signed integer",
                self.sp(rng),
                note(f"indices range from {limits.INT64_MIN} to {limits.INT64_MAX}"),
            )
            lo, hi = 0, -1
        elif hi < lo:
            self.sink.error(
                ErrorCode.RANGE,
                f"empty range `{lo}..{hi}`: ranges are inclusive and need start <= end",
                self.sp(rng),
                help_(f"did you mean `{hi}..{lo}`?"),
            )
            lo, hi = 0, -1
        elif hi - lo + 1 > limits.MAX_FAMILY_MEMBERS:
            self.sink.error(
                ErrorCode.LIMIT,
                f"a family of {hi - lo + 1:,} members; a family has at most {limits.MAX_FAMILY_MEMBERS:,}",
                self.sp(rng),
            )
            lo, hi = 0, -1
        return ast.Family(str(index), lo, hi, span)

    def const_int(self, e: ast.Expr) -> int | None:
        if isinstance(e, ast.Number):
            return int(e.value) if e.is_int else None
        if isinstance(e, ast.UnaryOp):
            v = self.const_int(e.operand)
            return None if v is None else (-v if e.op == "-" else v)
        if isinstance(e, ast.BinOp) and e.op in "+-*":
            a, b = self.const_int(e.left), self.const_int(e.right)
            if a is None or b is None:
                return None
            return a + b if e.op == "+" else a - b if e.op == "-" else a * b
        return None

    def obj_ref(self, t: Tree) -> ast.ObjRef:
        name, index = t.children
        return ast.ObjRef(str(name), self.expr(index) if index is not None else None, self.sp(t))

    def field_maps(self, nodes: Iterable[Tree]) -> tuple[ast.FieldMap, ...]:
        out = []
        for f in nodes:
            fname, e = f.children
            out.append(ast.FieldMap(str(fname), self.expr(e), self.sp(f), self.sp(fname)))
        return tuple(out)

    def item_morphism(self, t: Tree) -> ast.Morphism:
        name = t.children[0]
        rest = list(t.children[1:])
        family = None
        if isinstance(rest[0], Tree) and rest[0].data == "family":
            family = self.family(rest.pop(0))
        elif rest[0] is None:
            rest.pop(0)
        source, target, schema, version, *maps = rest
        return ast.Morphism(
            str(name),
            family,
            self.obj_ref(source),
            str(target),
            self.sp(target),
            str(schema),
            self.version(version),
            self.sp(schema).merge(self.sp(version)),
            self.field_maps(maps),
            self.sp(t),
            self.sp(name),
        )

    def item_limit(self, t: Tree) -> ast.Limit:
        name = t.children[0]
        rest = list(t.children[1:])
        family = None
        if isinstance(rest[0], Tree) and rest[0].data == "family":
            family = self.family(rest.pop(0))
        elif rest[0] is None:
            rest.pop(0)
        target, *cons = rest
        return ast.Limit(
            str(name), family, str(target), self.sp(target), tuple(self.constraint(c) for c in cons), self.sp(t), self.sp(name)
        )

    def item_colimit(self, t: Tree) -> ast.Colimit:
        name, *objs = t.children
        return ast.Colimit(str(name), tuple(ast.Name(str(o), self.sp(o)) for o in objs), self.sp(t), self.sp(name))

    def item_functor(self, t: Tree) -> ast.Functor:
        name, source, target, *maps = t.children
        rules = tuple(ast.FunctorRule(m.field, m.expr, m.span, m.field_span) for m in self.field_maps(maps))
        return ast.Functor(str(name), str(source), str(target), rules, self.sp(t), self.sp(name), self.sp(source), self.sp(target))

    def item_plandelta(self, t: Tree) -> ast.PlanDelta:
        name, *ops = t.children
        out: list[ast.DeltaOp] = []
        for op in ops:
            if op.data == "add_op":
                item = self.item(op.children[0])
                assert item is not None
                out.append(ast.AddItem(item, self.sp(op)))  # type: ignore[arg-type]
            elif op.data == "remove_op":
                kind, oname = op.children
                out.append(ast.RemoveItem(str(kind), str(oname), self.sp(op), self.sp(oname)))
            elif op.data == "set_op":
                obj, param, value = op.children
                out.append(ast.SetParam(str(obj), str(param), self.expr(value), self.sp(op), self.sp(obj).merge(self.sp(param))))
            elif op.data == "migrate_op":
                mname, schema, version, *maps = op.children
                out.append(
                    ast.Migrate(
                        str(mname), str(schema), self.version(version), self.field_maps(m for m in maps if m is not None),
                        self.sp(op), self.sp(mname),
                    )
                )
        return ast.PlanDelta(str(name), tuple(out), self.sp(t), self.sp(name))

    # -- expressions ----------------------------------------------------------------------------
    def expr(self, node: Tree | Token) -> ast.Expr:
        if isinstance(node, Token):  # pragma: no cover - every atom is wrapped by an alias
            return ast.Name(str(node), self.sp(node))
        kind = node.data
        span = self.sp(node)
        ch = node.children
        if kind == "name":  # the commonest first
            return ast.Name(str(ch[0]), span)
        if kind == "number":
            text = str(ch[0])
            if "." in text or "e" in text or "E" in text:
                return ast.Number(float(text), False, span, text)
            return ast.Number(int(text), True, span, text)
        if kind == "boolean":
            return ast.Bool(str(ch[0]) == "true", span)
        if kind == "call":
            fname = ch[0]
            args = tuple(self.expr(a) for a in ch[1:] if a is not None)
            return ast.Call(str(fname), self.sp(fname), args, span)
        if kind == "load":
            return ast.Load(self.string(ch[0]), span)
        if kind == "array":
            return ast.ArrayLit(tuple(self.expr(a) for a in ch), span)
        if kind == "binop":
            left, op, right = ch
            return ast.BinOp(str(op), self.expr(left), self.expr(right), span)
        if kind == "unaryop":
            op, operand = ch
            inner = self.expr(operand)
            # Fold `-3` into a literal so `-1` is a constant int everywhere (indices, ranges).
            if isinstance(inner, ast.Number) and str(op) == "-":
                literal = inner.text[1:] if inner.text.startswith("-") else "-" + inner.text
                return ast.Number(-inner.value, inner.is_int, span, literal)
            return ast.UnaryOp(str(op), inner, span)
        if kind == "index":
            base, *subs = ch
            return ast.Index(self.expr(base), tuple(self.subscript(s) for s in subs), span)
        if kind == "attr":
            base, name = ch
            return ast.Attr(self.expr(base), str(name), self.sp(name), span)
        if kind == "transpose":
            return ast.Transpose(self.expr(ch[0]), span)
        if kind == "star":
            return ast.Star(span)  # type: ignore[return-value]
        if kind == "slice":  # pragma: no cover - only reachable through subscript()
            return self.subscript(node)  # type: ignore[return-value]
        raise AssertionError(f"unknown expression node {kind}")  # pragma: no cover

    def subscript(self, node: Tree | Token) -> ast.Subscript:
        if isinstance(node, Tree) and node.data == "slice":
            parts = [self.expr(p) if p is not None else None for p in node.children]
            while len(parts) < 3:
                parts.append(None)
            return ast.Slice(parts[0], parts[1], parts[2], self.sp(node))
        if isinstance(node, Tree) and node.data == "star":
            return ast.Star(self.sp(node))
        return self.expr(node)


