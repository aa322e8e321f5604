"""The flooding protocol's messages and per-node guards, without a network."""

from __future__ import annotations

import json

import msgspec
import pytest

from peerkit.config import ConfigError, parse_config
from peerkit.plugins.discovery_flood.config import TTL_CAP, FloodConfig
from peerkit.plugins.discovery_flood.forwarding import MIN_CHILD_BUDGET_S, carve
from peerkit.plugins.discovery_flood.messages import (
    MAX_QUERY_BYTES,
    Announce,
    Pong,
    Query,
    QueryReply,
    check_query,
    check_ttl,
    decode,
    decode_query,
    encode,
)
from peerkit.plugins.discovery_flood.ratelimit import RateLimiter
from peerkit.plugins.discovery_flood.seen import SeenCache


def raw_query(**fields) -> bytes:
    doc = {"v": 1, "id": "0123456789abcdef", "ttl": 3, "hops": 0, "origin": "p0", "query": "a.txt", "budget_ms": 1000}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_query_round_trips_with_version():
    q = Query(id="0123456789abcdef", ttl=2, hops=1, origin="p0", query="*.txt", budget_ms=500)
    payload = encode(q)
    assert json.loads(payload)["v"] == 1
    assert decode_query(payload) == q


def test_newer_peers_may_add_fields():
    assert decode_query(raw_query(v=2, colour="blue")).query == "a.txt"


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"ttl": -1}, "ttl must be >= 0"),
        ({"ttl": 1.5}, "Expected `int`"),
        ({"ttl": "3"}, "Expected `int`"),
        ({"ttl": True}, "Expected `int`"),
        ({"ttl": ...}, "missing required field `ttl`"),
        ({"hops": 99}, "hops"),
        ({"hops": -1}, "hops"),
        ({"id": "x"}, "id"),
        ({"id": "../../etc/passwd"}, "id"),
        ({"origin": "bad name!"}, "origin"),
        ({"query": ""}, "empty query"),
        ({"query": "x" * (MAX_QUERY_BYTES + 1)}, "query"),
        ({"query": "é" * (MAX_QUERY_BYTES // 2 + 1)}, f"over {MAX_QUERY_BYTES} bytes"),
        ({"budget_ms": 0}, "budget_ms"),
        ({"v": 0}, "v"),
        ({"kind": "delete"}, "kind"),
    ],
)
def test_hostile_queries_are_rejected_with_a_reason(fields, reason):
    with pytest.raises(ValueError, match="malformed Query") as err:
        decode_query(raw_query(**fields))
    assert reason in str(err.value)


@pytest.mark.parametrize("payload", [b"", b"{", b"null", b"[]", b"\xff\xfe", b'{"id": 1}'])
def test_garbage_is_a_value_error(payload):
    with pytest.raises(ValueError):
        decode_query(payload)


def test_ttl_above_cap_is_clamped():
    assert decode_query(raw_query(ttl=99)).ttl == TTL_CAP
    # A query may never travel more than TTL_CAP hops from its origin, whatever a neighbour claims.
    assert decode_query(raw_query(ttl=7, hops=5)).ttl == 2
    assert decode_query(raw_query(ttl=1, hops=5)).ttl == 1


def test_list_query_needs_no_string():
    assert decode_query(raw_query(query="", kind="list")).kind == "list"


def test_budget_is_capped():
    assert decode_query(raw_query(budget_ms=10**9)).budget_ms == 60_000


def test_reply_hits_are_validated_as_data():
    hit = {"peer": "x", "rest": "r", "grpc": "g", "name": "a", "size": 1, "sha256": "ab", "hops": 1}
    assert decode(msgspec.json.encode({"hits": [hit]}), QueryReply).hits[0].name == "a"
    for bad in ({"size": -1}, {"hops": 8}, {"sha256": "f" * 65}, {"name": 5}):
        with pytest.raises(ValueError, match="malformed QueryReply"):
            decode(msgspec.json.encode({"hits": [{**hit, **bad}]}), QueryReply)


def test_other_messages_decode_and_reject():
    pong = decode(encode(Pong(name="p1", known=True)), Pong)
    assert pong.peers == [] and pong.known
    with pytest.raises(ValueError):
        decode(b'{"name": "p1", "rest": 1, "grpc": "x"}', Announce)
    with pytest.raises(ValueError):
        decode(msgspec.json.encode({"name": "p1", "known": False, "peers": [{"name": "a", "rest": "", "grpc": ""}] * 100}), Pong)


def test_caller_checks():
    assert check_ttl(0) == 0 and check_ttl(99) == TTL_CAP
    for bad in (-1, 1.0, "2", None, True):
        with pytest.raises(ValueError):
            check_ttl(bad)
    assert check_query("*.txt") == "*.txt"
    for bad in ("", None, "x" * (MAX_QUERY_BYTES + 1)):
        with pytest.raises(ValueError):
            check_query(bad)


def test_seen_cache_drops_duplicates_expires_and_stays_bounded():
    now = [0.0]
    seen = SeenCache(max_size=3, ttl_s=10, clock=lambda: now[0])
    assert seen.add("a") and not seen.add("a")
    now[0] = 11
    assert seen.add("a"), "expired ids are handled again"
    for qid in "bcd":
        assert seen.add(qid)
    assert len(seen) == 3 and "a" not in seen, "the oldest is evicted when full"


def test_rate_limiter_is_per_neighbour_and_refills():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("b"), "another neighbour has its own bucket"
    now[0] = 1.0  # two tokens back
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_deadline_carving_gives_children_less_and_survives_seven_hops():
    budget = 3.0
    for _ in range(TTL_CAP):
        wait, child = carve(budget)
        assert 0 < child < wait < budget
        budget = child
    assert budget > MIN_CHILD_BUDGET_S
    assert carve(0.01) == (0.0, 0.0)


def _config(table: dict) -> FloodConfig:
    raw = {"node": {"name": "n", "plugins": ["discovery_flood"]}, "discovery_flood": table}
    return parse_config(raw, env={}).sections["discovery_flood"]


def test_config_defaults_and_errors():
    cfg = _config({})
    assert (cfg.ttl, cfg.timeout_s, cfg.ping_interval_s, cfg.learn_peers, cfg.max_peers, cfg.transport) == (
        4, 3.0, 5.0, True, 8, "auto",
    )
    for table, needle in (
        ({"ttl": 8}, "ttl: expected 0 to 7"),
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_peers": 0}, "max_peers"),
        ({"ttl_max": 3}, "unknown key ttl_max"),
    ):
        with pytest.raises(ConfigError, match=needle) as err:
            _config(table)
        assert "[discovery_flood]" in str(err.value) and "\n" not in str(err.value)
