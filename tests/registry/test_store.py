"""The registry's behaviour, run against both stores (``any_registry`` is SQLite, then PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from catopt_dsl.registry.compat import Mode
from catopt_dsl.registry.contracts import Contract
from catopt_dsl.registry.documents import content_hash, parse_schema_text
from catopt_dsl.registry.errors import (
    IncompatibleSchema,
    InvalidSchema,
    InvalidVersion,
    OperationNotPermitted,
    RegistryUnavailable,
    SchemaNotFound,
    SubjectNotFound,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionSoftDeleted,
)
from catopt_dsl.registry.registry import Registry, open_registry
from catopt_dsl.registry.store import SqliteStore

V1 = parse_schema_text("schema Allocation v1 { hours: float[3]; }")
V2 = parse_schema_text("schema Allocation v2 { hours: float[3]; priority: float = 0; }")
V2_SAME = parse_schema_text("schema Allocation v2 { hours: float[3]; priority: float = 0.0; }")
V3_NO_DEFAULT = parse_schema_text("schema Allocation v3 { hours: float[3]; priority: float = 0; tenant: int; }")
USAGE = parse_schema_text("schema Usage v1 { h: float; }")


def contract(version: str = "1.0.0", **over: object) -> Contract:
    doc: dict[str, object] = {"name": "torch_units", "version": version, "kind": "unit-adapter", "platforms": ["torch"],
                              "units": {"gpu_hours": "h"}, "requirements": {"torch": ">=2.1"}, "api_version": 1}
    doc.update(over)
    return Contract.from_json(doc)


def test_register_numbers_versions_and_finds_the_same_content(any_registry: Registry) -> None:
    r1 = any_registry.register("Allocation", V1)
    r2 = any_registry.register("Allocation", V2)
    assert (r1.version, r1.created, r2.version, r2.created) == (1, True, 2, True)
    again = any_registry.register("Allocation", V2_SAME)  # `= 0.0` and `= 0` lower to the same default
    assert (again.id, again.version, again.created) == (r2.id, 2, False)
    assert content_hash(V2) == content_hash(V2_SAME)
    assert any_registry.versions("Allocation") == [1, 2]
    assert any_registry.subjects() == ["Allocation"]
    latest = any_registry.get("Allocation")
    assert (latest.version, latest.id, latest.document) == (2, r2.id, V2)
    assert any_registry.get("Allocation", 1).document == V1
    assert any_registry.lookup("Allocation", V1).version == 1
    assert any_registry.schema_by_id(r1.id) == ("CATOPT", V1)


def test_ids_are_global_and_never_reused(any_registry: Registry) -> None:
    a = any_registry.register("Allocation", V1)
    u = any_registry.register("Usage", USAGE)
    assert a.id != u.id
    any_registry.delete("Usage")
    assert any_registry.schema_by_id(u.id) == ("CATOPT", USAGE)  # soft delete keeps the content by id
    assert any_registry.register("Allocation", V2).id not in (a.id, u.id)


def test_unknowns_raise_confluent_errors(any_registry: Registry) -> None:
    with pytest.raises(SubjectNotFound) as err:
        any_registry.versions("Nope")
    assert err.value.error_code == 40401 and err.value.message == "Subject 'Nope' not found."
    any_registry.register("Allocation", V1)
    with pytest.raises(VersionNotFound) as verr:
        any_registry.get("Allocation", 7)
    assert verr.value.error_code == 40402
    with pytest.raises(SchemaNotFound):
        any_registry.lookup("Allocation", V2)
    with pytest.raises(SchemaNotFound):
        any_registry.schema_by_id(999)


def test_declared_version_must_be_next_and_is_never_reused(any_registry: Registry) -> None:
    with pytest.raises(InvalidVersion, match="next version of `Allocation` is 1"):
        any_registry.register("Allocation", V2)
    any_registry.register("Allocation", V1)
    other_v1 = parse_schema_text("schema Allocation v1 { hours: float[4]; }")
    with pytest.raises(InvalidVersion, match="already registered with other content"):
        any_registry.register("Allocation", other_v1)
    assert any_registry.versions("Allocation") == [1]


def test_schema_must_go_to_its_own_subject(any_registry: Registry) -> None:
    with pytest.raises(InvalidSchema, match="belongs to subject `Allocation`"):
        any_registry.register("Other", V1)
    with pytest.raises(InvalidSchema):
        any_registry.register("bad/subject", V1)
    with pytest.raises(InvalidSchema, match="belongs to subject `contract:torch_units`"):
        any_registry.register("torch_units", contract())


def test_incompatible_version_is_refused_and_leaves_nothing(any_registry: Registry) -> None:
    any_registry.register("Allocation", V1)
    any_registry.register("Allocation", V2)
    with pytest.raises(IncompatibleSchema) as err:
        any_registry.register("Allocation", V3_NO_DEFAULT)
    (v,) = err.value.violations
    assert (v.field, v.new, v.old, v.mode, v.direction) == ("tenant", "v3", "v2", Mode.BACKWARD, "BACKWARD")
    assert err.value.error_code == 409
    assert any_registry.versions("Allocation") == [1, 2]
    assert any_registry.check("Allocation", V3_NO_DEFAULT) == list(err.value.violations)
    assert any_registry.check("Allocation", V3_NO_DEFAULT, Mode.FORWARD) == []


def test_config_global_and_per_subject(any_registry: Registry) -> None:
    assert any_registry.config() is None and any_registry.mode() is Mode.BACKWARD
    any_registry.set_config(Mode.FULL)
    assert any_registry.config() is Mode.FULL and any_registry.mode("Allocation") is Mode.FULL
    any_registry.set_config(Mode.FORWARD, "Allocation")
    assert any_registry.config("Allocation") is Mode.FORWARD and any_registry.mode("Allocation") is Mode.FORWARD
    assert any_registry.mode("Usage") is Mode.FULL
    any_registry.register("Allocation", V1)
    any_registry.register("Allocation", V2)
    assert any_registry.register("Allocation", V3_NO_DEFAULT).version == 3  # FORWARD allows it
    assert any_registry.delete_config("Allocation") is Mode.FORWARD
    assert any_registry.config("Allocation") is None and any_registry.mode("Allocation") is Mode.FULL
    assert any_registry.delete_config("Allocation") is None


def test_soft_delete_hides_keeps_and_restores(any_registry: Registry) -> None:
    any_registry.register("Allocation", V1)
    any_registry.register("Allocation", V2)
    assert any_registry.delete("Allocation", 2) == [2]
    assert any_registry.versions("Allocation") == [1]
    assert any_registry.versions("Allocation", deleted=True) == [1, 2]
    with pytest.raises(VersionNotFound):
        any_registry.get("Allocation", 2)
    assert any_registry.get("Allocation", 2, deleted=True).deleted
    assert any_registry.get("Allocation").version == 1
    with pytest.raises(VersionSoftDeleted):
        any_registry.delete("Allocation", 2)
    with pytest.raises(SchemaNotFound):
        any_registry.lookup("Allocation", V2)
    assert any_registry.lookup("Allocation", V2, deleted=True).version == 2
    # The number is never reused: a different v2 is refused; the same content restores it.
    with pytest.raises(InvalidVersion):
        any_registry.register("Allocation", parse_schema_text("schema Allocation v2 { hours: float[3]; p: int = 1; }"))
    restored = any_registry.register("Allocation", V2)
    assert (restored.version, restored.restored) == (2, True)
    assert any_registry.versions("Allocation") == [1, 2]
    # Deleting the subject deletes every live version; the subject then counts as not found.
    assert any_registry.delete("Allocation") == [1, 2]
    assert any_registry.subjects() == [] and any_registry.subjects(deleted=True) == ["Allocation"]
    with pytest.raises(SubjectNotFound):
        any_registry.get("Allocation")
    with pytest.raises(SubjectSoftDeleted):
        any_registry.delete("Allocation")
    with pytest.raises(OperationNotPermitted):
        any_registry.delete("Allocation", permanent=True)
    # Soft-deleted versions take no part in compatibility: v3 is checked against nothing.
    assert any_registry.register("Allocation", V3_NO_DEFAULT).version == 3


def test_contracts_are_versioned_listed_and_resolved(any_registry: Registry) -> None:
    r1 = any_registry.register("contract:torch_units", contract("1.0.0"))
    r2 = any_registry.register("contract:torch_units", contract("1.1.0", platforms=["torch", "jax"]))
    r3 = any_registry.register("contract:torch_units", contract("2.0.0-rc.1", platforms=["torch", "jax"]))
    assert (r1.version, r2.version, r3.version) == (1, 2, 3)
    other = Contract.from_json({"name": "jax_units", "version": "0.3.0", "kind": "unit-adapter", "platforms": ["jax"],
                                "units": {}, "requirements": {}, "api_version": 1})
    any_registry.register("contract:jax_units", other)
    assert any_registry.resolve("torch_units").document.version == "1.1.0"  # pre-releases need asking for
    assert any_registry.resolve("torch_units", "^1.0", platform="torch").document.version == "1.1.0"
    assert any_registry.resolve("torch_units", "~1.0").document.version == "1.0.0"
    assert any_registry.resolve("torch_units", ">=2.0.0-rc.0").document.version == "2.0.0-rc.1"
    with pytest.raises(VersionNotFound):
        any_registry.resolve("torch_units", "^3")
    with pytest.raises(VersionNotFound):
        any_registry.resolve("torch_units", "1.0.0", platform="jax")
    with pytest.raises(SubjectNotFound):
        any_registry.resolve("nope")
    assert [e.document.name for e in any_registry.contracts()] == ["jax_units", "torch_units"]
    assert [e.document.name for e in any_registry.contracts(platform="torch")] == ["torch_units"]
    assert any_registry.contracts(kind="other") == []
    with pytest.raises(InvalidVersion, match="already registered"):
        any_registry.register("contract:torch_units", contract("1.0.0", description="same semver, new content"))


def test_contract_compatibility_modes(any_registry: Registry) -> None:
    any_registry.register("contract:torch_units", contract("1.0.0", platforms=["torch", "jax"]))
    with pytest.raises(IncompatibleSchema) as err:
        any_registry.register("contract:torch_units", contract("1.1.0", units={"gpu_hours": "min"}))
    assert {v.field for v in err.value.violations} == {"platforms", "units.gpu_hours"}
    assert all(v.contract and "serve every consumer" in v.rule() for v in err.value.violations)
    any_registry.set_config(Mode.NONE, "contract:torch_units")
    assert any_registry.register("contract:torch_units", contract("2.0.0", units={"gpu_hours": "min"})).version == 2


def test_two_handles_on_one_database_see_each_other(make_registry: Callable[[], Registry]) -> None:
    a, b = make_registry(), make_registry()
    a.register("Allocation", V1)
    assert b.versions("Allocation") == [1]
    b.register("Allocation", V2)
    assert a.get("Allocation").version == 2


def test_assess_simulates_registering_in_order(any_registry: Registry) -> None:
    assert [x.status for x in any_registry.assess([V1, V2])] == ["unregistered", "unregistered"]
    any_registry.register("Allocation", V1)
    v3 = parse_schema_text("schema Allocation v3 { hours: float[3]; priority: float = 0; x: int = 1; }")
    statuses = [(x.status, x.violations) for x in any_registry.assess([V1, V2, v3])]
    assert statuses == [("registered", ()), ("new", ()), ("new", ())]
    skip = any_registry.assess([v3])[0]
    assert (skip.status, skip.next_version) == ("sequence", 2)
    differs = any_registry.assess([parse_schema_text("schema Allocation v1 { hours: float[2]; }")])[0]
    assert differs.status == "differs"
    bad = any_registry.assess([parse_schema_text("schema Allocation v2 { hours: float[3]; p: float; }")])[0]
    assert bad.status == "new" and [v.field for v in bad.violations] == ["p"]


# -- SQLite specifics --------------------------------------------------------------------------


def test_sqlite_is_in_wal_mode_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with Registry(SqliteStore(path)) as reg:
        reg.register("Allocation", V1)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with open_registry(path, create=False) as again:
        assert again.get("Allocation").document == V1


def test_sqlite_refuses_what_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable, match="no registry at"):
        open_registry(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, and it must survive" * 100)
    with pytest.raises(RegistryUnavailable):
        open_registry(junk)
    assert junk.read_bytes().startswith(b"this is not a database")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('kept')")
    with pytest.raises(RegistryUnavailable, match="not a catoptc registry"):
        open_registry(other)
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("kept",)]
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]
    with pytest.raises(RegistryUnavailable, match="folder"):
        open_registry(tmp_path)


def test_store_errors_do_not_leak_sqlite_exceptions(tmp_path: Path) -> None:
    """A write that cannot get the lock in time is a StoreError (50001), not a raw sqlite3 error."""
    from catopt_dsl.registry.errors import StoreError

    path = tmp_path / "r.db"
    reg = Registry(SqliteStore(path, timeout_s=0.2))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as err:
            reg.register("Allocation", V1)
        assert err.value.error_code == 50001
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert reg.register("Allocation", V1).version == 1
    reg.close()
