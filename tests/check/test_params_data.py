"""Param values (dtype/shape rules) and `load(...)` with temporary files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.check.data import load_data
from catopt_dsl.check.scope import ExprContext
from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast

from exprcheck_util import Env, at, span_text

# -- params -----------------------------------------------------------------------------------------


def test_literal_param_values() -> None:
    env = Env("  param k: int = 3;")
    p = env.param("param m: float[2,2] = [[1, 2], [k, 4]]")
    assert env.sink.diagnostics == []
    assert p.dtype == "float" and p.value is not None and p.value.dtype == np.float64
    np.testing.assert_array_equal(p.value, [[1, 2], [3, 4]])
    assert not p.value.flags.writeable


def test_scalar_fills_declared_shape() -> None:
    env = Env()
    p = env.param("param lo: float[4] = -1.5")
    assert p.value is not None and p.value.shape == (4,)
    np.testing.assert_array_equal(p.value, np.full(4, -1.5))


def test_literal_shape_mismatch_E0205() -> None:
    env = Env()
    p = env.param("param d: float[3] = [1, 2]")
    assert p.value is None and p.shape == (3,)
    d = env.only("E0205")
    assert at(d) == env.loc("[1, 2]")
    assert "(3,)" in d.message and "(2,)" in d.message


@pytest.mark.parametrize(
    "decl,sub",
    [
        ("param n: int = 2.5", "2.5"),
        ("param f: bool = 1", "1"),
        ("param g: float = true", "true"),
        ("param h: int[2] = [true, false]", "[true, false]"),
    ],
)
def test_param_dtype_E0203(decl: str, sub: str) -> None:
    env = Env()
    assert env.param(decl).value is None
    assert at(env.only("E0203")) == env.loc(sub)


def test_int_param_accepts_integral_floats() -> None:
    env = Env()
    p = env.param("param n: int[2] = [2.0, 3 * 1.0]")
    assert env.sink.diagnostics == []
    assert p.value is not None and p.value.dtype == np.int64
    np.testing.assert_array_equal(p.value, [2, 3])


def test_param_from_variable_E0107() -> None:
    env = Env("  var x: float[2];")
    assert env.param("param p: float[2] = 2 * x").value is None
    d = env.only("E0107")
    assert at(d) == env.loc("x")
    assert d.message == "`x` is a variable, but the value of `p` must be constant"


def test_failed_param_does_not_cascade() -> None:
    env = Env("  param bad: float[3] = [1, 2];\n  var x: float[3];")
    assert env.codes() == ["E0205"]
    assert env.type("sum(bad) + x[0]") is not None
    assert env.objective("minimize sum_squares(x - bad)")
    assert env.codes() == ["E0205"]


# -- loading ------------------------------------------------------------------------------------------


def _load(tmp: Path, path: str, allow: tuple[Path, ...] = ()) -> tuple[np.ndarray | None, DiagnosticSink, ExprContext]:
    sink = DiagnosticSink()
    ctx = ExprContext(tmp, allow)
    node = ast.Load(path, Span("t.cat", 4, 7, 4, 7 + len(path) + 8))
    return load_data(node, ctx, sink), sink, ctx


def _code(sink: DiagnosticSink) -> list[str]:
    # Every load diagnostic points at the `load(...)` call itself (built at 4:7 by `_load`).
    assert all(at(d) == (4, 7) and d.span.end_col > 7 for d in sink.diagnostics)
    return [d.code.value for d in sink.diagnostics]


def test_load_npy_and_csv(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
    (tmp_path / "v.csv").write_text("1.5\n2\n-3\n")
    (tmp_path / "row.csv").write_text("1,2,3\n")
    (tmp_path / "m.csv").write_text("1,2\n3,4\n5,6\n")
    a, sink, _ = _load(tmp_path, "a.npy")
    assert sink.diagnostics == [] and a is not None
    assert a.dtype == np.int64 and a.shape == (2, 3) and not a.flags.writeable
    v, _, _ = _load(tmp_path, "v.csv")
    np.testing.assert_array_equal(v, [1.5, 2, -3])
    r, _, _ = _load(tmp_path, "row.csv")
    assert r is not None and r.shape == (3,)
    m, _, _ = _load(tmp_path, "m.csv")
    assert m is not None and m.shape == (3, 2) and float(m[2, 1]) == 6.0


def test_load_missing_E0601(tmp_path: Path) -> None:
    a, sink, _ = _load(tmp_path, "nope.npy")
    assert a is None and _code(sink) == ["E0601"]
    assert at(sink.diagnostics[0]) == (4, 7)


def test_load_outside_E0605(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    np.save(tmp_path / "secret.npy", np.ones(2))
    a, sink, _ = _load(spec_dir, "../secret.npy")
    assert a is None and _code(sink) == ["E0605"]
    assert any("--allow-path" in n.message for n in sink.diagnostics[0].notes)
    a, sink, _ = _load(spec_dir, str(tmp_path / "secret.npy"))
    assert a is None and _code(sink) == ["E0605"]
    # --allow-path admits it
    a, sink, _ = _load(spec_dir, "../secret.npy", allow=(tmp_path,))
    assert sink.diagnostics == [] and a is not None


def test_load_symlink_escaping_E0605(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    np.save(tmp_path / "outside.npy", np.ones(2))
    os.symlink(tmp_path / "outside.npy", spec_dir / "inside.npy")
    a, sink, _ = _load(spec_dir, "inside.npy")
    assert a is None and _code(sink) == ["E0605"]


@pytest.mark.parametrize(
    "name,content",
    [
        ("bad.npy", b"this is not numpy"),
        ("trunc.npy", None),  # valid header, truncated data
        ("data.txt", b"1,2,3\n"),
        ("words.csv", b"a,b\nc,d\n"),
        ("ragged.csv", b"1,2\n3\n"),
        ("empty.csv", b""),
        ("bin.csv", b"\xff\xfe\x00\x01"),
    ],
)
def test_load_unreadable_E0602(tmp_path: Path, name: str, content: bytes | None) -> None:
    if content is None:
        np.save(tmp_path / name, np.arange(100.0))
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
    else:
        (tmp_path / name).write_bytes(content)
    a, sink, _ = _load(tmp_path, name)
    assert a is None and _code(sink) == ["E0602"]


def test_load_pickle_and_npz_and_dir_E0602(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    a, sink, _ = _load(tmp_path, "obj.npy")
    assert a is None and _code(sink) == ["E0602"] and "pickle" in sink.diagnostics[0].message
    with open(tmp_path / "z.npy", "wb") as fh:
        np.savez(fh, a=np.ones(2))
    a, sink, _ = _load(tmp_path, "z.npy")
    assert a is None and _code(sink) == ["E0602"]
    (tmp_path / "d.npy").mkdir()
    a, sink, _ = _load(tmp_path, "d.npy")
    assert a is None and _code(sink) == ["E0602"]
    np.save(tmp_path / "c.npy", np.array([1 + 2j]))
    a, sink, _ = _load(tmp_path, "c.npy")
    assert a is None and _code(sink) == ["E0602"]


def test_load_nonfinite_E0604(tmp_path: Path) -> None:
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan, 2.0]))
    (tmp_path / "inf.csv").write_text("1,2\n3,inf\n")
    a, sink, _ = _load(tmp_path, "nan.npy")
    assert a is None and _code(sink) == ["E0604"] and "[1]" in sink.diagnostics[0].message
    a, sink, _ = _load(tmp_path, "inf.csv")
    assert a is None and _code(sink) == ["E0604"] and "[1, 1]" in sink.diagnostics[0].message


def test_load_cache_reads_once(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.array([1.0, 2.0]))
    sink = DiagnosticSink()
    ctx = ExprContext(tmp_path)
    node = ast.Load("a.npy", Span.unknown())
    first = load_data(node, ctx, sink)
    np.save(tmp_path / "a.npy", np.array([9.0, 9.0]))  # a later read would see new data
    again = load_data(ast.Load("./a.npy", Span.unknown()), ctx, sink)
    assert again is first
    assert len(ctx.cache) == 1


def test_loaded_param_shape_mismatch_E0603(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.ones((2, 3)))
    env = Env(spec_dir=tmp_path)
    assert env.param('param d: float[6] = load("d.npy")').value is None
    d = env.only("E0603")
    assert span_text(env, d) == 'load("d.npy")'


def test_loaded_index_out_of_range_E0204(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.ones((4, 3)))
    env = Env(spec_dir=tmp_path, index={"i": 4})
    assert env.param('param row: float[3] = load("d.npy")[i]').value is None
    assert at(env.only("E0204")) == env.loc("i]")


def test_family_indexes_one_file_many_times(tmp_path: Path) -> None:
    data = np.arange(3000, dtype=np.float64).reshape(1000, 3)
    np.save(tmp_path / "demand.npy", data)
    base = Env(spec_dir=tmp_path)
    decl = base._parse('param d: float[3] = load("demand.npy")[i];').params[-1]
    from catopt_dsl.check.exprs import check_param
    from catopt_dsl.check.scope import IndexSymbol, Scope

    sink = DiagnosticSink()
    for i in range(1000):
        scope = Scope(base.scope)
        scope.define(IndexSymbol("i", i, Span.unknown()))
        sym = check_param(decl, scope, base.ctx, sink)
        assert sym.value is not None and float(sym.value[0]) == 3.0 * i
    assert sink.diagnostics == []
    assert len(base.ctx.cache) == 1


def test_load_in_expression_folds(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("1\n2\n3\n")
    env = Env("  var x: float[3];", spec_dir=tmp_path)
    assert env.objective('minimize sum_squares(x - load("b.csv"))')
    t = env.type('load("b.csv")[1:]')
    assert t is not None and t.const is not None
    np.testing.assert_array_equal(t.const, [2.0, 3.0])
