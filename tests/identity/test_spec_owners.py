"""Owners named in the spec: `LocalProblem name owner "did:key:..." { ... }`.

Parsed, checked (a malformed DID is E0904 at the string; a plan naming owners names one for every
object), carried into the IR and its serialisation, formatted back, and read into ``Owners``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catopt_dsl.compile import check_file, load_plan
from catopt_dsl.identity import Identity, Owners, OwnersError
from catopt_dsl.ir.serialize import plan_from_json, plan_to_json
from catopt_dsl.syntax.format import format_source

A = Identity.from_seed(bytes([1]) * 32).did
B = Identity.from_seed(bytes([2]) * 32).did

SPEC = f"""catopt 1;

SharedVariables s {{ var z: float; }}
LocalProblem a owner "{A}" {{ var x: float; minimize square(x - 1); }}
LocalProblem b[i in 0..2] on cpu owner "{B}" {{ var x: float; minimize square(x - i); }}
Limit agree on s {{ a.x == z; b[*].x == z; }}
"""


def _write(tmp_path: Path, text: str, name: str = "owned.cat") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_owners_reach_every_object_of_the_ir(tmp_path: Path) -> None:
    plan = load_plan(_write(tmp_path, SPEC))
    assert [(o.name, o.owner) for o in plan.objects] == [("a", A), ("b[0]", B), ("b[1]", B), ("b[2]", B)]
    owners = Owners.from_plan(plan)
    assert owners is not None
    assert owners.objects_of(B, (o.name for o in plan.objects)) == ("b[0]", "b[1]", "b[2]")
    assert owners.owner_of("a") == A


def test_serialised_ir_keeps_owners_and_a_plan_without_owners_has_no_owner_key(tmp_path: Path) -> None:
    plan = load_plan(_write(tmp_path, SPEC))
    text = plan_to_json(plan)
    assert [o.get("owner") for o in json.loads(text)["objects"]] == [A, B, B, B]
    back = plan_from_json(text)
    assert [o.owner for o in back.objects] == [A, B, B, B]
    assert plan_to_json(back) == text

    plain = load_plan(_write(tmp_path, SPEC.replace(f' owner "{A}"', "").replace(f' owner "{B}"', ""), "plain.cat"))
    assert all("owner" not in o for o in json.loads(plan_to_json(plain))["objects"])
    assert Owners.from_plan(plain) is None
    # the owner is part of what the plan is: another owner, another spec hash
    assert plain.spec_hash != plan.spec_hash
    other = load_plan(_write(tmp_path, SPEC.replace(A, Identity.from_seed(bytes([3]) * 32).did), "other.cat"))
    assert other.spec_hash != plan.spec_hash


def test_fmt_writes_the_owner_back_and_is_stable() -> None:
    out = format_source(SPEC, "owned.cat")
    text = out.text
    assert f'LocalProblem a owner "{A}" {{' in text
    assert f'LocalProblem b[i in 0..2] on cpu owner "{B}" {{' in text
    assert format_source(text, "owned.cat").text == text


@pytest.mark.parametrize(
    "did, why",
    [
        ("did:web:example.com", "only did:key"),
        ("did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc", "ed25519-pub"),
        (A + "#key-1", "fragment"),
        ("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doL", "curve"),  # the spec's vector, last letter off
        ("", "did:key"),
    ],
)
def test_a_malformed_owner_is_E0904_with_the_caret_at_the_string(tmp_path: Path, did: str, why: str) -> None:
    text = SPEC.replace(f'owner "{A}"', f'owner "{did}"')
    diags = [d for d in check_file(_write(tmp_path, text)) if d.severity.value == "error"]
    assert [d.code.value for d in diags] == ["E0904"], [d.message for d in diags]
    d = diags[0]
    line = text.splitlines()[d.span.line - 1]
    assert d.span.line == 4
    assert line[d.span.col - 1 :].startswith(f'"{did}"')
    assert d.span.end_col - d.span.col == len(did) + 2  # the whole literal, quotes included
    assert why in d.message and "`a`" in d.message


def test_a_plan_that_names_owners_names_one_for_every_object(tmp_path: Path) -> None:
    text = SPEC.replace(f' owner "{B}"', "")
    diags = [d for d in check_file(_write(tmp_path, text)) if d.severity.value == "error"]
    assert [d.code.value for d in diags] == ["E0904"]
    assert "`b` has no owner" in diags[0].message
    assert (diags[0].span.line, diags[0].span.col) == (5, 14)


def test_a_delta_that_adds_an_unowned_object_to_an_owned_plan_is_refused(tmp_path: Path) -> None:
    text = SPEC + "\nPlanDelta grow { add LocalProblem c { var x: float; minimize square(x); } }\n"
    diags = [d for d in check_file(_write(tmp_path, text)) if d.severity.value == "error"]
    assert diags and all(d.code.value == "E0505" for d in diags)
    assert "`c` has no owner" in diags[0].message and "[E0904]" in diags[0].message
    owned = SPEC + f'\nPlanDelta grow {{ add LocalProblem c owner "{A}" {{ var x: float; minimize square(x); }} }}\n'
    plan = load_plan(_write(tmp_path, owned, "grow.cat"))
    assert [o.owner for o in plan.deltas[0].result.objects if o.name == "c"] == [A]


def test_a_key_ring_fills_in_but_cannot_contradict_the_spec(tmp_path: Path) -> None:
    spec = Owners({"a": A, "b[0]": B, "b[1]": B})
    assert spec.merged(Owners({"a": A})).bindings == spec.bindings
    assert spec.merged(Owners({"c": B})).owner_of("c") == B
    with pytest.raises(OwnersError, match="the spec makes .* the owner of `a`"):
        spec.merged(Owners({"a": B}), "ring.json")
    with pytest.raises(OwnersError, match="owner of `b\\[0\\]`"):
        spec.merged(Owners({"b": A}), "ring.json")
