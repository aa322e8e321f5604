"""Request and response bodies of the REST API (msgspec Structs: validated and documented by Litestar)."""

from __future__ import annotations

from typing import Literal

import msgspec


class StatusOut(msgspec.Struct, kw_only=True):
    """``GET /status``."""

    name: str
    version: str
    uptime_s: float
    plugins: list[str]
    rest: str | None
    grpc: str | None
    files: int
    peers: int
    peers_alive: int
    counters: dict[str, int]


class PeerIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /peers``: a neighbour to add."""

    name: str
    rest: str
    grpc: str


class PeerOut(msgspec.Struct, kw_only=True):
    """One row of the neighbour table."""

    name: str
    rest: str
    grpc: str
    state: Literal["alive", "suspect", "dead"]
    last_seen: float | None
    friend: bool
