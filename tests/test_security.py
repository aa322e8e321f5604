"""A node with [security] token refuses REST and gRPC calls without it; peers with it talk."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from peerkit.errors import TransportError
from peerkit.v1 import link_pb2, link_pb2_grpc
from support.nodes import running_network

TOKEN = "s3cret-network-token"
PLUGINS = ["rest_litestar", "grpc_transfer"]


async def _echo(payload: bytes, sender: str) -> bytes:
    return payload


async def test_token_required_on_rest_and_grpc(tmp_path):
    async with running_network(tmp_path, 2, plugins=PLUGINS, security={"token": TOKEN}) as (a, b):
        b.messages.register("test.echo", _echo)
        async with httpx.AsyncClient() as client:
            anon = await client.post(f"{b.rest_url}/api/v1/link/test.echo", content=b"x")
            assert anon.status_code == 401
            assert anon.headers["content-type"].startswith("application/problem+json")
            wrong = await client.post(f"{b.rest_url}/api/v1/link/test.echo", content=b"x",
                                      headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = await client.post(f"{b.rest_url}/api/v1/link/test.echo", content=b"x",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200 and ok.content == b"x"

        async with grpc.aio.insecure_channel(b.grpc_address) as channel:
            stub = link_pb2_grpc.LinkStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Call(link_pb2.LinkMessage(method="test.echo", payload=b"x"), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes stay open

        for transport in ("grpc", "rest"):  # the nodes themselves carry the token
            assert await a.call_peer(a.peers.get("p1"), "test.echo", b"hi", timeout=5, transport=transport) == b"hi"


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/status"),
        ("GET", "//api/v1/status"),  # the router merges doubled slashes: no way around the token
        ("GET", "/api//v1/status"),
        ("GET", "/api/v1//files"),
        ("POST", "//api/v1/peers"),
        ("DELETE", "//api/v1/peers/p0"),
        ("POST", "//api/v1/link/test.echo"),
        ("GET", "/api/v1/files/a.txt/content"),
        ("GET", "/metrics"),
        ("GET", "/schema/openapi.json"),
        ("GET", "/no/such/path"),
    ],
)
async def test_every_rest_path_needs_the_token(tmp_path, method, path):
    async with running_network(tmp_path, 2, plugins=PLUGINS, security={"token": TOKEN}) as (_a, b):
        peers_before = sorted(p.name for p in b.peers.all())
        async with httpx.AsyncClient(base_url=b.rest_url) as client:
            resp = await client.request(method, path, json={"name": "evil", "rest": "http://127.0.0.1:1", "grpc": "127.0.0.1:1"} if method == "POST" else None)
            assert resp.status_code == 401, (path, resp.status_code, resp.text[:200])
            assert resp.headers["content-type"].startswith("application/problem+json")
            authed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert authed.status_code == 200 and b"peerkit_" in authed.content
        assert sorted(p.name for p in b.peers.all()) == peers_before  # nothing added or removed


async def test_peer_with_the_wrong_token_is_refused(tmp_path):
    async with running_network(tmp_path, 1, plugins=PLUGINS, security={"token": TOKEN}) as (guarded,):
        async with running_network(tmp_path / "other", 1, plugins=PLUGINS, security={"token": "other"}) as (stranger,):
            guarded.messages.register("test.echo", _echo)
            stranger.peers.add("guarded", guarded.rest_url, guarded.grpc_address)
            for transport in ("grpc", "rest"):
                with pytest.raises(TransportError):
                    await stranger.call_peer(stranger.peers.get("guarded"), "test.echo", b"x", timeout=5, transport=transport)
