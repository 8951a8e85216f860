"""Emitted Python is black's format without running black on it (emit speed), in every case."""

from __future__ import annotations

from pathlib import Path

import black
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catopt_dsl.backends.python import render_python
from catopt_dsl.compile import analyze, load_plan

ROOT = Path(__file__).resolve().parents[2]
MODE = black.Mode(line_length=100)
SPECS = (
    sorted((ROOT / "examples").glob("*.cat"))
    + [ROOT / "tests" / "cases" / "keywords" / "keywords.cat", ROOT / "tests" / "cases" / "naming" / "edges.cat"]
    + sorted((ROOT / "tests" / "plans" / "cases").glob("*.cat"))
)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_black_leaves_every_emitted_module_unchanged(spec: Path) -> None:
    for module, text in render_python(load_plan(spec)).items():
        assert black.format_str(text, mode=MODE) == text, module


names = st.from_regex(r"[a-z][a-z0-9_]{0,60}", fullmatch=True).filter(lambda s: not s.endswith("_"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=names, params=st.lists(names, min_size=1, max_size=8, unique=True), fields=st.lists(names, min_size=1, max_size=6, unique=True))
def test_long_and_many_names_still_give_black_format(tmp_path: Path, obj: str, params: list[str], fields: list[str]) -> None:
    """Names long enough to push collections past 100 columns take the wrapped (or black) path."""
    body = " ".join(f"param p_{p}: float = 1;" for p in params)
    schema = " ".join(f"f_{f}: float = 0;" for f in fields)
    text = (
        f"catopt 1;\nschema S_{obj} v1 {{ {schema} }}\nSharedVariables pool {{ param cap: float = 1; }}\n"
        f"LocalProblem o_{obj} {{ {body} var x: float; minimize square(x - p_{params[0]}); }}\n"
        f"Morphism m : o_{obj} -> pool carries S_{obj} v1 {{ f_{fields[0]} = x; }}\n"
        f"Limit lim on pool {{ sum(m.f_{fields[0]}) <= cap; }}\n"
    )
    spec = tmp_path / "long.cat"
    spec.write_text(text, encoding="utf-8")
    a = analyze(spec)
    if a.plan is None:  # a name the language refuses (a keyword, a collision): nothing to emit
        return
    for module, out in render_python(a.plan).items():
        assert black.format_str(out, mode=MODE) == out, module


def test_long_one_line_docstrings_are_black_format_as_written(tmp_path: Path) -> None:
    """A settable param's one-line docstring longer than the line limit (the usual long line: it
    names the param and its shape) is left as written, and black agrees with it."""
    text = (
        "catopt 1;\nSharedVariables pool { param cap: float[4] = [1, 1, 1, 1]; }\n"
        "LocalProblem t0 on cuda { param demand_in_every_hour_of_the_window: float[4] = [1, 2, 3, 4];\n"
        "var x: float[4]; minimize sum_squares(x - demand_in_every_hour_of_the_window); }\n"
    )
    spec = tmp_path / "doc.cat"
    spec.write_text(text, encoding="utf-8")
    modules = render_python(load_plan(spec))
    long_docs = [
        line for out in modules.values() for line in out.splitlines()
        if len(line) > 100 and line.lstrip().startswith('"""')
    ]
    assert long_docs, "the spec must produce a one-line docstring over the limit"
    for module, out in modules.items():
        assert black.format_str(out, mode=MODE) == out, module
