"""Registry errors, each carrying the Confluent Schema Registry error code and HTTP status.

The REST server turns a :class:`RegistryError` into ``{"error_code": ..., "message": ...}`` with
its status; the CLI prints the message on one line; the REST client turns such a body back into
the same class. Codes follow Confluent's API (``docs/registry.md`` lists the subset used here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catopt_dsl.diagnostics import Diagnostic
    from catopt_dsl.registry.compat import Violation


class RegistryError(Exception):
    """Base class. ``error_code`` is Confluent's code, ``http_status`` the REST status."""

    error_code = 50001
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"error_code": self.error_code, "message": self.message}


class BadRequest(RegistryError):
    """The request body is not JSON, or a query parameter is malformed."""

    error_code = 400
    http_status = 400


class PayloadTooLarge(RegistryError):
    error_code = 413
    http_status = 413


class SubjectNotFound(RegistryError):
    error_code = 40401
    http_status = 404

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")
        self.subject = subject


class VersionNotFound(RegistryError):
    error_code = 40402
    http_status = 404

    def __init__(self, subject: str, version: int | str) -> None:
        super().__init__(f"Version {version} not found.")
        self.subject = subject
        self.version = version


class SchemaNotFound(RegistryError):
    error_code = 40403
    http_status = 404


class SubjectSoftDeleted(RegistryError):
    error_code = 40404
    http_status = 404


class VersionSoftDeleted(RegistryError):
    error_code = 40406
    http_status = 404


class CompatibilityNotConfigured(RegistryError):
    error_code = 40408
    http_status = 404

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' does not have subject-level compatibility configured")
        self.subject = subject


class IncompatibleSchema(RegistryError):
    """Registration refused by the subject's compatibility mode; ``violations`` say why."""

    error_code = 409
    http_status = 409

    def __init__(self, subject: str, violations: Sequence[Violation]) -> None:
        details = "; ".join(v.message() for v in violations)
        super().__init__(
            f"Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{details}]"
        )
        self.subject = subject
        self.violations = tuple(violations)


class InvalidSchema(RegistryError):
    """The schema or contract text does not parse or check; ``diagnostics`` hold the details."""

    error_code = 42201
    http_status = 422

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


class InvalidVersion(RegistryError):
    """A version path parameter that is not a version, or a declared version that cannot be next."""

    error_code = 42202
    http_status = 422


class InvalidCompatibility(RegistryError):
    error_code = 42203
    http_status = 422


class OperationNotPermitted(RegistryError):
    error_code = 42205
    http_status = 422


class StoreError(RegistryError):
    """The backing database failed (locked past the timeout, disk full, not a registry file...)."""

    error_code = 50001
    http_status = 500


class RegistryUnavailable(RegistryError):
    """A registry URL or path that cannot be reached or opened (client side; never sent by the server)."""

    error_code = 50003
    http_status = 503


#: error_code -> class, for the REST client to rebuild the server's error.
BY_CODE: dict[int, type[RegistryError]] = {
    cls.error_code: cls
    for cls in (
        BadRequest,
        PayloadTooLarge,
        SchemaNotFound,
        SubjectSoftDeleted,
        VersionSoftDeleted,
        InvalidVersion,
        InvalidCompatibility,
        OperationNotPermitted,
        StoreError,
    )
}
