"""Helpers for transfer tests: big random files written in chunks, hashes, polling."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BLOCK = 1 << 20


def make_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` one MiB at a time; return their sha256."""
    h = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(BLOCK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def temp_files(shared: Path) -> list[str]:
    return sorted(p.name for p in shared.iterdir() if p.name.startswith(".peerkit-tmp-"))


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(every)
    return predicate()


async def wait_grpc_serving(address: str, timeout: float = 20.0) -> None:
    """Wait until a node's gRPC health check answers SERVING (child processes)."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"gRPC at {address} not serving after {timeout}s")


def evict(path: Path, start: int = 0, length: int = 0) -> None:
    """Drop ``path``'s pages in ``[start, start + length)`` (0: to the end) from the page cache.

    Written pages must be clean to be dropped, hence the fsync. Filesystems
    that keep every page in memory (tmpfs) ignore the advice.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def open_fds_of(path: Path) -> int:
    """How many of this process's fds (the node runs in it) point at ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path.resolve())
        except OSError:
            pass
    return count
