"""The REST API's handlers, through Litestar's test client: bodies, status codes, problem details, OpenAPI, metrics."""

from __future__ import annotations

import hashlib

import pytest
from litestar import get
from litestar.params import FromPath
from litestar.exceptions import PermissionDeniedException

from peerkit import AlreadyExists, ConfigError, IntegrityError, InvalidName, NotFound, TooLarge, TransportError, hookimpl
from peerkit.peers import PeerTable
from support.nodes import make_config
from support.rest import PROBLEM_JSON, rest_client

STATUS_KEYS = {"name", "version", "uptime_s", "plugins", "rest", "grpc", "files", "peers_alive", "counters"}
PEER = {"name": "p2", "rest": "http://127.0.0.1:5002", "grpc": "127.0.0.1:50052"}


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body = resp.json()
    assert body["status"] == status
    assert body["title"]
    return body


async def test_status_document(tmp_path):
    async with rest_client(tmp_path, name="n1") as (node, client):
        resp = await client.get("/api/v1/status")
        assert resp.status_code == 200
        body = resp.json()
        assert STATUS_KEYS <= set(body)
        assert body["name"] == "n1"
        assert body["plugins"] == ["rest_litestar"]
        assert body["rest"] == node.rest_url
        assert {"queries_received", "queries_forwarded", "duplicates_dropped", "hits_returned"} <= set(body["counters"])


async def test_peers_add_list_remove_and_persist(tmp_path):
    async with rest_client(tmp_path) as (node, client):
        resp = await client.post("/api/v1/peers", json=PEER)
        assert resp.status_code == 201
        assert resp.headers["location"] == "/api/v1/peers/p2"
        assert resp.json() | {"state": "alive"} == {**PEER, "state": "alive", "last_seen": None, "friend": False}

        listed = (await client.get("/api/v1/peers")).json()
        assert [p["name"] for p in listed] == ["p2"]

        # kept across restarts: a fresh table from the same state dir sees it
        table = PeerTable(node.config.node.state_dir)
        table.load()
        assert "p2" in table

        body = assert_problem(await client.post("/api/v1/peers", json=PEER), 409)
        assert "p2" in body["detail"]

        assert (await client.delete("/api/v1/peers/p2")).status_code == 204
        assert (await client.get("/api/v1/peers")).json() == []
        assert_problem(await client.delete("/api/v1/peers/p2"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {**PEER, "name": "bad name!"},
        {**PEER, "rest": "ftp://x"},
        {**PEER, "rest": "http://127.0.0.1:5002/path"},
        {**PEER, "grpc": "no-port"},
        {"name": "p2", "rest": "http://127.0.0.1:1"},  # missing grpc
        {**PEER, "name": 7},
        {**PEER, "extra": 1},
    ],
)
async def test_bad_peer_input_is_422(tmp_path, body):
    async with rest_client(tmp_path) as (node, client):
        assert_problem(await client.post("/api/v1/peers", json=body), 422)
        assert len(node.peers) == 0


@pytest.mark.parametrize("raw", [b"{bad", b"", b"[1,", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000])
async def test_malformed_json_is_problem_json(tmp_path, raw):
    async with rest_client(tmp_path) as (_node, client):
        resp = await client.post("/api/v1/peers", content=raw, headers={"content-type": "application/json"})
        assert resp.status_code in (400, 422)
        assert_problem(resp, resp.status_code)


async def test_own_name_refused(tmp_path):
    async with rest_client(tmp_path, name="me") as (_node, client):
        assert_problem(await client.post("/api/v1/peers", json={**PEER, "name": "me"}), 422)


async def test_files_index_and_metadata(tmp_path):
    async with rest_client(tmp_path) as (node, client):
        assert (await client.get("/api/v1/files")).json() == []
        (node.store.root / "a.txt").write_bytes(b"hello")
        listed = (await client.get("/api/v1/files")).json()
        assert [(f["name"], f["size"], f["sha256"]) for f in listed] == [("a.txt", 5, hashlib.sha256(b"hello").hexdigest())]
        one = (await client.get("/api/v1/files/a.txt")).json()
        assert one == listed[0]
        assert set(one) == {"name", "size", "sha256", "mtime"}
        assert_problem(await client.get("/api/v1/files/missing.txt"), 404)
        assert_problem(await client.get("/api/v1/files/.hidden"), 422)


async def test_routing_errors_are_problem_json(tmp_path):
    async with rest_client(tmp_path) as (_node, client):
        assert_problem(await client.get("/api/v1/no/such/path"), 404)
        assert_problem(await client.get("/nothing"), 404)
        resp = await client.delete("/api/v1/status")
        assert_problem(resp, 405)
        assert "GET" in resp.headers["allow"]
        assert_problem(await client.get("/api/v1/files/a.txt/content", headers={"range": "bytes=0-"}), 404)


