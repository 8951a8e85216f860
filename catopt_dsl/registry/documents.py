"""What the registry stores: canonical JSON of a schema or a contract, its content hash, and the
text forms users read and write.

A schema is stored as the JSON of its :class:`~catopt_dsl.ir.model.IRSchema` (name, declared
version, fields with element type, shape and default as lowered), so ``hours: float[3] = 0`` and
``hours: float[3] = [0.0, 0.0, 0.0]`` are one schema. The content hash is SHA-256 over the
canonical bytes (sorted keys, no spaces), prefixed with the schema type; registering the same
content twice finds the same version. Users see a schema as ``.cat`` text (``render_schema``),
which parses back to the same document.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catopt_dsl.diagnostics import Diagnostic, DiagnosticSink, SourceMap
from catopt_dsl.errors import ErrorCode
from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.registry.contracts import Contract, parse_contract_text
from catopt_dsl.registry.errors import InvalidSchema
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast

SCHEMA_TYPE = "CATOPT"  # a `.cat` schema declaration
CONTRACT_TYPE = "CONTRACT"  # an adapter contract (JSON)
SCHEMA_TYPES = (SCHEMA_TYPE, CONTRACT_TYPE)

Document = IRSchema | Contract


def schema_type_of(doc: Document) -> str:
    return SCHEMA_TYPE if isinstance(doc, IRSchema) else CONTRACT_TYPE


# -- canonical JSON ------------------------------------------------------------------------------


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSchema(f"Invalid schema: the default of {where} is not finite")
    if isinstance(value, list):
        for v in value:
            _check_finite(v, where)


def to_json(doc: Document) -> dict[str, Any]:
    if isinstance(doc, Contract):
        return doc.to_json()
    fields = []
    for f in doc.fields:
        _check_finite(f.default, f"`{doc.name} v{doc.version}`.{f.name}")
        fields.append({"name": f.name, "dtype": f.dtype, "shape": list(f.shape), "default": f.default})
    return {"name": doc.name, "version": doc.version, "fields": fields}


def canonical_text(doc: Document) -> str:
    return json.dumps(to_json(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(doc: Document) -> str:
    data = schema_type_of(doc).encode() + b"\0" + canonical_text(doc).encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def from_stored(schema_type: str, text: str) -> Document:
    """Rebuild a document from the canonical JSON the store holds (written by :func:`canonical_text`)."""
    obj = json.loads(text)
    if schema_type == CONTRACT_TYPE:
        return Contract.from_json(obj)
    fields = tuple(IRSchemaField(f["name"], f["dtype"], tuple(f["shape"]), f["default"]) for f in obj["fields"])
    return IRSchema(obj["name"], int(obj["version"]), fields)


# -- text forms -----------------------------------------------------------------------------------


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form; the lexer reads `1e-05` and `1e+300`
    return str(value)


def render_schema(schema: IRSchema) -> str:
    """The schema as a `.cat` declaration (no header); parses back to the same document."""
    lines = [f"schema {schema.name} v{schema.version} {{"]
    for f in schema.fields:
        ty = f.dtype + (f"[{', '.join(map(str, f.shape))}]" if f.shape else "")
        default = "" if f.default is None else f" = {_literal(f.default)}"
        lines.append(f"    {f.name}: {ty}{default};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(doc: Document) -> str:
    """The text a user reads (and the REST API returns as ``schema``)."""
    if isinstance(doc, IRSchema):
        return render_schema(doc)
    return json.dumps(doc.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_HEADER = re.compile(r"\s*catopt\s+\d+\s*;")


def _contains_load(node: Any) -> bool:
    if isinstance(node, ast.Load):
        return True
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return any(_contains_load(getattr(node, f.name)) for f in dataclasses.fields(node))
    if isinstance(node, (tuple, list)):
        return any(_contains_load(x) for x in node)
    return False


def _first_errors(diags: list[Diagnostic], shift: int) -> str:
    errors = [d for d in diags if d.severity.value == "error"]
    parts = [f"line {d.span.line - shift}, column {d.span.col}: error[{d.code.value}]: {d.message}" for d in errors[:3]]
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return "; ".join(parts)


def parse_schema_text(text: str, origin: str = "<schema>") -> IRSchema:
    """One schema from the text a client sent: exactly one `schema` declaration, optionally after a
    `catopt 1;` header. No imports and no `load()`: the server never reads files for a client.
    Raises :class:`InvalidSchema` with the checker's diagnostics."""
    from catopt_dsl.syntax.parser import parse_text

    shift = 0
    if not _HEADER.match(text):
        text, shift = "catopt 1;\n" + text, 1
    sink = DiagnosticSink()
    spec = parse_text(text, origin, sink)
    if spec is None or sink.has_errors:
        raise InvalidSchema(f"Invalid schema: {_first_errors(sink.sorted(), shift)}", sink.sorted())
    if spec.imports:
        raise InvalidSchema("Invalid schema: `import` is not allowed in a registered schema")
    if len(spec.items) != 1 or not isinstance(spec.items[0], ast.Schema):
        raise InvalidSchema("Invalid schema: the text must hold exactly one `schema Name vN { ... }` declaration")
    decl = spec.items[0]
    if _contains_load(decl):
        raise InvalidSchema("Invalid schema: `load()` is not allowed in a registered schema")
    schemas, diags = _check_and_lower([decl], origin, Path.cwd(), {}, "registry", "")
    if schemas is None:
        raise InvalidSchema(f"Invalid schema: {_first_errors(diags, shift)}", diags)
    return schemas[0]


