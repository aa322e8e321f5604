"""Helpers for the flooding-discovery tests: graphs, files, counters, waiting."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from peerkit import Node

from .nodes import topology_edges

FLOOD_PLUGINS = ["grpc_transfer", "discovery_flood"]
"""Enough for flooding; building the Litestar app costs ~0.15 s a node, so only tests about REST add it."""
ALL_PLUGINS = ["rest_litestar", "grpc_transfer", "discovery_flood"]


def flood(node: Node) -> Any:
    """The node's discovery_flood plugin object (its Python API: locate, network_files)."""
    return node.pm.get_plugin("discovery_flood")


def share(node: Node, name: str, text: str | None = None) -> Path:
    path = Path(node.store.root) / name
    path.parent.mkdir(parents=True, exist_ok=True)  # the node may not have started yet
    path.write_text(text if text is not None else f"{name} on {node.name}\n", "utf-8")
    return path


def random_edges(n: int, extra: int, seed: int) -> list[tuple[int, int]]:
    """A connected random graph: a random spanning tree plus ``extra`` random chords."""
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    edges = {tuple(sorted((order[i], order[rng.randrange(i)]))) for i in range(1, n)}
    while len(edges) < n - 1 + extra:
        a, b = rng.sample(range(n), 2)
        edges.add(tuple(sorted((a, b))))
    return sorted(edges)  # type: ignore[arg-type]


def edges_of(n: int, topology: str, *, seed: int = 1, extra: int = 0) -> list[tuple[int, int]]:
    return random_edges(n, extra, seed) if topology == "random" else topology_edges(n, topology)


def distances(n: int, edges: Iterable[tuple[int, int]], source: int) -> dict[int, int]:
    """Hop distance from ``source`` to every reachable node (BFS)."""
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    dist = {source: 0}
    todo = deque([source])
    while todo:
        cur = todo.popleft()
        for nxt in adj[cur]:
            if nxt not in dist:
                dist[nxt] = dist[cur] + 1
                todo.append(nxt)
    return dist


def total(nodes: Iterable[Node], counter: str) -> int:
    return sum(node.metrics.get(counter) for node in nodes)


def snapshot(nodes: Iterable[Node], *counters: str) -> dict[str, dict[str, int]]:
    return {n.name: {c: n.metrics.get(c) for c in counters} for n in nodes}


async def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``check`` every 50 ms until true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def peer_entry(name: str, rest_port: int, grpc_port: int) -> dict[str, str]:
    """A ``[[peers]]`` row for a node on pre-picked loopback ports."""
    return {"name": name, "rest": f"http://127.0.0.1:{rest_port}", "grpc": f"127.0.0.1:{grpc_port}"}
