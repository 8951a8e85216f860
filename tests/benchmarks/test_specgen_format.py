"""The compiler benchmark's generated specs are laid out as `catoptc fmt` writes them, so its
"spec lines" are formatted lines (one statement per line), comparable with any formatted spec."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks import specgen
from catopt_dsl.compile import analyze

GENERATORS: list[tuple[str, Callable[[], str], bool]] = [
    ("written_out", lambda: specgen.written_out(3), True),
    ("family", lambda: specgen.family(5), True),
    ("long_sums", lambda: specgen.long_sums(2, 20), True),
    ("big_arrays", lambda: specgen.big_arrays(2, 50), True),
    ("forward_references", lambda: specgen.forward_references(10), False),  # unknown names, on purpose
    ("big_family", lambda: specgen.big_family(20), True),
]


@pytest.mark.parametrize(("name", "make", "checks"), GENERATORS, ids=[g[0] for g in GENERATORS])
def test_generated_specs_are_formatted_and_compile(name: str, make: Callable[[], str], checks: bool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = make()
    assert specgen.canonical(text) == text
    spec = specgen.write(tmp_path / f"{name}.cat", text)
    assert analyze(spec).ok is checks


def test_canonical_formats_any_spec() -> None:
    assert specgen.canonical("catopt 1; LocalProblem t{var x:float;minimize square(x);}") == (
        "catopt 1;\n\nLocalProblem t {\n    var x: float;\n    minimize square(x);\n}\n"
    )
    with pytest.raises(ValueError):
        specgen.canonical("catopt 1; LocalProblem {")
