"""Locate across real in-process nodes on line, ring, star and random graphs: reach is exactly the TTL."""

from __future__ import annotations

import pytest

from support.flood import ALL_PLUGINS, FLOOD_PLUGINS, distances, edges_of, flood, share, snapshot, total
from support.nodes import running_network

QUIET = {"learn_peers": False, "ping_interval_s": 30.0}  # topology tests need exactly the links they built


def counters_delta(before, after, name):
    return {n: after[n][name] - before[n][name] for n in after}


@pytest.mark.parametrize(
    "n, topology, extra",
    [(6, "line", 0), (7, "star", 0), (8, "ring", 0), (12, "random", 6)],
)
async def test_reach_is_exactly_bounded_by_ttl(tmp_path, n, topology, extra):
    edges = edges_of(n, topology, seed=7, extra=extra)
    async with running_network(tmp_path, n, edges=edges, plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as nodes:
        for node in nodes:
            share(node, f"{node.name}.txt")
        origin = 1 if topology == "star" else 0  # a leaf of the star: the hub is one hop away
        dist = distances(n, edges, origin)
        for ttl in range(0, max(dist.values()) + 2):
            before = snapshot(nodes, "queries_received", "duplicates_dropped")
            result = await flood(nodes[origin]).locate("*.txt", ttl=ttl)
            after = snapshot(nodes, "queries_received", "duplicates_dropped")

            expected = {f"p{i}" for i, d in dist.items() if d <= ttl}
            assert {h.peer for h in result.hits} == expected, f"ttl={ttl}"
            assert result.peers_reached == len(expected)
            assert all(h.hops == dist[int(h.peer[1:])] for h in result.hits), "hops is the path length"
            # Every reached node handled the query exactly once; the rest are duplicates the counters saw.
            received = counters_delta(before, after, "queries_received")
            dropped = counters_delta(before, after, "duplicates_dropped")
            handled = {name for name in received if received[name] - dropped[name] == 1}
            assert handled == expected
            assert all(received[name] - dropped[name] in (0, 1) for name in received)
            assert sum(received.values()) - sum(dropped.values()) == len(expected)


async def test_ring_handles_each_query_once_and_stays_within_twice_the_edges(tmp_path):
    n = 10
    async with running_network(tmp_path, n, "ring", plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as nodes:
        share(nodes[5], "far.bin", "x" * 100)
        for _ in range(3):
            result = await flood(nodes[0]).locate("far.bin", ttl=7)
            assert [(h.peer, h.hops, h.size) for h in result.hits] == [("p5", 5, 100)]
            assert result.peers_reached == n
        received, dropped = total(nodes, "queries_received"), total(nodes, "duplicates_dropped")
        assert received - dropped == 3 * n, "each of the 3 queries handled once by each of the 10 nodes"
        # The two fronts meet on the far side: the query crosses the meeting point in both
        # directions, so exactly two copies per query are dropped (n + 1 forwards, n handled).
        assert dropped == 3 * 2
        assert total(nodes, "queries_forwarded") == 3 * (n + 1) <= 3 * 2 * n, "never more than 2 x edges per query"


async def test_random_graph_of_twenty_reaches_everyone_with_bounded_messages(tmp_path):
    n, extra = 20, 12
    edges = edges_of(n, "random", seed=3, extra=extra)
    async with running_network(tmp_path, n, edges=edges, plugins=FLOOD_PLUGINS, discovery_flood=QUIET) as nodes:
        share(nodes[-1], "needle.txt")
        share(nodes[-1], "hay.dat")
        dist = distances(n, edges, 0)
        before = total(nodes, "queries_forwarded")
        result = await flood(nodes[0]).locate("needle.*", ttl=7)
        assert [(h.peer, h.name, h.hops) for h in result.hits] == [(f"p{n - 1}", "needle.txt", dist[n - 1])]
        assert result.peers_reached == n
        assert total(nodes, "queries_forwarded") - before <= 2 * len(edges)
        # sha256 queries find the same file.
        digest = result.hits[0].sha256
        by_hash = await flood(nodes[0]).locate(f"sha256:{digest}", ttl=7)
        assert [h.name for h in by_hash.hits] == ["needle.txt"]
        # Exact-name queries do not glob.
        assert (await flood(nodes[0]).locate("needle", ttl=7)).hits == []


def _bytes(node, direction, transport):
    value = node.metrics.registry.get_sample_value(f"peerkit_bytes_{direction}_total", {"transport": transport})
    return value or 0.0


@pytest.mark.parametrize(
    "plugins, transport, used, unused",
    [
        (ALL_PLUGINS, "auto", "grpc", "rest"),
        (ALL_PLUGINS, "rest", "rest", "grpc"),
        (FLOOD_PLUGINS, "grpc", "grpc", "rest"),
        (["rest_litestar", "discovery_flood"], "auto", "rest", "grpc"),
    ],
)
async def test_queries_travel_over_the_chosen_transport(tmp_path, plugins, transport, used, unused):
    async with running_network(
        tmp_path, 4, "line", plugins=plugins, discovery_flood={**QUIET, "transport": transport}
    ) as nodes:
        share(nodes[3], "end.txt")
        result = await flood(nodes[0]).locate("end.txt", ttl=3)
        assert [(h.peer, h.hops) for h in result.hits] == [("p3", 3)]
        assert _bytes(nodes[0], "sent", used) > 0 and _bytes(nodes[3], "received", used) > 0
        assert _bytes(nodes[0], "sent", unused) == 0 and _bytes(nodes[3], "received", unused) == 0
