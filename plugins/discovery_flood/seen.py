"""Which query ids this node has handled: bounded in size and in time.

A flood reaches a node along every path; only the first copy is handled.
Entries expire after ``ttl_s`` (far longer than any query's deadline) and the
oldest go first when the cache is full, so a flood of fresh ids costs bounded
memory and, at worst, lets a very old id be handled twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class SeenCache:
    def __init__(self, max_size: int = 10_000, ttl_s: float = 120.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        self._expires: OrderedDict[str, float] = OrderedDict()

    def _purge(self, now: float) -> None:
        # Insertion order is expiry order (one ttl for all), so expired ids sit at the front.
        while self._expires:
            oldest, expires = next(iter(self._expires.items()))
            if expires > now:
                break
            del self._expires[oldest]

    def add(self, query_id: str) -> bool:
        """Record ``query_id``; True if it is new (handle it), False if already seen (drop it)."""
        now = self._clock()
        self._purge(now)
        if query_id in self._expires:
            return False
        while len(self._expires) >= self.max_size:
            self._expires.popitem(last=False)
        self._expires[query_id] = now + self.ttl_s
        return True

    def __contains__(self, query_id: object) -> bool:
        self._purge(self._clock())
        return query_id in self._expires

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._expires)
