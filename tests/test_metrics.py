"""Per-node counters: shown in status, mirrored in Prometheus text, never mixed between nodes."""

from __future__ import annotations

from peerkit.metrics import STATUS_COUNTERS, Metrics


def test_counters_and_prometheus_text():
    m = Metrics()
    assert set(STATUS_COUNTERS) <= set(m.counters())
    m.inc("queries_received", 3)
    m.inc("neighbour_failures.peer-2")
    m.inc("neighbour_failures.peer.2")  # names that sanitise alike stay distinct
    m.inc("neighbour_failures")  # the same base used plain: its own series
    m.observe("locate_seconds", 0.02)
    counters = m.counters()
    assert counters["queries_received"] == 3
    assert counters["neighbour_failures.peer-2"] == 1 and counters["neighbour_failures.peer.2"] == 1
    text = m.render().decode()
    assert "peerkit_queries_received_total 3.0" in text
    assert 'peerkit_neighbour_failures_by_key_total{key="peer-2"} 1.0' in text
    assert 'peerkit_neighbour_failures_by_key_total{key="peer.2"} 1.0' in text
    assert "peerkit_neighbour_failures_total 1.0" in text
    assert "peerkit_locate_seconds_bucket" in text


def test_two_nodes_do_not_share_numbers():
    a, b = Metrics(), Metrics()
    a.inc("hits_returned")
    assert b.get("hits_returned") == 0
