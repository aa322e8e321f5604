"""The bytes ECO sends: one pre-generated buffer, sliced, never read from disk.

The buffer is deterministic (seeded), so a client can check what it received
and two runs hash the same, and incompressible, so no layer can cheat by
compressing it. Streams reuse one chunk object per request instead of
allocating per chunk: the cost measured is the path, not the allocator.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator

MAX_CHUNK = 4 << 20  # below the 8 MiB gRPC message limit (peerkit.grpc_server)
SEED = 0x9EE7C17


@functools.cache
def buffer() -> bytes:
    """The shared MAX_CHUNK-byte payload (generated once per process)."""
    return random.Random(SEED).randbytes(MAX_CHUNK)


def chunks(size: int, chunk_size: int) -> Iterator[bytes]:
    """``size`` bytes as chunks of ``chunk_size``: one object reused, plus a shorter last one.

    The stream repeats the buffer's first ``chunk_size`` bytes; chunk_size is
    clamped to 1..MAX_CHUNK.
    """
    chunk_size = max(1, min(chunk_size, MAX_CHUNK))
    full = buffer()[:chunk_size]
    whole, rest = divmod(size, chunk_size)
    for _ in range(whole):
        yield full
    if rest:
        yield full[:rest]


def expected(size: int, chunk_size: int) -> bytes:
    """What :func:`chunks` produces, in one piece (tests and small checks only)."""
    return b"".join(chunks(size, chunk_size))
