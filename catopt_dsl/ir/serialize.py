"""Lossless, deterministic serialisation of the IR.

Two forms:

* :func:`plan_to_dict` / :func:`plan_from_dict`: one JSON-able dict; arrays inline as
  ``{"__array__": dtype, "shape": [...], "data": [...]}`` (flat, C order). Non-finite floats are
  written as the strings ``"nan"``, ``"inf"``, ``"-inf"`` because JSON has no spelling for them.
* :func:`plan_to_files` / :func:`plan_from_files`: ``plan.json`` plus one ``.npy`` per array
  (``a00000.npy``, ``a00001.npy``, ... in traversal order), what generated packages ship.

Every node is a dict tagged with ``"kind"``; tuples in option values are tagged too so that they
come back as tuples. ``json.dumps(sort_keys=True, indent=1)`` (:func:`dumps`) gives the same bytes
for the same plan; ``.npy`` files are written from C-contiguous arrays, whose header is fixed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRColimit,
    IRConsensus,
    IRConst,
    IRConstraint,
    IRCoupling,
    IRCouplingTerm,
    IRDelta,
    IRExpr,
    IRExternal,
    IRFunctor,
    IRIndex,
    IRMorphism,
    IRNeg,
    IRObject,
    IRParam,
    IRParamRef,
    IRPlan,
    IRSchema,
    IRSchemaField,
    IRShared,
    IRStack,
    IRTranspose,
    IRVar,
    IRVarRef,
    frozen_array,
)

FORMAT_VERSION = 3
PLAN_FILE = "plan.json"
#: the folder of a generated Python package that holds its plan (plan.json and .npy arrays)
DATA_FOLDER = "_data"

_ALLOWED_DTYPES = frozenset({"float64", "float32", "int64", "int32", "bool"})

# An array writer takes an array and returns its JSON stand-in; a reader does the reverse.
ArrayWriter = Callable[[np.ndarray], dict[str, Any]]
ArrayReader = Callable[[dict[str, Any]], np.ndarray]


# ---------------------------------------------------------------------------------------------
# Scalars and plain values
# ---------------------------------------------------------------------------------------------


def _enc_float(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _dec_float(x: Any) -> float:
    if isinstance(x, str):
        return float(x)  # "nan", "inf", "-inf"
    return float(x)


def _enc_value(v: Any, arr: ArrayWriter) -> Any:
    """Plain option / default values: scalars, strings, lists, tuples, arrays, None."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, np.ndarray):
        return arr(v)
    if isinstance(v, np.generic):
        return _enc_value(v.item(), arr)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        f = _enc_float(v)
        # A bare "nan" string would be ambiguous with a str value: tag it.
        return {"__float__": f} if isinstance(f, str) else f
    if isinstance(v, tuple):
        return {"__tuple__": [_enc_value(x, arr) for x in v]}
    if isinstance(v, list):
        return [_enc_value(x, arr) for x in v]
    raise TypeError(f"cannot serialise value of type {type(v).__name__}")


def _dec_value(v: Any, arr: ArrayReader) -> Any:
    if isinstance(v, list):
        return [_dec_value(x, arr) for x in v]
    if isinstance(v, dict):
        if "__float__" in v:
            return float(v["__float__"])
        if "__tuple__" in v:
            return tuple(_dec_value(x, arr) for x in v["__tuple__"])
        return arr(v)
    return v


# ---------------------------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _name_of(dtype: np.dtype) -> str:
    # ``dtype.name`` walks numpy's type hierarchy on every call (a third of writing a
    # 1,000-object plan's arrays); a plan holds a handful of dtypes.
    return dtype.name


def _dtype_name(a: np.ndarray) -> str:
    name = _name_of(a.dtype)
    if name not in _ALLOWED_DTYPES:
        raise TypeError(f"cannot serialise array of dtype {name}")
    return name


def _inline_writer(a: np.ndarray) -> dict[str, Any]:
    dtype = _dtype_name(a)
    flat = np.ascontiguousarray(a).reshape(-1)
    if dtype.startswith("float"):
        data: list[Any] = [_enc_float(float(x)) for x in flat]
    elif dtype == "bool":
        data = [bool(x) for x in flat]
    else:
        data = [int(x) for x in flat]
    return {"__array__": dtype, "shape": list(a.shape), "data": data}


