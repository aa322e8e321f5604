"""Locate latency and messages per query of flooding discovery, on rings and random graphs.

Starts N real nodes in this process (gRPC Link transport, each on its own
loopback port, all in one asyncio loop: the numbers include every node's
work on a shared core), wires them as a ring or a connected random graph,
shares one file per node, then runs locates from random origins and reports
latency p50/p99 and query messages per locate against the ideal bound of
2 x edges (each link crossed at most once in each direction).

    .venv/bin/python bench/locate.py                 # 10, 20, 50 nodes; ring and random
    .venv/bin/python bench/locate.py --sizes 10 --queries 20
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from peerkit import Node
from peerkit.config import parse_config

PLUGINS = ["grpc_transfer", "discovery_flood"]


def ring_edges(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


def random_edges(n: int, degree: float, rng: random.Random) -> list[tuple[int, int]]:
    """A connected random graph of mean degree ``degree``: a random spanning tree plus random chords."""
    order = list(range(n))
    rng.shuffle(order)
    edges = {tuple(sorted((order[i], order[rng.randrange(i)]))) for i in range(1, n)}
    target = int(n * degree / 2)
    while len(edges) < target:
        a, b = rng.sample(range(n), 2)
        edges.add(tuple(sorted((a, b))))
    return sorted(edges)  # type: ignore[arg-type]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def run_network(base: Path, n: int, edges: list[tuple[int, int]], queries: int, ttl: int, rng: random.Random) -> dict:
    flood_cfg = {
        "learn_peers": False,
        "ping_interval_s": 3600.0,  # membership traffic would blur the per-query count
        "max_queries_per_s": 1e6,
        "query_burst": 1_000_000,
        "timeout_s": 5.0,
    }
    nodes: list[Node] = []
    for i in range(n):
        raw = {
            "node": {
                "name": f"b{i}", "host": "127.0.0.1", "rest_port": 0, "grpc_port": 0,
                "shared_dir": str(base / f"b{i}" / "shared"), "state_dir": str(base / f"b{i}" / "state"),
                "plugins": PLUGINS,
            },
            "discovery_flood": flood_cfg,
        }
        nodes.append(Node(parse_config(raw, env={})))
    try:
        for node in nodes:
            await node.start()
            (Path(node.store.root) / f"file-{node.name}.bin").write_bytes(node.name.encode())
        for a, b in edges:
            na, nb = nodes[a], nodes[b]
            na.peers.add(nb.name, "http://127.0.0.1:1", nb.grpc_address, friend=True)
            nb.peers.add(na.name, "http://127.0.0.1:1", na.grpc_address, friend=True)
        api = [node.pm.get_plugin("discovery_flood") for node in nodes]
        for _ in range(3):  # warm-up: gRPC channels connect, file indexes hash
            await api[rng.randrange(n)].locate("*.bin", ttl=ttl)

        def forwarded() -> int:
            return sum(node.metrics.get("queries_forwarded") for node in nodes)

        latencies: list[float] = []
        reached: list[int] = []
        found = 0
        before = forwarded()
        for _ in range(queries):
            origin, target = rng.randrange(n), rng.randrange(n)
            result = await api[origin].locate(f"file-b{target}.bin", ttl=ttl)
            latencies.append(result.elapsed_ms)
            reached.append(result.peers_reached)
            found += bool(result.hits)
        messages = (forwarded() - before) / queries
        return {
            "latencies": latencies, "reached": statistics.mean(reached), "found": found, "messages": messages,
        }
    finally:
        await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--ttl", type=int, default=7)
    parser.add_argument("--degree", type=float, default=4.0, help="mean degree of the random graphs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(args.seed)

    print(f"locate benchmark: {args.queries} locates per network, ttl={args.ttl}, in-process nodes on one loop (gRPC Link)")
    header = f"{'topology':<9}{'nodes':>6}{'edges':>7}{'reached':>9}{'found':>7}{'p50 ms':>9}{'p99 ms':>9}{'msgs/q':>8}{'2xE':>6}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        for topology in ("ring", "random"):
            edges = ring_edges(n) if topology == "ring" else random_edges(n, args.degree, rng)
            with tempfile.TemporaryDirectory(prefix="peerkit-bench-") as tmp:
                started = time.perf_counter()
                r = await run_network(Path(tmp), n, edges, args.queries, args.ttl, rng)
                _ = time.perf_counter() - started
            bound = 2 * len(edges)
            print(
                f"{topology:<9}{n:>6}{len(edges):>7}{r['reached']:>9.1f}{r['found']:>4}/{args.queries:<2}"
                f"{statistics.median(r['latencies']):>9.1f}{percentile(r['latencies'], 99):>9.1f}"
                f"{r['messages']:>8.1f}{bound:>6}{r['messages'] / bound:>7.2f}"
            )
            sys.stdout.flush()
    print("msgs/q: flood.query messages sent per locate (each also gets one reply); 2xE: the ideal bound.")


if __name__ == "__main__":
    asyncio.run(main())
