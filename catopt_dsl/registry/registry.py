"""The registry: subjects of numbered, immutable versions, compatibility modes, soft deletion.

Two implementations share one interface, :class:`RegistryView`: :class:`Registry` runs the logic
here against a :class:`~catopt_dsl.registry.store.Store` (SQLite or PostgreSQL), and
:class:`~catopt_dsl.registry.client.RemoteRegistry` calls a registry server over its REST API.
Everything that only reads (``history``, ``check``, ``assess``, contract resolution) is written
once, on the interface, so a local file and a server give the same answers.

Versions. A subject's versions are numbered 1, 2, 3, ... in registration order and never reused
(a soft-deleted version keeps its number). A schema's subject is its name and its registry version
is its declared version: ``Allocation v3`` can only be registered as version 3 of ``Allocation``,
so the number on the wire (``RecordHeader.version``) and the registry's agree. A contract's subject
is ``contract:<name>``; its semantic version is free (unique within the subject) and its registry
version is the next number. Registering content that is already registered (same hash) returns
the existing version, as Confluent does; registering the content of a soft-deleted version
restores it (after the same compatibility check a new version gets).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from catopt_dsl.ir.model import IRSchema
from catopt_dsl.registry.compat import (
    DEFAULT_MODE,
    Mode,
    Violation,
    check_compatibility,
)
from catopt_dsl.registry.contracts import CONTRACT_PREFIX, Contract
from catopt_dsl.registry.documents import (
    Document,
    canonical_text,
    content_hash,
    from_stored,
    render,
    schema_type_of,
)
from catopt_dsl.registry.errors import (
    IncompatibleSchema,
    InvalidSchema,
    InvalidVersion,
    OperationNotPermitted,
    SchemaNotFound,
    SubjectNotFound,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionSoftDeleted,
)
from catopt_dsl.registry.semver import Range, SemverError
from catopt_dsl.registry.store import GLOBAL_SCOPE, Store, Tx, VersionRow

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; only for the type checker

VersionRef = int | Literal["latest"]
DEFAULT_FILE = "catopt-registry.db"
ENV_VAR = "CATOPT_REGISTRY"
MAX_SUBJECT_LENGTH = 255


@dataclass(frozen=True)
class Entry:
    """One version of a subject."""

    subject: str
    version: int
    id: int  # global id of the content (the same content under two subjects shares it)
    schema_type: str
    document: Document
    hash: str
    deleted: bool = False

    @property
    def text(self) -> str:
        return render(self.document)

    def to_json(self) -> dict[str, object]:
        return {"subject": self.subject, "version": self.version, "id": self.id, "schema": self.text,
                "schemaType": self.schema_type}


@dataclass(frozen=True)
class Registration:
    id: int
    version: int
    created: bool  # False: the content was already registered (or was restored)
    restored: bool = False


@dataclass(frozen=True)
class Assessment:
    """Where a document stands against the registry, without registering it.

    ``status``: ``registered`` (this exact content is a live version), ``differs`` (the declared
    version is registered with other content), ``deleted`` (the declared version was soft-deleted),
    ``sequence`` (a schema whose declared version is not the subject's next, ``next_version``),
    ``unregistered`` (the subject has no version at all: nothing to be compatible with), or ``new``
    (registrable content; ``violations`` say whether the subject's mode accepts it).
    """

    subject: str
    status: str
    mode: Mode
    registered: Entry | None = None
    violations: tuple[Violation, ...] = ()
    next_version: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("registered", "unregistered") or (self.status == "new" and not self.violations)


def subject_of(doc: Document) -> str:
    return doc.name if isinstance(doc, IRSchema) else doc.subject


def check_subject_name(subject: str) -> None:
    if not subject or len(subject) > MAX_SUBJECT_LENGTH or "/" in subject or any(ord(c) < 32 for c in subject):
        raise InvalidSchema(f"Invalid subject name {subject!r}: 1 to {MAX_SUBJECT_LENGTH} characters, no `/` or control characters")


def check_document_subject(subject: str, doc: Document) -> None:
    """A subject holds one kind of document, named after it (see the module docstring)."""
    check_subject_name(subject)
    want = subject_of(doc)
    if subject != want:
        what = "schema" if isinstance(doc, IRSchema) else "contract"
        raise InvalidSchema(f"Invalid schema: a {what} named `{doc.name}` belongs to subject `{want}`, not `{subject}`")


class RegistryView(ABC):
    """What every registry answers; the read-side logic lives here, once."""

    url: str

    @abstractmethod
    def subjects(self, deleted: bool = False) -> list[str]: ...

    @abstractmethod
    def versions(self, subject: str, deleted: bool = False) -> list[int]: ...

    @abstractmethod
    def get(self, subject: str, version: VersionRef = "latest", deleted: bool = False) -> Entry: ...

    @abstractmethod
    def lookup(self, subject: str, doc: Document, deleted: bool = False) -> Entry: ...

    @abstractmethod
    def schema_by_id(self, schema_id: int) -> tuple[str, Document]: ...

    @abstractmethod
    def register(self, subject: str, doc: Document) -> Registration: ...

    @abstractmethod
    def config(self, subject: str | None = None) -> Mode | None:
        """The configured level (``None``: a subject without its own level)."""

    @abstractmethod
    def set_config(self, mode: Mode, subject: str | None = None) -> None: ...

    @abstractmethod
    def delete_config(self, subject: str) -> Mode | None: ...

    @abstractmethod
    def delete(self, subject: str, version: VersionRef | None = None, permanent: bool = False) -> list[int]:
        """Soft-delete one version (or every live version): hidden, but kept and never reused."""

    def close(self) -> None:  # noqa: B027 (optional hook: views without resources need not override it)
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- derived reads --------------------------------------------------------------------------
    def mode(self, subject: str | None = None) -> Mode:
        """The level in force for ``subject``: its own, else the global one, else BACKWARD."""
        if subject is not None:
            own = self.config(subject)
            if own is not None:
                return own
        return self.config(None) or DEFAULT_MODE

    def history(self, subject: str) -> list[Entry]:
        """The live versions of ``subject``, oldest first (empty for an unknown subject)."""
        try:
            numbers = self.versions(subject)
        except SubjectNotFound:
            return []
        return [self.get(subject, n) for n in numbers]

    def check(self, subject: str, doc: Document, mode: Mode | None = None) -> list[Violation]:
        """The violations registering ``doc`` would meet (content already registered meets none)."""
        history = self.history(subject)
        h = content_hash(doc)
        if any(e.hash == h for e in history):
            return []
        return check_compatibility(subject, doc, [(e.version, e.document) for e in history], mode or self.mode(subject))

    def assess(self, docs: Sequence[Document], mode: Mode | None = None) -> list[Assessment]:
        """Where each document stands, as if they were registered in the order given (each subject's
        unregistered versions are checked against the registry's live versions plus the earlier
        ones of ``docs``). One :class:`Assessment` per document, in the same order."""
        out: list[Assessment] = []
        state: dict[str, tuple[Mode, list[int], list[tuple[int, Document]], set[str], int]] = {}
        for doc in docs:
            subject = subject_of(doc)
            if subject not in state:
                used = mode or self.mode(subject)
                try:
                    numbers = self.versions(subject, deleted=True)
                except SubjectNotFound:
                    numbers = []
                history = self.history(subject) if numbers else []
                state[subject] = (used, numbers, [(e.version, e.document) for e in history],
                                  {e.hash for e in history}, max(numbers, default=0))
            used, numbers, sim, hashes, top = state[subject]
            if not numbers:
                out.append(Assessment(subject, "unregistered", used))
                continue
            h = content_hash(doc)
            if isinstance(doc, IRSchema) and doc.version in numbers:
                entry = self.get(subject, doc.version, deleted=True)
                status = "deleted" if entry.deleted else "registered" if entry.hash == h else "differs"
                out.append(Assessment(subject, status, used, entry))
                continue
            if h in hashes:
                out.append(Assessment(subject, "registered", used, self.lookup(subject, doc)))
                continue
            if isinstance(doc, IRSchema) and doc.version != top + 1:
                out.append(Assessment(subject, "sequence", used, next_version=top + 1))
                continue
            violations = check_compatibility(subject, doc, sim, used)
            out.append(Assessment(subject, "new", used, None, tuple(violations)))
            top += 1
            sim.append((top, doc))
            hashes.add(h)
            state[subject] = (used, numbers, sim, hashes, top)
        return out

    # -- the contract marketplace ---------------------------------------------------------------
    def contracts(self, kind: str | None = None, platform: str | None = None) -> list[Entry]:
        """The latest live version of every contract, optionally of one kind or for one platform."""
        out = []
        for subject in self.subjects():
            if not subject.startswith(CONTRACT_PREFIX):
                continue
            entry = self.get(subject, "latest")
            doc = entry.document
            assert isinstance(doc, Contract)
            if (kind is None or doc.kind == kind) and (platform is None or platform in doc.platforms):
                out.append(entry)
        return out

    def resolve(self, name: str, spec: str = "*", platform: str | None = None) -> Entry:
        """The highest semantic version of contract ``name`` matching the range ``spec`` (and platform)."""
        try:
            wanted = Range.parse(spec)
        except SemverError as exc:
            raise InvalidVersion(str(exc)) from None
        subject = CONTRACT_PREFIX + name
        best: Entry | None = None
        for entry in self.history(subject):
            doc = entry.document
            assert isinstance(doc, Contract)
            if not wanted.matches(doc.semver) or (platform is not None and platform not in doc.platforms):
                continue
            if best is None or doc.semver > best.document.semver:  # type: ignore[union-attr]
                best = entry
        if best is None:
            if not self.history(subject):
                raise SubjectNotFound(subject)
            where = f" for platform `{platform}`" if platform else ""
            raise VersionNotFound(subject, f"matching `{wanted.text}`{where}")
        return best


class Registry(RegistryView):
    """A registry over a local :class:`Store` (one transaction per call)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.url = store.url

    def close(self) -> None:
        self.store.close()

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _entry(row: VersionRow) -> Entry:
        return Entry(row.subject, row.version, row.schema_id, row.schema_type, from_stored(row.schema_type, row.document),
                     row.hash, row.deleted)

    @staticmethod
    def _mode(tx: Tx, subject: str) -> Mode:
        value = tx.config(subject) or tx.config(GLOBAL_SCOPE)
        return Mode(value) if value else DEFAULT_MODE

    @staticmethod
    def _resolve(tx: Tx, subject: str, version: VersionRef, deleted: bool) -> VersionRow:
        # Two indexed point queries (the primary key is (subject, version)), not a scan of the subject.
        if version != "latest":
            row = tx.version(subject, version)
            if row is not None and (deleted or not row.deleted):
                return row
        latest = tx.latest(subject, include_deleted=deleted)
        if latest is None:
            raise SubjectNotFound(subject)
        if version == "latest":
            return latest
        raise VersionNotFound(subject, version)

    # -- reads ----------------------------------------------------------------------------------
    def subjects(self, deleted: bool = False) -> list[str]:
        with self.store.read() as tx:
            return tx.subjects(include_deleted=deleted)

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        with self.store.read() as tx:
            rows = tx.versions(subject, include_deleted=deleted)
        if not rows:
            raise SubjectNotFound(subject)
        return [r.version for r in rows]

    def get(self, subject: str, version: VersionRef = "latest", deleted: bool = False) -> Entry:
        with self.store.read() as tx:
            return self._entry(self._resolve(tx, subject, version, deleted))

    def history(self, subject: str) -> list[Entry]:
        with self.store.read() as tx:  # one snapshot, one query
            return [self._entry(r) for r in tx.versions(subject, include_deleted=False)]

    def lookup(self, subject: str, doc: Document, deleted: bool = False) -> Entry:
        with self.store.read() as tx:
            if not tx.versions(subject, include_deleted=deleted):
                raise SubjectNotFound(subject)
            row = tx.version_by_hash(subject, content_hash(doc))
        if row is None or (row.deleted and not deleted):
            raise SchemaNotFound("Schema not found")
        return self._entry(row)

    def schema_by_id(self, schema_id: int) -> tuple[str, Document]:
        with self.store.read() as tx:
            row = tx.schema(schema_id)
        if row is None:
            raise SchemaNotFound(f"Schema {schema_id} not found.")
        return row.schema_type, from_stored(row.schema_type, row.document)

    def schema_versions(self, schema_id: int) -> list[tuple[str, int]]:
        with self.store.read() as tx:
            if tx.schema(schema_id) is None:
                raise SchemaNotFound(f"Schema {schema_id} not found.")
            return tx.schema_versions(schema_id)

    def config(self, subject: str | None = None) -> Mode | None:
        with self.store.read() as tx:
            value = tx.config(GLOBAL_SCOPE if subject is None else subject)
        return Mode(value) if value else None

    def mode(self, subject: str | None = None) -> Mode:
        with self.store.read() as tx:
            return self._mode(tx, subject) if subject is not None else Mode(tx.config(GLOBAL_SCOPE) or DEFAULT_MODE)

    # -- writes ---------------------------------------------------------------------------------
    def register(self, subject: str, doc: Document) -> Registration:
        check_document_subject(subject, doc)
        h = content_hash(doc)
        text = canonical_text(doc)
        stype = schema_type_of(doc)
        with self.store.write() as tx:
            existing = tx.version_by_hash(subject, h)
            if existing is not None and not existing.deleted:
                return Registration(existing.schema_id, existing.version, created=False)
            mode = self._mode(tx, subject)
            # Only the versions the mode compares with are loaded: the latest, or all for transitive modes.
            if mode.transitive:
                live = tx.versions(subject, include_deleted=False)
            else:
                top = tx.latest(subject, include_deleted=False)
                live = [] if top is None else [top]
            if existing is None:
                number = tx.max_version(subject) + 1
                if isinstance(doc, IRSchema) and doc.version != number:
                    taken = tx.version(subject, doc.version)
                    why = (f"version {doc.version} of `{subject}` is already registered with other content"
                           if taken is not None else f"the next version of `{subject}` is {number}")
                    raise InvalidVersion(
                        f"`{doc.name} v{doc.version}` cannot be registered: {why}; a schema's declared version is its "
                        f"registry version, and versions are never reused (declare `{doc.name} v{number}`)"
                    )
                if isinstance(doc, Contract):
                    for r in tx.versions(subject, include_deleted=True):
                        other = from_stored(r.schema_type, r.document)
                        if other.version == doc.version:
                            raise InvalidVersion(
                                f"contract `{doc.name}` {doc.version} is already registered (version {r.version}) with other "
                                "content; publish it under a new semantic version"
                            )
            kinds = {r.schema_type for r in live}
            if kinds and kinds != {stype}:
                raise InvalidSchema(f"Invalid schema: subject `{subject}` holds {kinds.pop()} documents, not {stype}")
            violations = check_compatibility(subject, doc, [(r.version, from_stored(r.schema_type, r.document)) for r in live], mode)
            if violations:
                raise IncompatibleSchema(subject, violations)
            if existing is not None:  # restoring a soft-deleted version
                tx.set_deleted(subject, existing.version, False)
                return Registration(existing.schema_id, existing.version, created=False, restored=True)
            schema_id = tx.schema_id(h)
            if schema_id is None:
                schema_id = tx.insert_schema(h, stype, text)
            tx.insert_version(subject, number, schema_id)
            return Registration(schema_id, number, created=True)

    def set_config(self, mode: Mode, subject: str | None = None) -> None:
        if subject is not None:
            check_subject_name(subject)
        with self.store.write() as tx:
            tx.set_config(GLOBAL_SCOPE if subject is None else subject, Mode(mode).value)

    def delete_config(self, subject: str) -> Mode | None:
        with self.store.write() as tx:
            old = tx.config(subject)
            tx.set_config(subject, None)
        return Mode(old) if old else None

    def delete(self, subject: str, version: VersionRef | None = None, permanent: bool = False) -> list[int]:
        if permanent:
            raise OperationNotPermitted(
                "Operation not permitted: permanent deletion is not supported; soft-deleted versions stay as history"
            )
        with self.store.write() as tx:
            rows = tx.versions(subject, include_deleted=True)
            if not rows:
                raise SubjectNotFound(subject)
            live = [r for r in rows if not r.deleted]
            if version is None:
                if not live:
                    raise SubjectSoftDeleted(f"Subject '{subject}' was soft deleted.")
                for r in live:
                    tx.set_deleted(subject, r.version, True)
                return [r.version for r in live]
            if version == "latest":
                if not live:
                    raise SubjectNotFound(subject)
                target = live[-1]
            else:
                found = [r for r in rows if r.version == version]
                if not found:
                    raise VersionNotFound(subject, version)
                target = found[0]
                if target.deleted:
                    raise VersionSoftDeleted(f"Subject '{subject}' Version {version} was soft deleted.")
            tx.set_deleted(subject, target.version, True)
            return [target.version]


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def default_registry_path(spec: str | Path | None = None) -> Path:
    """``$CATOPT_REGISTRY``, else ``catopt-registry.db`` beside ``spec`` (or in the current folder)."""
    import os

    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return (Path(spec).parent if spec is not None else Path.cwd()) / DEFAULT_FILE


def open_registry(target: str | Path, *, create: bool = True) -> RegistryView:
    """A registry from a path (SQLite), a ``postgresql://`` URL or an ``http(s)://`` server URL."""
    text = str(target)
    if is_url(text):
        from catopt_dsl.registry.client import RemoteRegistry

        return RemoteRegistry(text)
    from catopt_dsl.registry.postgres import is_postgres_url

    if is_postgres_url(text):
        from catopt_dsl.registry.postgres import PostgresStore

        return Registry(PostgresStore(text))
    from catopt_dsl.registry.store import SqliteStore

    return Registry(SqliteStore(text, create=create))


__all__ = [
    "Assessment",
    "Entry",
    "Registration",
    "Registry",
    "RegistryView",
    "default_registry_path",
    "open_registry",
    "subject_of",
]
