"""The registry's REST API: a compatible subset of Confluent Schema Registry's, on Starlette + Uvicorn.

Why these: Starlette is a small ASGI toolkit with routing and exception handlers and nothing else
(FastAPI would add pydantic models we do not need); Uvicorn is the reference ASGI server and can
serve on a socket we bind ourselves, which gives tests a free port without a race. Both are pure
Python (Uvicorn over h11) and live in the `registry` extra.

Every error is JSON ``{"error_code": ..., "message": ...}`` with Confluent's codes: 40401 subject
not found, 40402 version not found, 40403 schema not found, 40404/40406 already soft-deleted,
40408 no subject-level config, 409 incompatible, 42201 invalid schema, 42202 invalid version,
42203 invalid compatibility level, 42205 operation not permitted, 400 malformed JSON, 413 body too
large, 404/405 unknown route or method, 50001 backend store error. Nothing else reaches a client:
an unexpected exception is logged by the server and answered with a 500 JSON body, never a
traceback. Request bodies are limited (``max_body_bytes``, 1 MiB by default) both by their
``Content-Length`` and by counting what actually arrives.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from catopt_dsl.registry.compat import Mode, check_compatibility
from catopt_dsl.registry.contracts import CONTRACT_PREFIX
from catopt_dsl.registry.documents import (
    CONTRACT_TYPE,
    SCHEMA_TYPE,
    SCHEMA_TYPES,
    content_hash,
    parse_document,
    render,
)
from catopt_dsl.registry.errors import (
    BadRequest,
    CompatibilityNotConfigured,
    InvalidSchema,
    InvalidVersion,
    PayloadTooLarge,
    RegistryError,
)
from catopt_dsl.registry.registry import Registry, VersionRef

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
DEFAULT_MAX_BODY = 1024 * 1024
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_MAX_VERSION = 2**31 - 1

log = logging.getLogger("catoptc.registry")


def _version_ref(text: str) -> VersionRef:
    if text in ("latest", "-1"):
        return "latest"
    if text.isdigit() and 1 <= int(text) <= _MAX_VERSION:
        return int(text)
    raise InvalidVersion(
        f"The specified version '{text}' is not a valid version id. Allowed values are between [1, 2^31-1] "
        "and the string \"latest\""
    )


def _flag(request: Any, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise BadRequest(f"query parameter `{name}` must be true or false, not {value!r}")
    return value == "true"


def _schema_type_for(subject: str, given: Any) -> str:
    default = CONTRACT_TYPE if subject.startswith(CONTRACT_PREFIX) else SCHEMA_TYPE
    if given is None:
        return default
    if not isinstance(given, str) or given.upper() not in SCHEMA_TYPES:
        raise InvalidSchema(f"Invalid schema type {given!r}; this registry holds {', '.join(SCHEMA_TYPES)}")
    if given.upper() != default:
        raise InvalidSchema(
            f"Invalid schema: subject `{subject}` holds {default} documents (contract subjects are `contract:<name>`)"
        )
    return default


def create_app(registry: Registry, *, max_body_bytes: int = DEFAULT_MAX_BODY) -> Any:
    """The Starlette application serving ``registry``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def reply(body: Any, status: int = 200) -> Response:
        return JSONResponse(body, status_code=status, media_type=CONTENT_TYPE)

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest("Content-Length is not a number")
            if int(declared) > max_body_bytes:
                raise PayloadTooLarge(f"Request body of {declared} bytes is larger than the limit of {max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise PayloadTooLarge(f"Request body is larger than the limit of {max_body_bytes} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BadRequest(f"Malformed JSON body: {exc}") from None

    async def read_document(request: Request, subject: str) -> Any:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise InvalidSchema("Invalid schema: the body must be a JSON object with a string member `schema`")
        if body.get("references"):
            raise InvalidSchema("Invalid schema: schema references are not supported")
        stype = _schema_type_for(subject, body.get("schemaType"))
        return await run_in_threadpool(parse_document, body["schema"], stype)

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args, **kwargs)

    # -- endpoints ------------------------------------------------------------------------------
    async def root(request: Request) -> Response:
        return reply({})

    async def schema_types(request: Request) -> Response:
        return reply(list(SCHEMA_TYPES))

    def _id(request: Request) -> int:
        text = request.path_params["id"]
        if not text.isdigit():
            raise BadRequest(f"schema id must be a positive integer, not {text!r}")
        return int(text)

    async def schema_by_id(request: Request) -> Response:
        stype, doc = await call(registry.schema_by_id, _id(request))
        return reply({"schema": render(doc), "schemaType": stype})

    async def schema_id_versions(request: Request) -> Response:
        pairs = await call(registry.schema_versions, _id(request))
        return reply([{"subject": s, "version": v} for s, v in pairs])

    async def subjects(request: Request) -> Response:
        return reply(await call(registry.subjects, _flag(request, "deleted")))

    async def subject(request: Request) -> Response:
        name = request.path_params["subject"]
        if request.method == "DELETE":
            return reply(await call(registry.delete, name, None, _flag(request, "permanent")))
        doc = await read_document(request, name)  # POST: is this schema registered here?
        entry = await call(registry.lookup, name, doc, _flag(request, "deleted"))
        return reply(entry.to_json())

    async def versions(request: Request) -> Response:
        name = request.path_params["subject"]
        if request.method == "GET":
            return reply(await call(registry.versions, name, _flag(request, "deleted")))
        doc = await read_document(request, name)
        result = await call(registry.register, name, doc)
        return reply({"id": result.id})

    async def version(request: Request) -> Response:
        name = request.path_params["subject"]
        ref = _version_ref(request.path_params["version"])
        if request.method == "DELETE":
            deleted = await call(registry.delete, name, ref, _flag(request, "permanent"))
            return reply(deleted[0])
        entry = await call(registry.get, name, ref, _flag(request, "deleted"))
        return reply(entry.to_json())

    async def version_schema(request: Request) -> Response:
        name = request.path_params["subject"]
        entry = await call(registry.get, name, _version_ref(request.path_params["version"]), _flag(request, "deleted"))
        return PlainTextResponse(entry.text)

    def _compat_reply(request: Request, violations: list[Any]) -> Response:
        body: dict[str, Any] = {"is_compatible": not violations}
        if _flag(request, "verbose"):
            body["messages"] = [v.message() for v in violations]
        return reply(body)

    async def compat_all(request: Request) -> Response:
        name = request.path_params["subject"]
        doc = await read_document(request, name)
        return _compat_reply(request, await call(registry.check, name, doc))

    async def compat_one(request: Request) -> Response:
        name = request.path_params["subject"]
        ref = _version_ref(request.path_params["version"])
        doc = await read_document(request, name)

        def against() -> list[Any]:
            entry = registry.get(name, ref)
            if entry.hash == content_hash(doc):
                return []
            mode = registry.mode(name)
            # Against one named version the mode's direction applies to that version alone.
            single = Mode(mode.value.replace("_TRANSITIVE", ""))
            return check_compatibility(name, doc, [(entry.version, entry.document)], single)

        return _compat_reply(request, await call(against))

    async def read_config_body(request: Request) -> Mode:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("compatibility"), str):
            raise BadRequest("the body must be a JSON object with a string member `compatibility`")
        return Mode.parse(body["compatibility"])

    async def config_global(request: Request) -> Response:
        if request.method == "PUT":
            mode = await read_config_body(request)
            await call(registry.set_config, mode, None)
            return reply({"compatibility": mode.value})
        return reply({"compatibilityLevel": (await call(registry.mode, None)).value})

    async def config_subject(request: Request) -> Response:
        name = request.path_params["subject"]
        if request.method == "PUT":
            mode = await read_config_body(request)
            await call(registry.set_config, mode, name)
            return reply({"compatibility": mode.value})
        if request.method == "DELETE":
            old = await call(registry.delete_config, name)
            if old is None:
                raise CompatibilityNotConfigured(name)
            return reply({"compatibilityLevel": old.value})
        own = await call(registry.config, name)
        if own is None:
            if _flag(request, "defaultToGlobal"):
                return reply({"compatibilityLevel": (await call(registry.mode, None)).value})
            raise CompatibilityNotConfigured(name)
        return reply({"compatibilityLevel": own.value})

    async def contracts(request: Request) -> Response:
        entries = await call(registry.contracts, request.query_params.get("kind"), request.query_params.get("platform"))
        return reply([{**e.to_json(), "contract": e.document.to_json()} for e in entries])

    async def contract_resolve(request: Request) -> Response:
        name = request.path_params["name"]
        entry = await call(registry.resolve, name, request.query_params.get("range", "*"), request.query_params.get("platform"))
        return reply({**entry.to_json(), "contract": entry.document.to_json()})

    # -- errors ---------------------------------------------------------------------------------
    async def on_registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        return reply(exc.to_json(), exc.http_status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return reply({"error_code": exc.status_code, "message": f"HTTP {exc.status_code} {exc.detail}"}, exc.status_code)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("internal error while serving %s %s", request.method, request.url.path, exc_info=exc)
        return reply({"error_code": 50001, "message": "Error in the backend data store (internal error; see the server log)"}, 500)

    routes = [
        Route("/", root),
        Route("/schemas/types", schema_types),
        Route("/schemas/ids/{id}", schema_by_id),
        Route("/schemas/ids/{id}/versions", schema_id_versions),
        Route("/subjects", subjects),
        Route("/subjects/{subject}", subject, methods=["POST", "DELETE"]),
        Route("/subjects/{subject}/versions", versions, methods=["GET", "POST"]),
        Route("/subjects/{subject}/versions/{version}", version, methods=["GET", "DELETE"]),
        Route("/subjects/{subject}/versions/{version}/schema", version_schema),
        Route("/compatibility/subjects/{subject}/versions", compat_all, methods=["POST"]),
        Route("/compatibility/subjects/{subject}/versions/{version}", compat_one, methods=["POST"]),
        Route("/config", config_global, methods=["GET", "PUT"]),
        Route("/config/{subject}", config_subject, methods=["GET", "PUT", "DELETE"]),
        Route("/contracts", contracts),
        Route("/contracts/{name}", contract_resolve),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={RegistryError: on_registry_error, HTTPException: on_http_error, Exception: on_unexpected},
    )


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket (port 0: a free one), bound before the server starts so the caller
    knows the address and nothing can take the port in between."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(registry: Registry, sock: socket.socket, *, max_body_bytes: int = DEFAULT_MAX_BODY, log_level: str = "warning") -> None:
    """Serve until interrupted (SIGINT/SIGTERM shut Uvicorn down gracefully)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(registry, max_body_bytes=max_body_bytes),
        log_level=log_level,
        access_log=False,
        limit_concurrency=256,  # beyond this Uvicorn answers 503 instead of queueing without bound
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_BODY", "DEFAULT_PORT", "bind", "create_app", "serve"]
