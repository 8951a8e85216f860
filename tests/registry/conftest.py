"""Fixtures: a registry on a fresh database of either store, and a private PostgreSQL server.

``any_registry`` is parametrised over ``sqlite`` and ``postgres``, so every test that uses it is
the same suite run against both stores. The PostgreSQL half is skipped only when no server
binaries or no ``psycopg`` are installed (with the reason); a server that is installed but fails
to start is an error, not a skip.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registry_pg import PgServer, find_bin_dir

from catopt_dsl.registry.documents import parse_schema_text
from catopt_dsl.registry.registry import Registry
from catopt_dsl.registry.store import SqliteStore

STORES = ("sqlite", "postgres")


def schema(text: str):  # type: ignore[no-untyped-def]
    """An IRSchema from `.cat` text (one declaration)."""
    return parse_schema_text(text)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) installed: test.sh installs Debian's postgresql")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed (pip install 'catopt-dsl[registry]')")
    server = PgServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def registry_target(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh registry location of the parametrised kind: a file path or a postgresql:// URL."""
    if store_kind == "sqlite":
        return str(tmp_path / "registry.db")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()


@pytest.fixture
def make_registry(registry_target: str) -> Iterator[Callable[[], Registry]]:
    """Opens (more) registries on the same fresh database; all closed at the end."""
    from catopt_dsl.registry.registry import open_registry

    opened: list[Registry] = []

    def make() -> Registry:
        reg = open_registry(registry_target)
        assert isinstance(reg, Registry)
        opened.append(reg)
        return reg

    yield make
    for reg in opened:
        reg.close()


@pytest.fixture
def any_registry(make_registry: Callable[[], Registry]) -> Registry:
    return make_registry()


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(SqliteStore(tmp_path / "registry.db"))
    yield reg
    reg.close()
