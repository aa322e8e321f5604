"""The ``[echo]`` config table: how much one ECO request may move."""

from __future__ import annotations

import msgspec

from peerkit.utils import normalise_sizes

# Big enough for a 1 GB benchmark, small enough that nobody makes a node stream forever.
DEFAULT_MAX_SIZE = 4 << 30
# Measured on loopback (2 cores, 500 MB runs): gRPC download 336/505/452/425 MB/s and
# upload 220/320/308/243 MB/s for 64 KiB/256 KiB/1 MiB/4 MiB chunks.
DEFAULT_CHUNK_SIZE = 256 << 10


class EchoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``max_size``: bytes one Download may ask for or one Upload may send (an int,
    or a string with a unit such as ``"1GiB"``); over it gRPC answers
    RESOURCE_EXHAUSTED and REST 413. ``chunk_size``: Download's chunk when the
    request leaves it 0."""

    max_size: int | str = DEFAULT_MAX_SIZE
    chunk_size: int | str = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        from .payload import MAX_CHUNK

        normalise_sizes(self, "max_size", "chunk_size")
        if not 1 <= int(self.chunk_size) <= MAX_CHUNK:
            raise ValueError(f"chunk_size: expected 1 to {MAX_CHUNK} bytes, got {self.chunk_size}")
