"""Contract documents and the semantic versions and ranges they are resolved with."""

from __future__ import annotations

import json

import pytest

from catopt_dsl.registry.contracts import (
    CONTRACT_JSON_SCHEMA,
    Contract,
    parse_contract_text,
)
from catopt_dsl.registry.errors import InvalidSchema
from catopt_dsl.registry.semver import Range, SemverError, Version

GOOD = {"name": "torch_units", "version": "1.2.0", "kind": "unit-adapter", "platforms": ["torch", "jax"],
        "units": {"gpu_hours": "h", "memory": "GiB"}, "requirements": {"torch": ">=2.1"}, "api_version": 1}


def test_a_valid_contract_round_trips() -> None:
    c = Contract.from_json(GOOD)
    assert c.subject == "contract:torch_units" and c.units == (("gpu_hours", "h"), ("memory", "GiB"))
    assert Contract.from_json(c.to_json()) == c
    assert parse_contract_text(json.dumps(GOOD)) == c
    assert CONTRACT_JSON_SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"platforms": []}, "contract.platforms"),
        ({"platforms": ["torch", "torch"]}, "contract.platforms"),
        ({"version": "1.2"}, "contract.version"),
        ({"version": "01.2.0"}, "contract.version"),
        ({"api_version": 0}, "contract.api_version"),
        ({"api_version": "1"}, "contract.api_version"),
        ({"kind": "Has Spaces"}, "contract.kind"),
        ({"units": {"gpu_hours": 3}}, "contract.units.gpu_hours"),
        ({"extra": 1}, "contract:"),
        ({"name": ""}, "contract.name"),
    ],
)
def test_invalid_contracts_name_the_member(change: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidSchema) as err:
        Contract.from_json({**GOOD, **change})
    assert err.value.message.startswith("Invalid contract: " + where), err.value.message
    missing = dict(GOOD)
    del missing["units"]
    with pytest.raises(InvalidSchema, match="'units' is a required property"):
        Contract.from_json(missing)
    with pytest.raises(InvalidSchema, match="not JSON"):
        parse_contract_text("{")


def test_semver_precedence_follows_semver_org() -> None:
    # The ordering example of semver.org section 11.
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]
    versions = [Version.parse(v) for v in chain]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert Version.parse("1.0.0+build.5") == Version.parse("1.0.0")
    assert str(Version.parse("1.2.3-rc.1+b7")) == "1.2.3-rc.1+b7"
    for bad in ("1", "1.2", "1.2.3.4", "v1.2.3", "1.02.3", "1.2.3-", "01.0.0"):
        with pytest.raises(SemverError):
            Version.parse(bad)


@pytest.mark.parametrize(
    ("spec", "yes", "no"),
    [
        ("*", ["0.0.1", "9.9.9"], ["1.0.0-rc.1"]),
        ("1.2.3", ["1.2.3"], ["1.2.4"]),
        ("1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0", "2.0.0-rc.1"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.0.0", "1.9.9"], ["2.0.0"]),
        (">=1.0.0 <2.0.0", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.9"]),
        (">=1.0.0, <2", ["1.5.0"], ["2.0.0"]),
        (">1.0.0-rc.1 <=1.0.0", ["1.0.0-rc.2", "1.0.0"], ["1.0.0-rc.1", "1.0.1"]),
    ],
)
def test_ranges(spec: str, yes: list[str], no: list[str]) -> None:
    r = Range.parse(spec)
    assert all(r.matches(Version.parse(v)) for v in yes), spec
    assert not any(r.matches(Version.parse(v)) for v in no), spec


def test_bad_ranges() -> None:
    for bad in ("^x", ">=1.2.3.4", "~"):
        with pytest.raises(SemverError):
            Range.parse(bad)
