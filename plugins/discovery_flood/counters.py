"""Per-neighbour failure counters (``neighbour_failures`` and ``neighbour_failures.<peer>`` in status)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peerkit import Node


def neighbour_failed(node: Node, peer_name: str) -> str | None:
    """Count one failed contact with ``peer_name`` and mark it in the table; returns its new state."""
    node.metrics.inc("neighbour_failures")
    node.metrics.inc(f"neighbour_failures.{peer_name}")  # Prometheus: label key=<peer>
    return node.peers.mark_failure(peer_name)