class Raising:
    """Another plugin's routes that raise what plugins raise: each must map app-wide."""

    @hookimpl
    def peerkit_rest_routes(self, node):
        errors = {
            "notfound": NotFound("no such thing"),
            "exists": AlreadyExists("taken"),
            "badname": InvalidName("bad name"),
            "value": ValueError("bad value"),
            "large": TooLarge("too big"),
            "integrity": IntegrityError("hash mismatch"),
            "transport": TransportError("peer down"),
            "denied": PermissionDeniedException(detail="nope"),
            "crash": RuntimeError("secret internals /etc/shadow"),
        }

        @get("/raise/{kind:str}", sync_to_thread=False)
        def boom(kind: FromPath[str]) -> None:
            raise errors[kind]

        return [boom]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("notfound", 404),
        ("exists", 409),
        ("badname", 422),
        ("value", 422),
        ("large", 413),
        ("integrity", 422),
        ("transport", 502),
        ("denied", 403),
        ("crash", 500),
    ],
)
async def test_plugin_errors_map_to_problem_details(tmp_path, kind, status):
    async with rest_client(tmp_path, extra_plugins=(Raising(),)) as (_node, client):
        body = assert_problem(await client.get(f"/api/v1/raise/{kind}"), status)
        if kind == "crash":
            text = str(body)
            assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
        elif kind != "denied":
            assert body["detail"]


async def test_openapi_documents_routes_and_problems(tmp_path):
    async with rest_client(tmp_path) as (_node, client):
        doc = (await client.get("/schema/openapi.json")).json()
        paths = doc["paths"]
        expected = {
            "/api/v1/status": {"get"},
            "/api/v1/peers": {"get", "post"},
            "/api/v1/peers/{name}": {"delete"},
            "/api/v1/files": {"get"},
            "/api/v1/files/{name}": {"get"},
            "/api/v1/files/{name}/content": {"get", "put", "head"},
            "/api/v1/link/{method}": {"post"},
            "/metrics": {"get"},
        }
        for path, methods in expected.items():
            assert methods <= set(paths[path]), path
        assert "ProblemDetail" in doc["components"]["schemas"]
        assert "PeerIn" in doc["components"]["schemas"]
        for path, item in paths.items():
            for method, op in item.items():
                if method not in ("get", "put", "post", "delete", "head"):
                    continue
                assert "default" in op["responses"], (path, method)
                for code, resp in op["responses"].items():
                    if code[0] in "45" or code == "default":
                        assert list(resp["content"]) == [PROBLEM_JSON], (path, method, code)
        put = paths["/api/v1/files/{name}/content"]["put"]["responses"]
        assert {"201", "200", "409", "413", "422"} <= set(put)
        assert {"409", "422"} <= set(paths["/api/v1/peers"]["post"]["responses"])
        docs = await client.get("/schema")
        assert docs.status_code == 200 and "<html" in docs.text.lower()


async def test_metrics_latency_and_bytes(tmp_path):
    async with rest_client(tmp_path) as (node, client):
        (node.store.root / "m.bin").write_bytes(b"x" * 3000)
        await client.get("/api/v1/status")
        await client.get("/api/v1/does-not-exist")
        assert (await client.get("/api/v1/files/m.bin/content")).content == b"x" * 3000
        assert (await client.put("/api/v1/files/u.bin/content", content=b"y" * 500)).status_code == 201
        resp = await client.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.text
        assert 'peerkit_rest_request_seconds_count{method="GET",route="/api/v1/status",status="200"} 1.0' in text
        assert 'route="unmatched",status="404"' in text
        assert 'peerkit_bytes_sent_total{transport="rest"} 3000.0' in text
        assert 'peerkit_bytes_received_total{transport="rest"} 500.0' in text
        assert "peerkit_queries_received_total" in text


def test_config_table(tmp_path):
    cfg = make_config(tmp_path, "n1", plugins=["rest_litestar"])
    assert cfg.sections["rest_litestar"].access_log is False
    cfg = make_config(tmp_path, "n1", plugins=["rest_litestar"], rest_litestar={"access_log": True, "max_upload_bytes": 10})
    assert cfg.sections["rest_litestar"].access_log is True
    with pytest.raises(ConfigError, match="rest_litestar"):
        make_config(tmp_path, "n1", plugins=["rest_litestar"], rest_litestar={"acess_log": True})
    with pytest.raises(ConfigError, match="max_upload_bytes"):
        make_config(tmp_path, "n1", plugins=["rest_litestar"], rest_litestar={"max_upload_bytes": -1})


async def test_access_log_and_server_options_reach_uvicorn(tmp_path):
    async with rest_client(tmp_path, rest_litestar={"access_log": True}) as (node, _client):
        assert node.uvicorn_options["access_log"] is True
        assert node.uvicorn_options.get("http") is None or node.uvicorn_options["http"].__name__ == "BoundedHeadersProtocol"
        assert node._uvicorn.config.access_log is True
    async with rest_client(tmp_path / "b") as (node, _client):
        assert node._uvicorn.config.access_log is False


async def test_docs_can_be_turned_off(tmp_path):
    async with rest_client(tmp_path, rest_litestar={"docs": False}) as (_node, client):
        assert_problem(await client.get("/schema/openapi.json"), 404)
        assert (await client.get("/api/v1/status")).status_code == 200

