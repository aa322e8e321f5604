"""Helpers for the REST plugin's tests: the node's Litestar app in-process, raw HTTP on the wire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from peerkit import Node

from .nodes import running_node

PROBLEM_JSON = "application/problem+json"


def rest_app(node: Node) -> Litestar:
    """Build the node's REST app through the hooks, exactly as Node.start does."""
    routes = [r for result in node.pm.hook.peerkit_rest_routes(node=node) for r in (result or [])]
    app = node.pm.hook.peerkit_rest_app(node=node, routes=routes)
    assert isinstance(app, Litestar)
    return app


def prepared_node(config: Any, extra_plugins: tuple[Any, ...] = ()) -> Node:
    """A node whose state is open and plugins configured, without servers (for in-process apps)."""
    node = Node(config)
    for plugin in extra_plugins:
        node.pm.register(plugin)
    node.store.open()
    node.peers.load([])
    node.pm.hook.peerkit_configure(node=node)
    return node


@contextlib.asynccontextmanager
async def rest_client(base: Path, *, extra_plugins: tuple[Any, ...] = (), **kwargs: Any) -> AsyncIterator[tuple[Node, AsyncTestClient]]:
    """A started node with the REST plugin, and a Litestar test client on its app."""
    kwargs.setdefault("plugins", ["rest_litestar"])
    async with running_node(base, **kwargs) as node:
        for plugin in extra_plugins:
            node.pm.register(plugin)
        async with AsyncTestClient(rest_app(node), base_url="http://127.0.0.1") as client:
            yield node, client


async def raw_request(port: int, method: str, target: str, body: bytes = b"", *, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``target`` byte for byte (no client-side normalising or re-encoding); (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with (size, mtime_ns): to prove nothing was touched."""
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*")) if p.is_file()}
