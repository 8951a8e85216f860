"""A failed statement reports once: what builds on it stays quiet, what does not still reports.

A morphism whose field fails to check (E0303, E0401, ...) is left out of the checked plan; a
coupling limit summing that field must not then claim that no morphism carries it (E0502).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catopt_dsl.compile import check_file

HEAD = """catopt 1;
schema Allocation v1 { hours: float[3]; }
SharedVariables fleet { param capacity: float[3] = [10, 10, 10]; }
LocalProblem t[i in 0..1] {
    param demand: float[3] = [4, 5, 6];
    var x: float[3];
    minimize sum_squares(x - demand);
}
"""


def _codes(tmp_path: Path, text: str) -> list[str]:
    spec = tmp_path / "p.cat"
    spec.write_text(text, encoding="utf-8")
    return sorted(d.code.value for d in check_file(spec) if d.severity.value == "error")


@pytest.mark.parametrize(
    ("morphisms", "codes"),
    [
        # the case: a non-affine field, then a coupling over it
        ("Morphism m : t[0] -> fleet carries Allocation v1 { hours = square(x); }", ["E0303"]),
        # a morphism family: each member reports its field once
        ("Morphism m[i in 0..1] : t[i] -> fleet carries Allocation v1 { hours = x[0] * x; }", ["E0303", "E0303"]),
        # an unknown schema version: the morphism never checks
        ("Morphism m : t[0] -> fleet carries Allocation v9 { hours = x; }", ["E0401"]),
        # an unknown source object
        ("Morphism m : nobody -> fleet carries Allocation v1 { hours = x; }", ["E0101"]),
    ],
    ids=["nonaffine_field", "family_member", "unknown_schema", "unknown_source"],
)
def test_a_failed_morphism_gives_no_follow_on_coupling_error(tmp_path: Path, morphisms: str, codes: list[str]) -> None:
    text = HEAD + morphisms + "\nLimit cap on fleet { sum(*.hours) <= capacity; }\n"
    assert _codes(tmp_path, text) == codes


def test_a_coupling_over_a_field_no_morphism_has_still_reports(tmp_path: Path) -> None:
    text = (
        HEAD
        + "Morphism m : t[0] -> fleet carries Allocation v1 { hours = x; }\n"
        + "Limit cap on fleet { sum(*.minutes) <= capacity; }\n"
    )
    assert _codes(tmp_path, text) == ["E0502"]


def test_a_coupling_into_a_block_with_only_failed_morphisms_elsewhere_still_reports(tmp_path: Path) -> None:
    # The broken morphism goes into `other`; `fleet` has none, so E0502 there is no follow-on.
    text = (
        HEAD
        + "SharedVariables other { param c: float[3] = [1, 1, 1]; }\n"
        + "Morphism m : t[0] -> other carries Allocation v1 { hours = square(x); }\n"
        + "Limit cap on fleet { sum(*.hours) <= capacity; }\n"
    )
    assert _codes(tmp_path, text) == ["E0303", "E0502"]
