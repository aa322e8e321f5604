"""What a locate returns, to Python callers and as REST response bodies (msgspec Structs)."""

from __future__ import annotations

import msgspec

from .messages import QueryHit


class LocateResult(msgspec.Struct, kw_only=True):
    """``GET /locate``: every hit found by the deadline, closest peers first."""

    name: str
    query_id: str
    ttl: int
    hits: list[QueryHit]
    peers_reached: int
    elapsed_ms: float


class SharedFile(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    size: int
    sha256: str


class PeerFiles(msgspec.Struct, kw_only=True):
    """One reachable peer and its shared files (at most the per-peer cap; ``truncated`` if cut)."""

    peer: str
    rest: str
    grpc: str
    hops: int
    files: list[SharedFile]
    truncated: bool = False


class NetworkFiles(msgspec.Struct, kw_only=True):
    """``GET /network/files``: every reachable peer's files, by peer."""

    query_id: str
    ttl: int
    peers: list[PeerFiles]
    peers_reached: int
    elapsed_ms: float
