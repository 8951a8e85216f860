"""User strings reach generated code only through one escaping function per target, and package
names are identifiers that shadow nothing the generated code imports."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catopt_dsl.backends.cpp import render_cpp
from catopt_dsl.backends.emit import emit_target
from catopt_dsl.backends.escape import (
    cpp_str,
    inline,
    py_str,
    quote,
    rust_str,
    safe_comment,
)
from catopt_dsl.backends.naming import PY_MODULE_NAMES
from catopt_dsl.backends.python import package_name, render_python
from catopt_dsl.backends.rust import crate_name, render_rust
from catopt_dsl.compile import load_plan

REPO = Path(__file__).resolve().parents[2]
SPEC = "catopt 1;\nLocalProblem a { param p: float = 1; var x: float; minimize square(x - p); }\n"

NASTY = [
    'x"""+__import__("os").system("touch PWNED")+""".cat',
    "quote'single.cat",
    "back\\slash\\.cat",
    "new\nline.cat",
    "cr\rreturn.cat",
    "close*/comment/*.cat",
    "esc\x1b]0;title\x07.cat",
    "tab\tand\x7fdel.cat",
    "unicode \u2028 \u202e \U0001f600.cat",
    "trailing\\",
    '""".cat',
]


def _unrust(lit: str) -> str:
    return re.sub(r"\\u\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), lit[1:-1])


def _uncpp(lit: str) -> str:
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), lit[1:-1].encode("ascii"))
    return raw.decode("utf-8", "surrogatepass")


def _inert(lit: str) -> None:
    assert lit.isascii() and lit.isprintable(), lit  # no newline, CR, control or format character
    assert "*/" not in lit and '"""' not in lit[1:-1]
    body = lit[1:-1]
    assert '"' not in body.replace('\\"', "")
    assert not body.endswith("\\") or body.endswith("\\\\")


@pytest.mark.parametrize("text", NASTY)
def test_each_target_has_one_inert_round_tripping_literal(text: str) -> None:
    for target, lit in (("python", py_str(text)), ("rust", rust_str(text)), ("cpp", cpp_str(text))):
        assert quote(target, text) == lit
        _inert(lit)
    assert ast.literal_eval(py_str(text)) == text
    assert _unrust(rust_str(text)) == text
    assert _uncpp(cpp_str(text)) == text


@given(st.text())
def test_literals_round_trip_for_any_text(text: str) -> None:
    p, r, c = py_str(text), rust_str(text), cpp_str(text)
    for lit in (p, r, c):
        _inert(lit)
    assert ast.literal_eval(p) == text
    assert _unrust(r) == text
    assert _uncpp(c) == text
    comment = safe_comment(f"from {inline('cpp', text)}")
    assert comment.isascii() and comment.isprintable() and not comment.endswith("\\")


# File names cannot hold `/` (so not `*/`) or NUL; the literal tests above cover those.
@pytest.mark.parametrize(
    "name",
    [n if k == 0 else pytest.param(n, marks=pytest.mark.slow) for k, n in enumerate([n for n in NASTY if "/" not in n] + ["x.cat"])],
)
def test_spec_file_name_cannot_inject_code(tmp_path: Path, name: str) -> None:
    """A file name reaches generated Python, Rust and C++ only escaped: the generated Python
    compiles and imports, executes nothing of the name, and reports the name exactly."""
    spec = tmp_path / "spec" / (name if name.endswith(".cat") else name + ".cat")
    spec.parent.mkdir()
    spec.write_text(SPEC, encoding="utf-8")
    plan = load_plan(spec)
    for module, text in render_python(plan).items():
        compile(text, module, "exec")  # a SyntaxError here means the name broke out
    rs, _ = render_rust(plan)
    cpp = render_cpp(plan)
    for text in [*rs.values(), *cpp.values(), *render_python(plan).values()]:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", spec.name):
            assert spec.name not in text  # only ever escaped
        for line in text.splitlines():
            if line.lstrip().startswith(("//", "#")):
                assert line.isascii() and line.isprintable() and not line.rstrip().endswith("\\")
    out = tmp_path / "out"
    emit_target("python", plan, out)
    pkg = package_name(plan)
    assert pkg.isidentifier() and not pkg[0].isdigit()
    probe = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); m = importlib.import_module(sys.argv[2]); "
        "print(repr(m.SPEC_SOURCE)); print(m.Plan().solve().status)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(out), pkg], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert ast.literal_eval(proc.stdout.splitlines()[0]) == spec.name
    assert proc.stdout.splitlines()[1] == "optimal"
    assert not (tmp_path / "PWNED").exists() and not (out / "PWNED").exists()


@pytest.mark.parametrize(
    ("stem", "package"),
    [
        ("1", "plan_1"),
        ("numpy", "numpy_"),
        *(
            pytest.param(*case, marks=pytest.mark.slow)
            for case in [("3d_grid", "plan_3_d_grid")]
        ),
        *(
            pytest.param(*case, marks=pytest.mark.slow)
            for case in [
                ("typing", "typing_"),
                ("dataclasses", "dataclasses_"),
                ("catopt_dsl", "catopt_dsl_"),
                ("__future__", "future"),
                ("json", "json_"),
                ("class", "class_"),
                ("gpu_fleet", "gpu_fleet"),
            ]
        ),
    ],
)
def test_package_names_are_identifiers_that_shadow_nothing(tmp_path: Path, stem: str, package: str) -> None:
    spec = tmp_path / f"{stem}.cat"
    spec.write_text(SPEC, encoding="utf-8")
    plan = load_plan(spec)
    assert package_name(plan) == package
    assert package.isidentifier() and package not in PY_MODULE_NAMES
    assert re.fullmatch(r"catopt_[a-z0-9_]+", crate_name(plan))
    out = tmp_path / "out"
    emit_target("python", plan, out)
    # The package folder sits first on sys.path and must not hide the numpy it imports.
    probe = "import importlib, sys; sys.path.insert(0, sys.argv[1]); m = importlib.import_module(sys.argv[2]); print(m.Plan().solve().status)"
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(out), package], check=False, capture_output=True, text=True, cwd=out, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "optimal", proc.stderr
