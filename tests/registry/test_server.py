"""The REST API, served by ``catoptc registry serve`` in a real process, called with httpx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registry_server import running_server

CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
V1 = "schema Allocation v1 { hours: float[3]; }"
V2 = "schema Allocation v2 { hours: float[3]; priority: float = 0; }"
V3_BAD = "schema Allocation v3 { hours: float[3]; priority: float = 0; tenant: int; }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("server") / "registry.db"
    with running_server(str(db), "--max-body-bytes", "4096") as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


def _error(resp: httpx.Response, status: int, code: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    return str(body["message"])


def test_register_get_latest_get_version_compatibility_config(client: httpx.Client) -> None:
    r = client.post("/subjects/Allocation/versions", json={"schema": V1}, headers=CT)
    assert r.status_code == 200 and r.json() == {"id": 1}
    assert r.headers["content-type"].startswith("application/vnd.schemaregistry.v1+json")
    assert client.post("/subjects/Allocation/versions", json={"schema": V2, "schemaType": "CATOPT"}).json() == {"id": 2}
    latest = client.get("/subjects/Allocation/versions/latest").json()
    assert (latest["subject"], latest["version"], latest["id"], latest["schemaType"]) == ("Allocation", 2, 2, "CATOPT")
    assert "priority: float = 0.0;" in latest["schema"]
    assert client.get("/subjects/Allocation/versions/-1").json() == latest
    first = client.get("/subjects/Allocation/versions/1").json()
    assert first["version"] == 1 and first["schema"] == "schema Allocation v1 {\n    hours: float[3];\n}\n"
    assert client.get("/subjects/Allocation/versions/1/schema").text == first["schema"]
    assert client.get("/subjects").json() == ["Allocation"]
    assert client.get("/subjects/Allocation/versions").json() == [1, 2]
    assert client.get("/schemas/ids/1").json() == {"schema": first["schema"], "schemaType": "CATOPT"}
    assert client.get("/schemas/ids/2/versions").json() == [{"subject": "Allocation", "version": 2}]
    assert client.get("/schemas/types").json() == ["CATOPT", "CONTRACT"]
    # lookup
    assert client.post("/subjects/Allocation", json={"schema": V1}).json()["version"] == 1
    # compatibility: the mode's versions, and one named version
    bad = client.post("/compatibility/subjects/Allocation/versions?verbose=true", json={"schema": V3_BAD}).json()
    assert bad["is_compatible"] is False and "`tenant`" in bad["messages"][0] and "BACKWARD" in bad["messages"][0]
    assert client.post("/compatibility/subjects/Allocation/versions/latest", json={"schema": V3_BAD}).json() == {
        "is_compatible": False}
    good = "schema Allocation v3 { hours: float[3]; priority: float = 0; tenant: int = 0; }"
    assert client.post("/compatibility/subjects/Allocation/versions/1", json={"schema": good}).json() == {"is_compatible": True}
    assert client.post("/compatibility/subjects/New/versions", json={"schema": "schema New v1 { x: float; }"}).json() == {
        "is_compatible": True}
    # config
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert client.put("/config/Allocation", json={"compatibility": "forward"}).json() == {"compatibility": "FORWARD"}
    assert client.get("/config/Allocation").json() == {"compatibilityLevel": "FORWARD"}
    assert client.post("/compatibility/subjects/Allocation/versions", json={"schema": V3_BAD}).json() == {
        "is_compatible": True}
    assert client.post("/subjects/Allocation/versions", json={"schema": V3_BAD}).json() == {"id": 3}
    assert client.delete("/config/Allocation").json() == {"compatibilityLevel": "FORWARD"}
    _error(client.get("/config/Allocation"), 404, 40408)
    assert client.get("/config/Allocation?defaultToGlobal=true").json() == {"compatibilityLevel": "BACKWARD"}
    assert client.put("/config", json={"compatibility": "FULL_TRANSITIVE"}).json() == {"compatibility": "FULL_TRANSITIVE"}
    assert client.get("/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert client.put("/config", json={"compatibility": "BACKWARD"}).status_code == 200


def test_soft_delete_semantics(client: httpx.Client) -> None:
    for v in (1, 2):
        body = f"schema Deleted v{v} {{ x: float; {'y: float = 1;' if v == 2 else ''} }}"
        assert client.post("/subjects/Deleted/versions", json={"schema": body}).status_code == 200
    assert client.delete("/subjects/Deleted/versions/2").json() == 2
    assert client.get("/subjects/Deleted/versions").json() == [1]
    assert client.get("/subjects/Deleted/versions?deleted=true").json() == [1, 2]
    _error(client.get("/subjects/Deleted/versions/2"), 404, 40402)
    assert client.get("/subjects/Deleted/versions/2?deleted=true").json()["version"] == 2
    _error(client.delete("/subjects/Deleted/versions/2"), 404, 40406)
    assert client.delete("/subjects/Deleted").json() == [1]
    assert "Deleted" not in client.get("/subjects").json()
    assert "Deleted" in client.get("/subjects?deleted=true").json()
    _error(client.delete("/subjects/Deleted"), 404, 40404)
    _error(client.delete("/subjects/Deleted?permanent=true"), 422, 42205)
    _error(client.get("/subjects/Deleted/versions"), 404, 40401)


def test_errors_have_confluent_codes_and_no_tracebacks(client: httpx.Client, server: str) -> None:
    _error(client.get("/subjects/Nope/versions"), 404, 40401)
    _error(client.get("/subjects/Nope/versions/1"), 404, 40401)
    client.post("/subjects/Errs/versions", json={"schema": "schema Errs v1 { x: float; }"})
    assert _error(client.get("/subjects/Errs/versions/5"), 404, 40402) == "Version 5 not found."
    _error(client.get("/subjects/Errs/versions/abc"), 422, 42202)
    _error(client.get("/subjects/Errs/versions/0"), 422, 42202)
    _error(client.get("/schemas/ids/999"), 404, 40403)
    _error(client.post("/subjects/Errs", json={"schema": "schema Errs v2 { x: float; }"}), 404, 40403)
    # malformed JSON, wrong shapes, invalid schemas
    assert "Malformed JSON" in _error(client.post("/subjects/Errs/versions", content=b"{not json", headers=CT), 400, 400)
    _error(client.post("/subjects/Errs/versions", content=b"\xff\xfe", headers=CT), 400, 400)
    _error(client.post("/subjects/Errs/versions", json=["schema"]), 422, 42201)
    _error(client.post("/subjects/Errs/versions", json={"schema": 3}), 422, 42201)
    _error(client.post("/subjects/Errs/versions", json={"schema": "schema Errs v2 { x: float; ", "references": []}), 422, 42201)
    _error(client.post("/subjects/Errs/versions", json={"schema": "x", "references": [{"name": "a"}]}), 422, 42201)
    msg = _error(client.post("/subjects/Errs/versions", json={"schema": "schema Errs v2 { x: float; y: flot = 1; }"}), 422, 42201)
    assert msg.startswith("Invalid schema: line 1")
    _error(client.post("/subjects/Errs/versions", json={"schema": 'import "/etc/passwd"; schema Errs v2 { x: float; }'}), 422, 42201)
    leak = _error(client.post("/subjects/Errs/versions", json={"schema": 'schema Errs v2 { x: float[2] = load("/etc/hostname"); }'}), 422, 42201)
    assert "load()" in leak
    _error(client.post("/subjects/Errs/versions", json={"schema": "schema Other v1 { x: float; }"}), 422, 42201)
    _error(client.post("/subjects/Errs/versions", json={"schema": "schema Errs v1 { x: float; }", "schemaType": "AVRO"}), 422, 42201)
    _error(client.post("/subjects/Errs/versions", json={"schema": "schema Errs v1 { x: float; }", "schemaType": "CONTRACT"}), 422, 42201)
    _error(client.post("/subjects/contract:x/versions", json={"schema": "{\"name\": \"x\"}"}), 422, 42201)
    _error(client.post("/subjects/contract:x/versions", json={"schema": "not json"}), 422, 42201)
    _error(client.post("/subjects/Errs/versions", json={"schema": "schema Errs v5 { x: float; }"}), 422, 42202)
    # incompatible
    _error(client.post("/subjects/Errs/versions", json={"schema": "schema Errs v2 { x: int; }"}), 409, 409)
    # config
    _error(client.put("/config", json={"compatibility": "SIDEWAYS"}), 422, 42203)
    _error(client.put("/config", json={"compat": "FULL"}), 400, 400)
    _error(client.get("/subjects?deleted=maybe"), 400, 400)
    # routes and methods
    _error(client.get("/nowhere"), 404, 404)
    _error(client.put("/subjects"), 405, 405)
    _error(client.get("/schemas/ids/abc"), 400, 400)
    # the server is still fine
    assert client.get("/subjects/Errs/versions").json() == [1]


def test_request_size_limit(client: httpx.Client, server: str) -> None:
    big = {"schema": "schema Big v1 { x: float; }" + " " * 5000}
    assert "larger than the limit of 4096" in _error(client.post("/subjects/Big/versions", json=big), 413, 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"schema": "schema Big v1 { x: float; }'
        for _ in range(100):
            yield b" " * 100
        yield b'"}'

    _error(client.post("/subjects/Big/versions", content=chunks(), headers=CT), 413, 413)
    # a raw request that lies about its length
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /subjects/Big/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{")
        head = ""
        while '"error_code"' not in head or not head.rstrip().endswith("}"):  # headers and body may arrive apart
            chunk = s.recv(4096).decode()
            if not chunk:
                break
            head += chunk
    assert head.startswith("HTTP/1.1 413") and '"error_code":413' in head
    _error(client.get("/subjects/Big/versions"), 404, 40401)


def test_contract_marketplace_endpoints(client: httpx.Client) -> None:
    doc = {"name": "torch_units", "version": "1.2.0", "kind": "unit-adapter", "platforms": ["torch", "jax"],
           "units": {"gpu_hours": "h"}, "requirements": {}, "api_version": 1}
    r = client.post("/subjects/contract:torch_units/versions", json={"schema": json.dumps(doc), "schemaType": "CONTRACT"})
    assert r.status_code == 200, r.text
    listed = client.get("/contracts?platform=jax").json()
    assert [c["contract"]["name"] for c in listed] == ["torch_units"]
    assert client.get("/contracts?platform=tpu").json() == []
    resolved = client.get("/contracts/torch_units", params={"range": "^1"}).json()
    assert resolved["contract"] == doc and resolved["subject"] == "contract:torch_units"
    _error(client.get("/contracts/torch_units", params={"range": "^2"}), 404, 40402)
    _error(client.get("/contracts/torch_units", params={"range": "^x.y"}), 422, 42202)
    _error(client.get("/contracts/none"), 404, 40401)


def test_binds_to_loopback_by_default(tmp_path: Path) -> None:
    with running_server(str(tmp_path / "r.db")) as url:
        assert url.startswith("http://127.0.0.1:")


def test_serves_a_postgresql_registry(pg_server: object, tmp_path: Path) -> None:
    dsn = pg_server.new_database()  # type: ignore[attr-defined]
    with running_server(dsn) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/subjects/Allocation/versions", json={"schema": V1}).json() == {"id": 1}
        assert c.get("/subjects/Allocation/versions/latest").json()["version"] == 1
        _error(c.get("/subjects/Nope/versions"), 404, 40401)


def test_an_unexpected_failure_is_json_without_a_traceback(tmp_path: Path) -> None:
    """A bug or a dying database behind the API: the client gets 500/50001 JSON, the log gets the traceback."""
    import asyncio

    from catopt_dsl.registry.errors import StoreError
    from catopt_dsl.registry.registry import Registry
    from catopt_dsl.registry.server import create_app
    from catopt_dsl.registry.store import SqliteStore

    class Broken(Registry):
        def subjects(self, deleted: bool = False) -> list[str]:
            raise RuntimeError("a bug, with a secret path /srv/x in its message")

        def versions(self, subject: str, deleted: bool = False) -> list[int]:
            raise StoreError("Error in the backend data store: disk I/O error")

    async def calls(app: object) -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
            return await c.get("/subjects"), await c.get("/subjects/A/versions")

    reg = Broken(SqliteStore(tmp_path / "r.db"))
    bug, store = asyncio.run(calls(create_app(reg)))
    reg.close()
    assert bug.status_code == 500 and bug.json()["error_code"] == 50001
    assert "Traceback" not in bug.text and "/srv/x" not in bug.text
    assert store.status_code == 500
    assert store.json() == {"error_code": 50001, "message": "Error in the backend data store: disk I/O error"}
