"""The ``[discovery_flood]`` config table (CONTRACT.md "Configuration")."""

from __future__ import annotations

from typing import Literal

import msgspec

TTL_CAP = 7
"""Hard cap on a query's TTL (CONTRACT.md): larger values are clamped, never honoured."""

MAX_TIMEOUT_S = 60.0


class FloodConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Settings of the flooding discovery plugin.

    ``ttl``/``timeout_s`` are the defaults of one locate; ``ping_interval_s``
    paces membership; ``learn_peers``/``max_peers`` bound what pongs may add
    (friends are always kept); ``transport`` pins how messages travel
    (``auto`` prefers gRPC); ``max_queries_per_s``/``query_burst`` are the
    per-neighbour token bucket; ``max_entries_per_peer`` caps one peer's part of
    a ``network/files`` listing.
    """

    ttl: int = 4
    timeout_s: float = 3.0
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 2.0
    learn_peers: bool = True
    max_peers: int = 8
    transport: Literal["auto", "grpc", "rest"] = "auto"
    max_queries_per_s: float = 50.0
    query_burst: int = 100
    max_entries_per_peer: int = 1000
    seen_cache_size: int = 10_000
    seen_ttl_s: float = 120.0
    dead_retry_max_s: float = 60.0

    def __post_init__(self) -> None:
        # msgspec turns these ValueErrors into one config error line naming the key.
        if not 0 <= self.ttl <= TTL_CAP:
            raise ValueError(f"ttl: expected 0 to {TTL_CAP}, got {self.ttl}")
        for key in ("timeout_s", "ping_interval_s", "ping_timeout_s", "max_queries_per_s", "seen_ttl_s", "dead_retry_max_s"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: expected a number > 0, got {getattr(self, key)}")
        if self.timeout_s > MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s: expected at most {MAX_TIMEOUT_S}, got {self.timeout_s}")
        for key in ("max_peers", "query_burst", "max_entries_per_peer", "seen_cache_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected an integer >= 1, got {getattr(self, key)}")
