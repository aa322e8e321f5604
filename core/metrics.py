"""Per-node counters and histograms, exposed in status and as Prometheus metrics.

Each node owns its own ``CollectorRegistry`` (never the global one) so several
nodes can live in one process (tests) without mixing their numbers. Plugins
add their own metrics through the same object.
"""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE

STATUS_COUNTERS = ("queries_received", "queries_forwarded", "duplicates_dropped", "hits_returned")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BAD = re.compile(r"[^a-zA-Z0-9_]")

__all__ = ["Metrics", "PROMETHEUS_CONTENT_TYPE", "STATUS_COUNTERS"]


class Metrics:
    """Named counters (shown in ``status.counters``) mirrored as Prometheus metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(STATUS_COUNTERS, 0)
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        for name in STATUS_COUNTERS:
            self._prom_counter(name)
        self.bytes_sent = Counter(
            "peerkit_bytes_sent", "Bytes sent, by transport", ["transport"], registry=self.registry
        )
        self.bytes_received = Counter(
            "peerkit_bytes_received", "Bytes received, by transport", ["transport"], registry=self.registry
        )

    def _prom_counter(self, name: str) -> Counter:
        """One Prometheus counter per sanitised base name; ``base.key`` becomes label key="key"."""
        base, dot, _ = name.partition(".")
        prom = f"peerkit_{_BAD.sub('_', base)}" + ("_by_key" if dot else "")
        counter = self._counters.get(prom)
        if counter is None:
            labels = ["key"] if dot else []
            counter = Counter(prom, f"peerkit counter {base}" + (" by key" if dot else ""), labels, registry=self.registry)
            self._counters[prom] = counter
        return counter

    def inc(self, name: str, amount: int = 1) -> None:
        """Add to a status counter (created on first use).

        ``"neighbour_failures.peer2"`` shows in status under that name and in
        Prometheus as ``peerkit_neighbour_failures_by_key_total{key="peer2"}``.
        """
        base, dot, key = name.partition(".")
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount
            counter = self._prom_counter(name)
        (counter.labels(key) if dot else counter).inc(amount)

    def get(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def histogram(self, name: str, doc: str, labelnames: tuple[str, ...] = ()) -> Histogram:
        """Get or create a latency histogram (seconds) in this node's registry."""
        with self._lock:
            hist = self._histograms.get(name)
            if hist is None:
                hist = Histogram(
                    f"peerkit_{_BAD.sub('_', name)}", doc, list(labelnames), buckets=LATENCY_BUCKETS, registry=self.registry
                )
                self._histograms[name] = hist
            return hist

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        hist = self.histogram(name, f"{name} latency in seconds", tuple(sorted(labels)))
        (hist.labels(**labels) if labels else hist).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this node's registry."""
        return generate_latest(self.registry)