def _inline_reader(d: dict[str, Any]) -> np.ndarray:
    dtype = d["__array__"]
    if dtype not in _ALLOWED_DTYPES:
        raise ValueError(f"unsupported array dtype {dtype!r}")
    data = d["data"]
    if dtype.startswith("float"):
        data = [_dec_float(x) for x in data]
    shape = tuple(int(n) for n in d["shape"])
    return frozen_array(np.array(data, dtype=dtype).reshape(shape), dtype)


# ---------------------------------------------------------------------------------------------
# Expressions
# ---------------------------------------------------------------------------------------------


def _shape(s: tuple[int, ...]) -> list[int]:
    return [int(n) for n in s]


def _enc_expr(e: IRExpr, arr: ArrayWriter) -> dict[str, Any]:
    if isinstance(e, IRConst):
        return {"kind": "const", "value": arr(e.value), "shape": _shape(e.shape)}
    if isinstance(e, IRParamRef):
        return {"kind": "param", "name": e.name, "shape": _shape(e.shape)}
    if isinstance(e, IRVarRef):
        return {"kind": "var", "name": e.name, "shape": _shape(e.shape)}
    if isinstance(e, IRCall):
        return {
            "kind": "call",
            "atom": e.atom,
            "args": [_enc_expr(a, arr) for a in e.args],
            "shape": _shape(e.shape),
            "options": [[k, _enc_value(v, arr)] for k, v in e.options],
        }
    if isinstance(e, IRBinary):
        return {
            "kind": "binary",
            "op": e.op,
            "left": _enc_expr(e.left, arr),
            "right": _enc_expr(e.right, arr),
            "shape": _shape(e.shape),
        }
    if isinstance(e, IRNeg):
        return {"kind": "neg", "operand": _enc_expr(e.operand, arr), "shape": _shape(e.shape)}
    if isinstance(e, IRIndex):
        key = [k if isinstance(k, int) else {"slice": [int(k[0]), int(k[1]), int(k[2])]} for k in e.key]
        return {"kind": "index", "base": _enc_expr(e.base, arr), "key": key, "shape": _shape(e.shape)}
    if isinstance(e, IRTranspose):
        return {"kind": "transpose", "operand": _enc_expr(e.operand, arr), "shape": _shape(e.shape)}
    if isinstance(e, IRStack):
        return {"kind": "stack", "elements": [_enc_expr(x, arr) for x in e.elements], "shape": _shape(e.shape)}
    raise TypeError(f"not an IR expression: {type(e).__name__}")


