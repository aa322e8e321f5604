"""Per-neighbour failure counters (``neighbour_failures`` and ``neighbour_failures.<peer>`` in status)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peerkit import Node

log = logging.getLogger("peerkit.flood")


def neighbour_failed(node: Node, peer_name: str) -> str | None:
    """Count one failed contact with ``peer_name`` and mark it in the table; returns its new state."""
    node.metrics.inc("neighbour_failures")
    try:
        node.metrics.inc(f"neighbour_failures.{peer_name}")
    except ValueError:
        # Peer names "a-b" and "a.b" map to one Prometheus name; the status counter is
        # already counted (Metrics stores it first), only the Prometheus mirror is skipped.
        log.debug("%s: no Prometheus mirror for neighbour_failures.%s", node.name, peer_name)
    return node.peers.mark_failure(peer_name)
