"""A registry server used through its REST API (``catoptc ... --registry http://host:port``).

Standard library only (``urllib``), so ``catoptc check --registry URL`` works without the
`registry` extra. Error bodies are turned back into the server's :class:`RegistryError` classes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from catopt_dsl.registry.compat import Mode
from catopt_dsl.registry.documents import (
    Document,
    content_hash,
    parse_document,
    render,
    schema_type_of,
)
from catopt_dsl.registry.errors import (
    BY_CODE,
    CompatibilityNotConfigured,
    IncompatibleSchema,
    InvalidSchema,
    RegistryError,
    RegistryUnavailable,
    SubjectNotFound,
    VersionNotFound,
)
from catopt_dsl.registry.registry import Entry, Registration, RegistryView, VersionRef

_CT = "application/vnd.schemaregistry.v1+json"


class RemoteRegistry(RegistryView):
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout_s

    def _call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None, raw: bool = False) -> Any:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": _CT, "Accept": _CT})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as err:
            raise self._error(err.code, err.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryUnavailable(f"cannot reach the registry at {self.url}: {reason}") from None
        if raw:
            return payload.decode("utf-8")
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise RegistryUnavailable(f"{self.url} did not answer with JSON: is it a catoptc registry?") from None

    @staticmethod
    def _error(status: int, payload: bytes) -> RegistryError:
        try:
            body = json.loads(payload)
            code, message = int(body["error_code"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            return RegistryUnavailable(f"registry answered HTTP {status}: {payload[:200]!r}")
        cls = BY_CODE.get(code)
        if code == 40401:
            err: RegistryError = SubjectNotFound("?")
        elif code == 40402:
            err = VersionNotFound("?", "?")
        elif code == 40408:
            err = CompatibilityNotConfigured("?")
        elif code == 409:
            err = IncompatibleSchema("?", ())
        elif code == 42201:
            err = InvalidSchema(message)
        elif cls is not None:
            err = cls(message)
        else:
            err = RegistryError(message)
            err.error_code, err.http_status = code, status
        err.message = message
        err.args = (message,)
        return err

    @staticmethod
    def _q(**flags: bool) -> dict[str, str]:
        return {k: "true" for k, v in flags.items() if v}

    @staticmethod
    def _path(subject: str) -> str:
        return urllib.parse.quote(subject, safe=":")

    def _entry(self, body: dict[str, Any], deleted: bool = False) -> Entry:
        stype = str(body.get("schemaType", "CATOPT"))
        doc = parse_document(str(body["schema"]), stype)
        return Entry(str(body["subject"]), int(body["version"]), int(body["id"]), stype, doc, content_hash(doc), deleted)

    # -- RegistryView ---------------------------------------------------------------------------
    def subjects(self, deleted: bool = False) -> list[str]:
        return [str(s) for s in self._call("GET", "/subjects", query=self._q(deleted=deleted))]

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        return [int(v) for v in self._call("GET", f"/subjects/{self._path(subject)}/versions", query=self._q(deleted=deleted))]

    def get(self, subject: str, version: VersionRef = "latest", deleted: bool = False) -> Entry:
        body = self._call("GET", f"/subjects/{self._path(subject)}/versions/{version}", query=self._q(deleted=deleted))
        entry = self._entry(body)
        if deleted and entry.version not in self.versions(subject):
            entry = Entry(entry.subject, entry.version, entry.id, entry.schema_type, entry.document, entry.hash, True)
        return entry

    def lookup(self, subject: str, doc: Document, deleted: bool = False) -> Entry:
        body = self._call("POST", f"/subjects/{self._path(subject)}", self._body(doc), query=self._q(deleted=deleted))
        return self._entry(body)

    def schema_by_id(self, schema_id: int) -> tuple[str, Document]:
        body = self._call("GET", f"/schemas/ids/{schema_id}")
        stype = str(body.get("schemaType", "CATOPT"))
        return stype, parse_document(str(body["schema"]), stype)

    @staticmethod
    def _body(doc: Document) -> dict[str, str]:
        return {"schema": render(doc), "schemaType": schema_type_of(doc)}

    def register(self, subject: str, doc: Document) -> Registration:
        before = None
        try:
            before = self.lookup(subject, doc)
        except RegistryError:
            pass
        if before is not None:
            return Registration(before.id, before.version, created=False)
        body = self._call("POST", f"/subjects/{self._path(subject)}/versions", self._body(doc))
        entry = self.lookup(subject, doc)
        return Registration(int(body["id"]), entry.version, created=True)

    def config(self, subject: str | None = None) -> Mode | None:
        path = "/config" if subject is None else f"/config/{self._path(subject)}"
        try:
            body = self._call("GET", path)
        except CompatibilityNotConfigured:
            return None
        return Mode(body["compatibilityLevel"])

    def set_config(self, mode: Mode, subject: str | None = None) -> None:
        path = "/config" if subject is None else f"/config/{self._path(subject)}"
        self._call("PUT", path, {"compatibility": Mode(mode).value})

    def delete_config(self, subject: str) -> Mode | None:
        try:
            body = self._call("DELETE", f"/config/{self._path(subject)}")
        except CompatibilityNotConfigured:
            return None
        return Mode(body["compatibilityLevel"])

    def delete(self, subject: str, version: VersionRef | None = None, permanent: bool = False) -> list[int]:
        q = self._q(permanent=permanent)
        if version is None:
            return [int(v) for v in self._call("DELETE", f"/subjects/{self._path(subject)}", query=q)]
        return [int(self._call("DELETE", f"/subjects/{self._path(subject)}/versions/{version}", query=q))]
