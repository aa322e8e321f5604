"""Start real peerkit nodes for tests: in this event loop, or as child processes.

In-process nodes listen on port 0 (the OS picks a free port, no race) and are
wired together afterwards; process nodes get pre-picked free ports because
their configs must name each other. Every process is killed by PID at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from peerkit import Node
from peerkit.config import DEFAULT_PLUGINS, Config, parse_config

LOOPBACK = "127.0.0.1"


# Below Linux's ephemeral range (32768-60999): a port the OS hands out for port 0
# or for an outgoing connection could be taken again by another test between
# free_port() and the node's bind; this range is only ever chosen on purpose.
_PORT_RANGE = (15000, 32000)
_issued: set[int] = set()


def free_port() -> int:
    """A port that is free now and that this process has not handed out before.

    For configs that must name ports up front; in-process nodes use port 0.
    """
    for _ in range(1000):
        port = random.randrange(*_PORT_RANGE)
        if port in _issued:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        _issued.add(port)
        return port
    raise RuntimeError("no free port found in the test range")


def config_dict(
    base: Path,
    name: str,
    *,
    plugins: Iterable[str] = DEFAULT_PLUGINS,
    rest_port: int = 0,
    grpc_port: int = 0,
    peers: Iterable[dict[str, str]] = (),
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """A node config as a TOML-shaped dict, with its dirs under ``base/name``."""
    doc: dict[str, Any] = {
        "node": {
            "name": name,
            "host": LOOPBACK,
            "rest_port": rest_port,
            "grpc_port": grpc_port,
            "shared_dir": str(base / name / "shared"),
            "state_dir": str(base / name / "state"),
            "plugins": list(plugins),
        },
        "peers": list(peers),
    }
    doc.update(sections)
    return doc


def make_config(base: Path, name: str, **kwargs: Any) -> Config:
    return parse_config(config_dict(base, name, **kwargs), source=f"{name}.toml", base_dir=base, env={})


def write_config(base: Path, name: str, **kwargs: Any) -> Path:
    path = base / f"{name}.toml"
    path.write_bytes(msgspec.toml.encode(config_dict(base, name, **kwargs)))
    return path


@contextlib.asynccontextmanager
async def running_node(base: Path, name: str = "n1", **kwargs: Any) -> AsyncIterator[Node]:
    """A started in-process node on free ports; stopped on exit."""
    node = Node(make_config(base, name, **kwargs))
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def topology_edges(n: int, topology: str) -> list[tuple[int, int]]:
    if topology == "line":
        return [(i, i + 1) for i in range(n - 1)]
    if topology == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(i, i + 1) for i in range(n - 1)]
    if topology == "star":
        return [(0, i) for i in range(1, n)]
    if topology == "mesh":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ValueError(f"unknown topology {topology!r}")


def link(a: Node, b: Node) -> None:
    """Make a and b neighbours of each other (both directions, as friends)."""
    assert a.rest_url or a.grpc_address
    a.peers.add(b.name, b.rest_url or "http://127.0.0.1:1", b.grpc_address or "127.0.0.1:1", friend=True)
    b.peers.add(a.name, a.rest_url or "http://127.0.0.1:1", a.grpc_address or "127.0.0.1:1", friend=True)


@contextlib.asynccontextmanager
async def running_network(
    base: Path, n: int, topology: str = "line", *, edges: list[tuple[int, int]] | None = None, **kwargs: Any
) -> AsyncIterator[list[Node]]:
    """n in-process nodes named p0..p{n-1}, linked by ``topology`` (or explicit ``edges``)."""
    nodes = [Node(make_config(base, f"p{i}", **kwargs)) for i in range(n)]
    started: list[Node] = []
    try:
        for node in nodes:
            await node.start()
            started.append(node)
        for i, j in edges if edges is not None else topology_edges(n, topology):
            link(nodes[i], nodes[j])
        yield nodes
    finally:
        await asyncio.gather(*(node.stop() for node in started), return_exceptions=True)


class NodeProcess:
    """``peerkit node run`` in a child process; stop() sends SIGTERM, then SIGKILL, by PID."""

    def __init__(self, config_path: Path, *, rest_port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.rest_port = rest_port
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config_path.with_suffix(".log")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def rest_url(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"

    def start(self, *, wait: float = 20.0) -> NodeProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peerkit.cli.main", "node", "run", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        if self.rest_port:
            try:
                self.wait_ready(wait)
            except BaseException:
                self.stop()  # never leave a half-started node behind
                raise
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.rest_url}/api/v1/status", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"node at {self.rest_url} not ready after {timeout}s")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode
