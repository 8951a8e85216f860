"""Storage behind the registry: a small transactional interface and its SQLite implementation.

The registry's logic (``registry.py``) runs inside one transaction per operation and talks to the
store only through :class:`Tx`: rows of versions, schemas and config. A write transaction holds the
store's single write lock from its first statement (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a
transaction-scoped advisory lock), so the read-check-insert of a registration is serialised across
threads and processes: concurrent writers can neither lose nor duplicate a version, and version
numbers stay gapless. A transaction that dies half way (a killed process) is rolled back by the
database, never seen half-applied.

Tables (the same in both stores)::

    meta(key, value)                       format version, and a marker that this is a registry
    schemas(id, hash UNIQUE, schema_type, document)      content, once per hash; ids never reused
    versions(subject, version, schema_id, deleted)       PRIMARY KEY (subject, version)
    config(scope, compatibility)           scope '' is the global level, else a subject
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catopt_dsl.registry.errors import RegistryUnavailable, StoreError

FORMAT_VERSION = "1"
APPLICATION = "catoptc-registry"
GLOBAL_SCOPE = ""


@dataclass(frozen=True)
class VersionRow:
    subject: str
    version: int
    schema_id: int
    deleted: bool
    schema_type: str
    hash: str
    document: str


@dataclass(frozen=True)
class SchemaRow:
    id: int
    schema_type: str
    hash: str
    document: str


class Tx(ABC):
    """One transaction's view of the store (every method runs inside it)."""

    @abstractmethod
    def subjects(self, include_deleted: bool) -> list[str]: ...

    @abstractmethod
    def versions(self, subject: str, include_deleted: bool) -> list[VersionRow]: ...

    @abstractmethod
    def version(self, subject: str, version: int) -> VersionRow | None: ...

    @abstractmethod
    def latest(self, subject: str, include_deleted: bool) -> VersionRow | None: ...

    @abstractmethod
    def version_by_hash(self, subject: str, hash_: str) -> VersionRow | None: ...

    @abstractmethod
    def max_version(self, subject: str) -> int: ...

    @abstractmethod
    def schema(self, schema_id: int) -> SchemaRow | None: ...

    @abstractmethod
    def schema_id(self, hash_: str) -> int | None: ...

    @abstractmethod
    def insert_schema(self, hash_: str, schema_type: str, document: str) -> int: ...

    @abstractmethod
    def insert_version(self, subject: str, version: int, schema_id: int) -> None: ...

    @abstractmethod
    def set_deleted(self, subject: str, version: int, deleted: bool) -> None: ...

    @abstractmethod
    def schema_versions(self, schema_id: int) -> list[tuple[str, int]]: ...

    @abstractmethod
    def config(self, scope: str) -> str | None: ...

    @abstractmethod
    def set_config(self, scope: str, compatibility: str | None) -> None: ...


class Store(ABC):
    """A registry database. ``read()`` and ``write()`` open one transaction each."""

    url: str

    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def write(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def close(self) -> None: ...


class SqlTx(Tx):
    """:class:`Tx` over a DB-API cursor; the SQL is portable between SQLite and PostgreSQL
    (``?`` placeholders are rewritten for drivers that use ``%s``)."""

    def __init__(self, cursor: Any, placeholder: str = "?") -> None:
        self._cur = cursor
        self._ph = placeholder

    def _q(self, sql: str, args: Sequence[Any] = ()) -> Any:
        if self._ph != "?":
            sql = sql.replace("?", self._ph)
        self._cur.execute(sql, tuple(args))
        return self._cur

    _ROW = (
        "SELECT v.subject, v.version, v.schema_id, v.deleted, s.schema_type, s.hash, s.document "
        "FROM versions v JOIN schemas s ON s.id = v.schema_id "
    )

    @staticmethod
    def _row(r: Sequence[Any]) -> VersionRow:
        return VersionRow(str(r[0]), int(r[1]), int(r[2]), bool(r[3]), str(r[4]), str(r[5]), str(r[6]))

    def subjects(self, include_deleted: bool) -> list[str]:
        where = "" if include_deleted else "WHERE NOT deleted "
        rows = self._q(f"SELECT DISTINCT subject FROM versions {where}").fetchall()
        return sorted(str(r[0]) for r in rows)  # sorted here: PostgreSQL collations differ from SQLite's

    def versions(self, subject: str, include_deleted: bool) -> list[VersionRow]:
        extra = "" if include_deleted else "AND NOT v.deleted "
        rows = self._q(self._ROW + f"WHERE v.subject = ? {extra}ORDER BY v.version", (subject,)).fetchall()
        return [self._row(r) for r in rows]

    def version(self, subject: str, version: int) -> VersionRow | None:
        r = self._q(self._ROW + "WHERE v.subject = ? AND v.version = ?", (subject, version)).fetchone()
        return None if r is None else self._row(r)

    def latest(self, subject: str, include_deleted: bool) -> VersionRow | None:
        extra = "" if include_deleted else "AND NOT v.deleted "
        r = self._q(self._ROW + f"WHERE v.subject = ? {extra}ORDER BY v.version DESC LIMIT 1", (subject,)).fetchone()
        return None if r is None else self._row(r)

    def version_by_hash(self, subject: str, hash_: str) -> VersionRow | None:
        r = self._q(self._ROW + "WHERE v.subject = ? AND s.hash = ?", (subject, hash_)).fetchone()
        return None if r is None else self._row(r)

    def max_version(self, subject: str) -> int:
        r = self._q("SELECT MAX(version) FROM versions WHERE subject = ?", (subject,)).fetchone()
        return int(r[0]) if r is not None and r[0] is not None else 0

    def schema(self, schema_id: int) -> SchemaRow | None:
        r = self._q("SELECT id, schema_type, hash, document FROM schemas WHERE id = ?", (schema_id,)).fetchone()
        return None if r is None else SchemaRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]))

    def schema_id(self, hash_: str) -> int | None:
        r = self._q("SELECT id FROM schemas WHERE hash = ?", (hash_,)).fetchone()
        return None if r is None else int(r[0])

    def insert_schema(self, hash_: str, schema_type: str, document: str) -> int:
        r = self._q(
            "INSERT INTO schemas (hash, schema_type, document) VALUES (?, ?, ?) RETURNING id", (hash_, schema_type, document)
        ).fetchone()
        return int(r[0])

    def insert_version(self, subject: str, version: int, schema_id: int) -> None:
        self._q("INSERT INTO versions (subject, version, schema_id, deleted) VALUES (?, ?, ?, ?)",
                (subject, version, schema_id, False))

    def set_deleted(self, subject: str, version: int, deleted: bool) -> None:
        self._q("UPDATE versions SET deleted = ? WHERE subject = ? AND version = ?", (deleted, subject, version))

    def schema_versions(self, schema_id: int) -> list[tuple[str, int]]:
        rows = self._q("SELECT subject, version FROM versions WHERE schema_id = ? AND NOT deleted", (schema_id,)).fetchall()
        return sorted((str(r[0]), int(r[1])) for r in rows)

    def config(self, scope: str) -> str | None:
        r = self._q("SELECT compatibility FROM config WHERE scope = ?", (scope,)).fetchone()
        return None if r is None else str(r[0])

    def set_config(self, scope: str, compatibility: str | None) -> None:
        self._q("DELETE FROM config WHERE scope = ?", (scope,))
        if compatibility is not None:
            self._q("INSERT INTO config (scope, compatibility) VALUES (?, ?)", (scope, compatibility))


_SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS schemas (id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, "
    "schema_type TEXT NOT NULL, document TEXT NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS versions (subject TEXT NOT NULL, version INTEGER NOT NULL CHECK (version >= 1), "
    "schema_id INTEGER NOT NULL REFERENCES schemas(id), deleted INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY (subject, version), UNIQUE (subject, schema_id))"),
    "CREATE TABLE IF NOT EXISTS config (scope TEXT PRIMARY KEY, compatibility TEXT NOT NULL)",
)


class SqliteStore(Store):
    """The default store: one SQLite file in WAL mode (readers never block the writer).

    ``synchronous=FULL`` (the default) makes every committed registration survive a power cut, not
    only a killed process; ``NORMAL`` trades that for speed (``benchmarks/bench_registry.py``
    measures both). Each thread gets its own connection (the REST server runs requests on a pool).
    With ``create=False`` a missing file is an error instead of a new registry.
    """

    def __init__(self, path: str | Path, *, create: bool = True, synchronous: str = "FULL", timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self._sync = synchronous
        self._timeout = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if not create and not self.path.is_file():
            raise RegistryUnavailable(f"no registry at {self.path} (register a schema first, or pass --registry)")
        if self.path.is_dir():
            raise RegistryUnavailable(f"{self.path} is a folder, not a registry file")
        self._init()

    # -- connections ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={self._sync}")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise RegistryUnavailable(f"cannot open registry {self.path}: {exc}") from None
        with self._lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _init(self) -> None:
        conn = self._conn()
        try:
            # WAL is a property of the file: set once, kept by every later connection.
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot switch {self.path} to WAL mode (journal_mode={mode})")
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables and "meta" not in tables:
                    raise RegistryUnavailable(f"{self.path} is an SQLite database but not a catoptc registry; not touching it")
                if "meta" in tables:
                    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                    if meta.get("application") != APPLICATION:
                        raise RegistryUnavailable(f"{self.path} is an SQLite database but not a catoptc registry; not touching it")
                    if meta.get("format") != FORMAT_VERSION:
                        raise RegistryUnavailable(
                            f"{self.path} is a registry in format {meta.get('format')}; this catoptc reads format {FORMAT_VERSION}"
                        )
                else:
                    for ddl in _SQLITE_DDL:
                        conn.execute(ddl)
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                     [("application", APPLICATION), ("format", FORMAT_VERSION)])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise RegistryUnavailable(f"cannot use {self.path} as a registry: {exc}") from None

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self, begin: str) -> Iterator[Tx]:
        conn = self._conn()
        try:
            conn.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"Error in the backend data store: {exc}") from None
        try:
            yield SqlTx(conn.cursor())
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise StoreError(f"Error in the backend data store: {exc}") from None
        except BaseException:
            _rollback(conn)
            raise

    def read(self) -> AbstractContextManager[Tx]:
        return self._tx("BEGIN")

    def write(self) -> AbstractContextManager[Tx]:
        return self._tx("BEGIN IMMEDIATE")

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:  # pragma: no cover - already closed
                pass
        self._local = threading.local()


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction left to roll back (SQLite already rolled back on the error)
