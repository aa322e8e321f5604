"""Dead, frozen and hostile neighbours: a locate still ends by its deadline with what the rest found."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import grpc
import msgspec
import pytest

from peerkit import Node, TransportError

from support.flood import ALL_PLUGINS, FLOOD_PLUGINS, flood, peer_entry, share, wait_until
from support.nodes import NodeProcess, free_port, make_config, running_network, write_config

QUIET = {"learn_peers": False, "ping_interval_s": 30.0}


async def test_killed_node_is_routed_around(tmp_path):
    async with running_network(tmp_path, 6, "ring", plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as nodes:
        share(nodes[2], "two.txt")
        assert [(h.peer, h.hops) for h in (await flood(nodes[0]).locate("two.txt", ttl=5)).hits] == [("p2", 2)]
        await nodes[1].stop()
        started = time.monotonic()
        result = await flood(nodes[0]).locate("two.txt", ttl=5, timeout=2.0)
        assert time.monotonic() - started < 2.0 + 0.75  # by its deadline (margin: a loaded 2-core CI)
        assert [(h.peer, h.hops) for h in result.hits] == [("p2", 4)], "found the long way round"
        assert result.peers_reached == 5
        assert nodes[0].metrics.get("neighbour_failures.p1") == 1
        assert nodes[0].peers.get("p1").state == "suspect"
        assert nodes[2].metrics.get("neighbour_failures.p1") == 1


def _raw(**fields) -> bytes:
    doc = {"v": 1, "id": "feedfacefeedface", "ttl": 1, "hops": 0, "origin": "p0", "query": "*", "budget_ms": 2000}
    doc.update(fields)
    return json.dumps(doc).encode()


async def test_frozen_and_killed_processes_cost_only_their_share(tmp_path, processes):
    """A child node linked into an in-process ring is SIGSTOPped, then killed; locates keep their deadline."""
    plugins = ["rest_litestar", "grpc_transfer", "discovery_flood"]
    async with running_network(tmp_path, 4, "ring", plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as nodes:
        for node in nodes:
            share(node, f"{node.name}.txt")
        rest_port, grpc_port = free_port(), free_port()
        friends = [peer_entry(n.name, 1, n.grpc_port) for n in (nodes[0], nodes[2])]
        cfg = write_config(
            tmp_path, "frozen", plugins=plugins, rest_port=rest_port, grpc_port=grpc_port, peers=friends,
            discovery_flood={"learn_peers": False, "ping_interval_s": 30.0},
        )
        (tmp_path / "frozen" / "shared").mkdir(parents=True)
        (tmp_path / "frozen" / "shared" / "frozen.txt").write_text("cold")
        child = NodeProcess(cfg, rest_port=rest_port)
        processes.append(child)
        child.start()
        await wait_until(lambda: "frozen" in nodes[0].peers and "frozen" in nodes[2].peers, 10, "the child's announce")

        everyone = {"p0", "p1", "p2", "p3", "frozen"}
        assert {h.peer for h in (await flood(nodes[0]).locate("*.txt", ttl=3)).hits} == everyone

        child.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            result = await flood(nodes[0]).locate("*.txt", ttl=3, timeout=1.0)
            elapsed = time.monotonic() - started
            assert elapsed <= 1.0 + 0.75, f"locate took {elapsed:.2f}s past its 1 s deadline"
            assert {h.peer for h in result.hits} == everyone - {"frozen"}, "p2 answered despite its frozen neighbour"
            assert nodes[0].metrics.get("neighbour_failures.frozen") == 1
            assert nodes[2].metrics.get("neighbour_failures.frozen") == 1
        finally:
            child.signal(signal.SIGCONT)

        child.signal(signal.SIGKILL)
        child.proc.wait(5)
        started = time.monotonic()
        result = await flood(nodes[0]).locate("*.txt", ttl=3, timeout=2.0)
        assert time.monotonic() - started < 1.5, "a refused connection fails fast, well before the 2 s deadline"
        assert {h.peer for h in result.hits} == everyone - {"frozen"}


@pytest.mark.parametrize("transport, plugins", [("grpc", FLOOD_PLUGINS), ("rest", ALL_PLUGINS)])
async def test_malformed_queries_are_rejected_and_the_node_carries_on(tmp_path, transport, plugins):
    async with running_network(tmp_path, 2, "line", plugins=plugins, discovery_flood={**QUIET, "transport": transport}) as (a, b):
        share(b, "b.txt")
        peer = a.peers.get("p1")
        bad = [
            b"not json",
            b"",
            _raw(ttl=-1),
            _raw(ttl=2.5),
            _raw(ttl="7"),
            _raw(query="q" * 5000),
            _raw(hops=1000),
            _raw(id="../x"),
            msgspec.json.encode({"hits": []}),
        ]
        for payload in bad:
            with pytest.raises(TransportError) as err:
                await a.call_peer(peer, "flood.query", payload, timeout=2, transport=transport)
            assert ("INVALID_ARGUMENT" in str(err.value)) if transport == "grpc" else ("HTTP 4" in str(err.value))
        with pytest.raises(TransportError):
            await a.call_peer(peer, "flood.ping", b"{}", timeout=2, transport=transport)
        with pytest.raises(TransportError):
            await a.call_peer(peer, "flood.announce", b'{"name": "x", "rest": "nope", "grpc": "nope"}', timeout=2, transport=transport)
        assert b.metrics.get("queries_rejected") == len(bad)
        assert b.metrics.get("queries_received") == 0, "nothing malformed reached the forwarding logic"
        assert "x" not in b.peers
        assert [h.peer for h in (await flood(a).locate("b.txt", ttl=1)).hits] == ["p1"]


async def test_ttl_above_the_cap_is_clamped_on_the_wire(tmp_path):
    """A neighbour sends ttl=99 into a line of 10: it travels 7 hops from the origin, no further."""
    async with running_network(tmp_path, 10, "line", plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as nodes:
        for node in nodes:
            share(node, f"{node.name}.txt")
        raw = await nodes[0].call_peer(nodes[0].peers.get("p1"), "flood.query", _raw(ttl=99, hops=0, query="*.txt"), timeout=5)
        reply = json.loads(raw)
        assert sorted(h["peer"] for h in reply["hits"]) == [f"p{i}" for i in range(1, 9)]
        assert "p9" not in {r["name"] for r in reply["reached"]}
        # A neighbour claiming hops=5 with ttl=7 gets 2 more hops, not 7.
        raw = await nodes[0].call_peer(
            nodes[0].peers.get("p1"), "flood.query", _raw(id="feedfacefeed0002", ttl=7, hops=5, query="*.txt"), timeout=5
        )
        assert sorted(h["peer"] for h in json.loads(raw)["hits"]) == ["p1", "p2", "p3"]


async def test_one_neighbour_flooding_queries_is_rate_limited(tmp_path):
    limits = {**QUIET, "max_queries_per_s": 1.0, "query_burst": 5}
    async with running_network(tmp_path, 3, "line", plugins=FLOOD_PLUGINS, discovery_flood=limits) as (a, b, c):
        peer = b.name
        replies = await asyncio.gather(
            *(a.call_peer(a.peers.get(peer), "flood.query", _raw(id=f"flood{i:012d}", ttl=0), timeout=5) for i in range(30))
        )
        dropped = [json.loads(r).get("dropped") for r in replies]
        assert dropped.count("rate_limited") == 25 and dropped.count(None) == 5
        assert b.metrics.get("queries_rate_limited") == 25
        # Another neighbour is not punished for a's flood.
        share(b, "b.txt")
        assert [h.peer for h in (await flood(c).locate("b.txt", ttl=1)).hits] == ["p1"]


async def test_invented_sender_names_share_one_rate_limit(tmp_path):
    """Senders are not authenticated: a bucket per claimed name let 1,000 invented names through unlimited."""
    from peerkit.v1 import link_pb2, link_pb2_grpc

    limits = {**QUIET, "max_queries_per_s": 1.0, "query_burst": 5}
    async with running_network(tmp_path, 2, "line", plugins=FLOOD_PLUGINS, discovery_flood=limits) as (a, b):
        async with grpc.aio.insecure_channel(b.grpc_address) as channel:
            stub = link_pb2_grpc.LinkStub(channel)
            replies = await asyncio.gather(*(
                stub.Call(link_pb2.LinkMessage(method="flood.query", payload=_raw(id=f"inv{i:013d}", ttl=0), sender=f"inv{i}"), timeout=5)
                for i in range(30)
            ))
        dropped = [json.loads(r.payload).get("dropped") for r in replies]
        assert dropped.count("rate_limited") == 25 and dropped.count(None) == 5
        # The real neighbour keeps its own bucket.
        share(b, "b.txt")
        assert [h.peer for h in (await flood(a).locate("b.txt", ttl=1)).hits] == ["p1"]


async def test_hostile_hits_are_only_data(tmp_path):
    """A neighbour answers with invented hits: they are shown, bounded, and change nothing on the node."""
    liar = Node(make_config(tmp_path, "liar", plugins=["grpc_transfer"]))
    fake = {"peer": "ghost", "rest": "http://10.9.9.9:1", "grpc": "10.9.9.9:1", "size": 1, "sha256": "0" * 64, "hops": 0}

    async def lie(payload: bytes, sender: str) -> bytes:
        hits = [{**fake, "name": f"f{i}.txt"} for i in range(50)]  # more than the per-peer cap
        return msgspec.json.encode({"hits": hits, "reached": [{"name": "ghost", "rest": "x", "grpc": "y"}]})

    liar.messages.register("flood.query", lie)
    async with running_network(
        tmp_path, 2, "line", plugins=FLOOD_PLUGINS, discovery_flood={**QUIET, "max_entries_per_peer": 10}
    ) as (a, b):
        await liar.start()
        try:
            a.peers.add("liar", "http://127.0.0.1:1", liar.grpc_address, friend=True)
            share(b, "real.txt")
            peers_before = {p.name for p in a.peers.all()}
            result = await flood(a).locate("*.txt", ttl=2)
            ghost = [h for h in result.hits if h.peer == "ghost"]
            assert len(ghost) == 10, "a neighbour's claims are capped per claimed peer"
            assert [h.peer for h in result.hits if h.peer != "ghost"] == ["p1"]
            assert {p.name for p in a.peers.all()} == peers_before, "hits never add peers"
            assert await a.store.list() == [], "hits never write files"

            async def garbage(payload: bytes, sender: str) -> bytes:
                return b'{"hits": [{"peer": 1}]}'

            liar.messages._handlers["flood.query"] = garbage  # the liar starts sending nonsense
            result = await flood(a).locate("*.txt", ttl=2)
            assert [h.peer for h in result.hits] == ["p1"], "a malformed reply costs only that branch"
            assert a.metrics.get("neighbour_failures.liar") == 1
        finally:
            await liar.stop()


async def test_unreachable_neighbours_with_look_alike_names_are_counted_apart(tmp_path):
    """'x-y' and 'x.y' share one Prometheus name; their failures still count per neighbour, nothing breaks."""
    async with running_network(tmp_path, 1, "line", plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as (a,):
        dead = f"127.0.0.1:{free_port()}"
        a.peers.add("x-y", "http://127.0.0.1:1", dead)
        a.peers.add("x.y", "http://127.0.0.1:1", dead)
        share(a, "here.txt")
        result = await flood(a).locate("here.txt", ttl=2, timeout=1.0)
        assert [h.peer for h in result.hits] == ["p0"]
        counters = a.metrics.counters()
        assert counters["neighbour_failures.x-y"] == counters["neighbour_failures.x.y"] == 1
        assert counters["neighbour_failures"] == 2
