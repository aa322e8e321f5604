"""``GET /api/v1/locate`` and ``GET /api/v1/network/files`` on real nodes, as a user's HTTP client sees them."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from support.flood import ALL_PLUGINS, flood, share
from support.nodes import running_network

CFG = {"learn_peers": False, "ping_interval_s": 30.0, "max_entries_per_peer": 3}


@pytest.fixture
async def line(tmp_path):
    async with running_network(tmp_path, 3, "line", plugins=ALL_PLUGINS, discovery_flood=CFG) as nodes:
        share(nodes[0], "mine.txt", "m")
        share(nodes[2], "report.pdf", "pdf bytes")
        for i in range(5):
            share(nodes[1], f"many{i}.dat", str(i))
        async with httpx.AsyncClient(base_url=f"{nodes[0].rest_url}/api/v1", timeout=10) as client:
            yield nodes, client


async def test_locate_lists_every_holder(line):
    nodes, client = line
    resp = await client.get("/locate", params={"name": "report.pdf"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) >= {"name", "query_id", "hits", "peers_reached", "elapsed_ms"}
    assert body["name"] == "report.pdf" and body["ttl"] == 4 and body["peers_reached"] == 3
    assert body["hits"] == [
        {
            "peer": "p2",
            "rest": nodes[2].rest_url,
            "grpc": nodes[2].grpc_address,
            "name": "report.pdf",
            "size": 9,
            "sha256": hashlib.sha256(b"pdf bytes").hexdigest(),
            "hops": 2,
        }
    ]
    assert 0 < body["elapsed_ms"] < 3000
    # ttl=1 stops short of p2; a glob finds the node's own file at hops 0.
    assert (await client.get("/locate", params={"name": "report.pdf", "ttl": 1})).json()["hits"] == []
    own = (await client.get("/locate", params={"name": "*.txt", "ttl": 0})).json()
    assert [(h["peer"], h["hops"]) for h in own["hits"]] == [("p0", 0)] and own["peers_reached"] == 1


async def test_locate_clamps_ttl_and_refuses_bad_input(line):
    _, client = line
    assert (await client.get("/locate", params={"name": "x", "ttl": 99})).json()["ttl"] == 7
    for params in (
        {"name": "x", "ttl": -1},
        {"name": "x", "ttl": "three"},
        {"name": "x", "ttl": 1.5},
        {"name": "x", "timeout": 0},
        {"name": "x", "timeout": 1000},
        {"name": "q" * 2000},
        {"name": ""},
        {"name": "sha256:zz"},
        {"name": "sha256:abc"},
        {},
    ):
        resp = await client.get("/locate", params=params)
        assert resp.status_code == 400, params
        assert resp.headers["content-type"].startswith("application/problem+json"), params
        assert resp.json()["status"] == 400
    assert (await client.get("/status")).status_code == 200, "the node is unharmed"


async def test_network_files_lists_each_peer_capped(line):
    nodes, client = line
    resp = await client.get("/network/files")
    assert resp.status_code == 200
    body = resp.json()
    assert body["peers_reached"] == 3
    by_peer = {p["peer"]: p for p in body["peers"]}
    assert [(p["peer"], p["hops"]) for p in body["peers"]] == [("p0", 0), ("p1", 1), ("p2", 2)], "closest first"
    assert [f["name"] for f in by_peer["p0"]["files"]] == ["mine.txt"] and not by_peer["p0"]["truncated"]
    assert len(by_peer["p1"]["files"]) == 3 and by_peer["p1"]["truncated"], "max_entries_per_peer = 3"
    assert by_peer["p2"]["files"][0]["name"] == "report.pdf" and by_peer["p2"]["hops"] == 2
    assert by_peer["p2"]["rest"] == nodes[2].rest_url
    limited = (await client.get("/network/files", params={"limit": 1, "ttl": 1})).json()
    assert {p["peer"]: len(p["files"]) for p in limited["peers"]} == {"p0": 1, "p1": 1}
    assert (await client.get("/network/files", params={"limit": 0})).status_code == 400


async def test_counters_in_status_and_the_python_api(line):
    nodes, client = line
    result = await flood(nodes[0]).locate("*.dat", ttl=2)
    assert {h.name for h in result.hits} == {f"many{i}.dat" for i in range(3)}, "capped per peer"
    counters = (await client.get("/status")).json()["counters"]
    assert counters["queries_received"] == 1 and counters["queries_forwarded"] == 1
    remote = (await client.get(f"{nodes[1].rest_url}/api/v1/status")).json()["counters"]
    assert remote["queries_received"] == 1 and remote["hits_returned"] == 3
    assert remote["duplicates_dropped"] == 0
    with pytest.raises(ValueError):
        await flood(nodes[0]).locate("x", ttl=-2)


async def test_openapi_documents_the_routes(line):
    _, client = line
    resp = await client.get(f"{line[0][0].rest_url}/schema/openapi.json")
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    assert "/api/v1/locate" in paths and "/api/v1/network/files" in paths
