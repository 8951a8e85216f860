"""The schema registry and contract marketplace (``docs/registry.md``).

Subjects hold numbered, immutable versions of schemas (one subject per schema name) and adapter
contracts (``contract:<name>``), with Confluent's compatibility modes, stored in SQLite (WAL) or
PostgreSQL and served over a Confluent-compatible REST API. Modules, in dependency order:
``errors``, ``semver``, ``contracts``, ``documents``, ``compat``, ``store`` / ``postgres``,
``registry``, ``client``, ``plancheck``, ``server``, ``cli``. Importing this package loads no
server or database driver.
"""

from __future__ import annotations

from catopt_dsl.registry.compat import Mode, Violation, check_compatibility
from catopt_dsl.registry.contracts import Contract
from catopt_dsl.registry.errors import IncompatibleSchema, RegistryError
from catopt_dsl.registry.plancheck import check_plan
from catopt_dsl.registry.registry import (
    Entry,
    Registry,
    RegistryView,
    default_registry_path,
    open_registry,
)
from catopt_dsl.registry.store import SqliteStore, Store

__all__ = [
    "Contract",
    "Entry",
    "IncompatibleSchema",
    "Mode",
    "Registry",
    "RegistryError",
    "RegistryView",
    "SqliteStore",
    "Store",
    "Violation",
    "check_compatibility",
    "check_plan",
    "default_registry_path",
    "open_registry",
]