def parse_document(text: str, schema_type: str) -> Document:
    if schema_type == CONTRACT_TYPE:
        return parse_contract_text(text)
    if schema_type == SCHEMA_TYPE:
        return parse_schema_text(text)
    raise InvalidSchema(f"Invalid schema type {schema_type!r}; this registry holds {', '.join(SCHEMA_TYPES)}")


def _check_and_lower(
    decls: list[ast.Schema], file: str, spec_dir: Path, file_dirs: dict[str, Path], name: str, digest: str
) -> tuple[tuple[IRSchema, ...] | None, list[Diagnostic]]:
    """Run the checker's schema rules on schema declarations alone, then lower them.

    The checker is given only the schemas, so the one plan-level error it adds for a file without a
    LocalProblem (E0506) is dropped: a schema file needs none.
    """
    from catopt_dsl.check.checker import Checker
    from catopt_dsl.check.scope import ExprContext
    from catopt_dsl.ir.lower import lower_plan

    sink = DiagnosticSink()
    ctx = ExprContext(spec_dir, (), file_dirs=file_dirs)
    checked = Checker(ctx, sink, file).check(decls, with_deltas=False)
    diags = [d for d in sink.sorted() if d.code is not ErrorCode.NO_OBJECTIVE]
    if any(d.severity.value == "error" for d in diags):
        return None, diags
    plan = lower_plan(checked, name, file, digest)
    return plan.schemas, diags


@dataclass(frozen=True)
class SpecSchemas:
    """The schemas a spec file declares or imports, with where each is declared."""

    schemas: tuple[IRSchema, ...]  # sorted by (name, version)
    decls: dict[tuple[str, int], ast.Schema]
    sources: SourceMap
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity.value == "error" for d in self.diagnostics)

    def span(self, name: str, version: int, field: str | None = None) -> Span:
        decl = self.decls.get((name, version))
        if decl is None:
            return Span.unknown()
        for f in decl.fields:
            if f.name == field:
                return f.span
        return decl.name_span


def load_spec_schemas(path: str | Path) -> SpecSchemas:
    """Parse ``path`` (and its imports) and check and lower every schema in it; nothing else of the
    spec is checked, so a schema-only file (``examples/schemas/common.cat``) registers as it is."""
    from catopt_dsl.syntax.loader import display_name, load_spec

    path = Path(path)
    sink = DiagnosticSink()
    shown = display_name(path)
    loaded = load_spec(path, sink, shown)
    if loaded.root is None or sink.has_errors:
        return SpecSchemas((), {}, loaded.sources, tuple(sink.sorted()))
    decls = [i for m in loaded.modules for i in m.items if isinstance(i, ast.Schema)]
    file_dirs = {name: p.parent for name, p in loaded.paths.items()}
    schemas, diags = _check_and_lower(decls, shown, path.resolve().parent, file_dirs, path.stem, loaded.digest)
    by_key: dict[tuple[str, int], ast.Schema] = {}
    for d in decls:
        by_key.setdefault((d.name, d.version), d)
    return SpecSchemas(schemas or (), by_key, loaded.sources, tuple(diags))
