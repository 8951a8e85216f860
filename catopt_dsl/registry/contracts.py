"""Adapter contracts: the versioned JSON documents of the contract marketplace.

A contract describes what an adapter offers, so a plan can pick one by name, version range and
platform. It is registered under the subject ``contract:<name>`` and versioned like a schema.
Its JSON shape is fixed by :data:`CONTRACT_JSON_SCHEMA` (validated with ``jsonschema``)::

    {"name": "torch_units", "version": "1.2.0", "kind": "unit-adapter",
     "platforms": ["torch", "jax"], "units": {"gpu_hours": "h", "memory": "GiB"},
     "requirements": {"torch": ">=2.1"}, "api_version": 1,
     "description": "optional free text"}

``version`` is a semantic version; ``units`` maps each quantity the adapter exchanges to its unit;
``requirements`` maps each thing the adapter needs to a version range; ``api_version`` is the
adapter API it implements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catopt_dsl.registry.errors import InvalidSchema
from catopt_dsl.registry.semver import SemverError, Version

CONTRACT_PREFIX = "contract:"

CONTRACT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "catoptc adapter contract",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "version", "kind", "platforms", "units", "requirements", "api_version"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"},
        "version": {"type": "string", "minLength": 5, "maxLength": 128},
        "kind": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"},
        "platforms": {
            "type": "array",
            "minItems": 1,
            "maxItems": 256,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
        },
        "units": {
            "type": "object",
            "maxProperties": 1024,
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 64},
        },
        "requirements": {
            "type": "object",
            "maxProperties": 256,
            "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,128}$"},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 128},
        },
        "api_version": {"type": "integer", "minimum": 1, "maximum": 1000000},
        "description": {"type": "string", "maxLength": 4096},
    },
}


@dataclass(frozen=True)
class Contract:
    name: str
    version: str  # semantic version, validated
    kind: str
    platforms: tuple[str, ...]
    units: tuple[tuple[str, str], ...]  # (quantity, unit), sorted by quantity
    requirements: tuple[tuple[str, str], ...]  # (name, range), sorted by name
    api_version: int
    description: str = ""

    @property
    def subject(self) -> str:
        return CONTRACT_PREFIX + self.name

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "platforms": list(self.platforms),
            "units": dict(self.units),
            "requirements": dict(self.requirements),
            "api_version": self.api_version,
        }
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Contract:
        """Validate ``obj`` against :data:`CONTRACT_JSON_SCHEMA`; raises :class:`InvalidSchema`."""
        import jsonschema  # the `registry` extra; only contracts need it

        validator = jsonschema.Draft202012Validator(CONTRACT_JSON_SCHEMA)
        errors = sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        if errors:
            first = errors[0]
            where = "contract" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
            more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
            raise InvalidSchema(f"Invalid contract: {where}: {first.message}{more}")
        assert isinstance(obj, Mapping)
        try:
            Version.parse(obj["version"])
        except SemverError as exc:
            raise InvalidSchema(f"Invalid contract: contract.version: {exc}") from None
        return cls(
            name=obj["name"],
            version=obj["version"],
            kind=obj["kind"],
            platforms=tuple(obj["platforms"]),
            units=tuple(sorted(obj["units"].items())),
            requirements=tuple(sorted(obj["requirements"].items())),
            api_version=int(obj["api_version"]),
            description=obj.get("description", ""),
        )


def parse_contract_text(text: str) -> Contract:
    """A contract from its JSON text; malformed JSON or an invalid document is :class:`InvalidSchema`."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidSchema(f"Invalid contract: not JSON ({exc})") from None
    return Contract.from_json(obj)