def _dec_expr(d: dict[str, Any], arr: ArrayReader) -> IRExpr:
    kind = d["kind"]
    shape = tuple(int(n) for n in d["shape"])
    if kind == "const":
        return IRConst(arr(d["value"]), shape)
    if kind == "param":
        return IRParamRef(d["name"], shape)
    if kind == "var":
        return IRVarRef(d["name"], shape)
    if kind == "call":
        return IRCall(
            d["atom"],
            tuple(_dec_expr(a, arr) for a in d["args"]),
            shape,
            tuple((k, _dec_value(v, arr)) for k, v in d["options"]),
        )
    if kind == "binary":
        return IRBinary(d["op"], _dec_expr(d["left"], arr), _dec_expr(d["right"], arr), shape)
    if kind == "neg":
        return IRNeg(_dec_expr(d["operand"], arr), shape)
    if kind == "index":
        key: list[int | tuple[int, int, int]] = []
        for k in d["key"]:
            if isinstance(k, dict):
                a, b, c = k["slice"]
                key.append((int(a), int(b), int(c)))
            else:
                key.append(int(k))
        return IRIndex(_dec_expr(d["base"], arr), tuple(key), shape)
    if kind == "transpose":
        return IRTranspose(_dec_expr(d["operand"], arr), shape)
    if kind == "stack":
        return IRStack(tuple(_dec_expr(x, arr) for x in d["elements"]), shape)
    raise ValueError(f"unknown expression kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------------


def _enc_param(p: IRParam, arr: ArrayWriter) -> dict[str, Any]:
    return {"name": p.name, "dtype": p.dtype, "shape": _shape(p.shape), "value": arr(p.value)}


def _dec_param(d: dict[str, Any], arr: ArrayReader) -> IRParam:
    return IRParam(d["name"], d["dtype"], tuple(d["shape"]), arr(d["value"]))


def _enc_external(e: IRExternal, arr: ArrayWriter) -> dict[str, Any]:
    return {
        "adapter": e.adapter,
        "adapter_version": e.adapter_version,
        "requirement": e.requirement,
        "reference": e.reference,
        "data_path": e.data_path,
        "data": [{"name": k, "value": arr(np.ascontiguousarray(v))} for k, v in e.data],
        "search_path": e.search_path,
        "convex": e.convex,
        "convexity": e.convexity,
        "init": [{"name": k, "value": arr(np.ascontiguousarray(v))} for k, v in e.init],
    }


def _dec_external(d: dict[str, Any], arr: ArrayReader) -> IRExternal:
    return IRExternal(
        d["adapter"],
        d["adapter_version"],
        d["requirement"],
        d["reference"],
        d["data_path"],
        tuple((x["name"], arr(x["value"])) for x in d["data"]),
        d["search_path"],
        bool(d["convex"]),
        d["convexity"],
        tuple((x["name"], arr(x["value"])) for x in d.get("init", ())),
    )


def _enc_var(v: IRVar) -> dict[str, Any]:
    return {"name": v.name, "shape": _shape(v.shape), "offset": int(v.offset)}


def _dec_var(d: dict[str, Any]) -> IRVar:
    return IRVar(d["name"], tuple(d["shape"]), int(d["offset"]))


def _enc_constraint(c: IRConstraint, arr: ArrayWriter) -> dict[str, Any]:
    return {"lhs": _enc_expr(c.lhs, arr), "op": c.op, "rhs": _enc_expr(c.rhs, arr)}


def _dec_constraint(d: dict[str, Any], arr: ArrayReader) -> IRConstraint:
    return IRConstraint(_dec_expr(d["lhs"], arr), d["op"], _dec_expr(d["rhs"], arr))


def _enc_plan(plan: IRPlan, arr: ArrayWriter) -> dict[str, Any]:
    return {
        "kind": "plan",
        "format": FORMAT_VERSION,
        "name": plan.name,
        "source": plan.source,
        "spec_hash": plan.spec_hash,
        "schemas": [
            {
                "name": s.name,
                "version": s.version,
                "fields": [
                    {"name": f.name, "dtype": f.dtype, "shape": _shape(f.shape), "default": _enc_value(f.default, arr)}
                    for f in s.fields
                ],
            }
            for s in plan.schemas
        ],
        "shared": [
            {
                "name": s.name,
                "params": [_enc_param(p, arr) for p in s.params],
                "vars": [_enc_var(v) for v in s.vars],
                "objective": None if s.objective is None else _enc_expr(s.objective, arr),
                "constraints": [_enc_constraint(c, arr) for c in s.constraints],
            }
            for s in plan.shared
        ],
        "objects": [
            _with_owner(o, {
                "name": o.name,
                "family": o.family,
                "index": o.index,
                "platform": o.platform,
                "adapter": o.adapter,
                "functors": list(o.functors),
                "params": [_enc_param(p, arr) for p in o.params],
                "vars": [_enc_var(v) for v in o.vars],
                "sense": o.sense,
                "objective": _enc_expr(o.objective, arr),
                "constraints": [_enc_constraint(c, arr) for c in o.constraints],
                # only when present: plans without adapters serialise exactly as before
                **({"external": _enc_external(o.external, arr)} if o.external is not None else {}),
            })
            for o in plan.objects
        ],
        "morphisms": [
            {
                "name": m.name,
                "source": m.source,
                "target": m.target,
                "schema": m.schema,
                "version": m.version,
                "fields": [[f, _enc_expr(e, arr)] for f, e in m.fields],
            }
            for m in plan.morphisms
        ],
        "consensus": [
            {
                "limit": c.limit,
                "object": c.object,
                "var": c.var,
                "shared": c.shared,
                "shared_var": c.shared_var,
                "shape": _shape(c.shape),
            }
            for c in plan.consensus
        ],
        "couplings": [
            {
                "name": c.name,
                "limit": c.limit,
                "rhs_expr": None if c.rhs_expr is None else _enc_expr(c.rhs_expr, arr),
                "shared": c.shared,
                "sense": c.sense,
                "rhs": arr(c.rhs),
                "shape": _shape(c.shape),
                "terms": [
                    {
                        "morphism": t.morphism,
                        "object": t.object,
                        "field": t.field,
                        "expr": _enc_expr(t.expr, arr),
                        "B": arr(t.B),
                        "b": arr(t.b),
                    }
                    for t in c.terms
                ],
            }
            for c in plan.couplings
        ],
        "functors": [
            {"name": f.name, "source": f.source, "target": f.target, "rules": [list(r) for r in f.rules]}
            for f in plan.functors
        ],
        "colimit": None if plan.colimit is None else {"name": plan.colimit.name, "shared": list(plan.colimit.shared)},
        "deltas": [{"name": d.name, "ops": list(d.ops), "result": _enc_plan(d.result, arr)} for d in plan.deltas],
    }


def _with_owner(o: IRObject, enc: dict[str, Any]) -> dict[str, Any]:
    # Written only when the spec names an owner, so a plan without owners serialises to the same
    # bytes it always did (generated packages embed it); a reader without the key sees None.
    if o.owner is not None:
        enc["owner"] = o.owner
    return enc


def _dec_plan(d: dict[str, Any], arr: ArrayReader) -> IRPlan:
    if d.get("kind") != "plan":
        raise ValueError("not a serialised catopt plan")
    if d.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported plan format {d.get('format')!r} (this catopt_dsl reads {FORMAT_VERSION})")
    return IRPlan(
        name=d["name"],
        source=d["source"],
        spec_hash=d["spec_hash"],
        schemas=tuple(
            IRSchema(
                s["name"],
                int(s["version"]),
                tuple(
                    IRSchemaField(f["name"], f["dtype"], tuple(f["shape"]), _dec_value(f["default"], arr))
                    for f in s["fields"]
                ),
            )
            for s in d["schemas"]
        ),
        shared=tuple(
            IRShared(
                s["name"],
                tuple(_dec_param(p, arr) for p in s["params"]),
                tuple(_dec_var(v) for v in s["vars"]),
                None if s["objective"] is None else _dec_expr(s["objective"], arr),
                tuple(_dec_constraint(c, arr) for c in s["constraints"]),
            )
            for s in d["shared"]
        ),
        objects=tuple(
            IRObject(
                name=o["name"],
                family=o["family"],
                index=o["index"],
                platform=o["platform"],
                adapter=o["adapter"],
                functors=tuple(o["functors"]),
                params=tuple(_dec_param(p, arr) for p in o["params"]),
                vars=tuple(_dec_var(v) for v in o["vars"]),
                sense=o["sense"],
                objective=_dec_expr(o["objective"], arr),
                constraints=tuple(_dec_constraint(c, arr) for c in o["constraints"]),
                external=_dec_external(o["external"], arr) if o.get("external") is not None else None,
                owner=o.get("owner"),
            )
            for o in d["objects"]
        ),
        morphisms=tuple(
            IRMorphism(
                m["name"],
                m["source"],
                m["target"],
                m["schema"],
                int(m["version"]),
                tuple((f, _dec_expr(e, arr)) for f, e in m["fields"]),
            )
            for m in d["morphisms"]
        ),
        consensus=tuple(
            IRConsensus(c["limit"], c["object"], c["var"], c["shared"], c["shared_var"], tuple(c["shape"]))
            for c in d["consensus"]
        ),
        couplings=tuple(
            IRCoupling(
                c["name"],
                c["shared"],
                c["sense"],
                arr(c["rhs"]),
                tuple(c["shape"]),
                tuple(
                    IRCouplingTerm(t["morphism"], t["object"], t["field"], _dec_expr(t["expr"], arr), arr(t["B"]), arr(t["b"]))
                    for t in c["terms"]
                ),
                limit=c["limit"],
                rhs_expr=None if c.get("rhs_expr") is None else _dec_expr(c["rhs_expr"], arr),
            )
            for c in d["couplings"]
        ),
        functors=tuple(
            IRFunctor(f["name"], f["source"], f["target"], tuple((a, b) for a, b in f["rules"])) for f in d["functors"]
        ),
        colimit=None if d["colimit"] is None else IRColimit(d["colimit"]["name"], tuple(d["colimit"]["shared"])),
        deltas=tuple(IRDelta(x["name"], tuple(x["ops"]), _dec_plan(x["result"], arr)) for x in d["deltas"]),
    )


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def plan_to_dict(plan: IRPlan) -> dict[str, Any]:
    """The whole plan (deltas included, recursively) as a JSON-able dict with arrays inline."""
    return _enc_plan(plan, _inline_writer)


def plan_from_dict(d: dict[str, Any]) -> IRPlan:
    """Inverse of :func:`plan_to_dict`; raises ``ValueError``/``KeyError`` on malformed input."""
    from catopt_dsl.ir.validate import validate_ir

    return validate_ir(_dec_plan(d, _inline_reader))


_CANONICAL: dict[str, Any] = {"sort_keys": True, "indent": 1, "allow_nan": False, "ensure_ascii": False}


def dumps(d: dict[str, Any]) -> str:
    """The canonical JSON text (sorted keys, one-space indent, trailing newline, no NaN literals)."""
    return json.dumps(d, **_CANONICAL) + "\n"


def plan_to_json(plan: IRPlan) -> str:
    return dumps(plan_to_dict(plan))


def plan_from_json(text: str) -> IRPlan:
    return plan_from_dict(json.loads(text))


def plan_to_files(plan: IRPlan, directory: Path | str) -> list[Path]:
    """Write ``plan.json`` and ``aNNNNN.npy`` files into ``directory``; returns them, sorted.

    Array file names follow the traversal order (equal arrays share a file), so the same plan always
    gives the same files.
    Stale ``.npy`` files of an earlier plan in the folder are removed so the folder is exactly the plan.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    # Delta results repeat most of the base plan's arrays: equal arrays share one file.
    by_content: dict[tuple[str, tuple[int, ...], bytes], str] = {}

    def writer(a: np.ndarray) -> dict[str, Any]:
        # Not np.ascontiguousarray: it turns 0-d arrays into 1-d ones.
        dtype = _dtype_name(a)
        arr = np.array(a, dtype=dtype, order="C", copy=True)
        key = (dtype, tuple(arr.shape), arr.tobytes())
        fname = by_content.get(key)
        if fname is None:
            fname = f"a{len(written):05d}.npy"
            by_content[key] = fname
            path = out / fname
            with open(path, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            written.append(path)
        return {"__npy__": fname, "dtype": dtype, "shape": list(arr.shape)}

    doc = _enc_plan(plan, writer)
    keep = {p.name for p in written}
    for stale in out.glob("a*.npy"):
        if stale.name not in keep:
            stale.unlink()
    plan_file = out / PLAN_FILE
    # dumps()'s text, written as it is encoded: json.dumps with an indent joins a list of every
    # chunk first (hundreds of MB for a 10,000-object plan), json.dump writes them one by one.
    with open(plan_file, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(doc, fh, **_CANONICAL)
        fh.write("\n")
    return sorted([plan_file, *written])


def plan_from_files(directory: Path | str) -> IRPlan:
    """Inverse of :func:`plan_to_files`."""
    src = Path(directory)

    def reader(d: dict[str, Any]) -> np.ndarray:
        if "__array__" in d:  # a hand-edited plan.json may inline small arrays
            return _inline_reader(d)
        name = d["__npy__"]
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"array file name {name!r} escapes the plan folder")
        a = np.load(src / name, allow_pickle=False)
        if list(a.shape) != list(d["shape"]) or a.dtype.name != d["dtype"]:
            raise ValueError(f"{name}: expected {d['dtype']}{d['shape']}, found {a.dtype.name}{list(a.shape)}")
        return frozen_array(a, d["dtype"])

    from catopt_dsl.ir.validate import validate_ir

    doc = json.loads((src / PLAN_FILE).read_text(encoding="utf-8"))
    return validate_ir(_dec_plan(doc, reader))
