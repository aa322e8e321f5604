"""Bootstrap and membership with real nodes: announce, ping states, learning, late joiners."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from peerkit import Node

from support.flood import FLOOD_PLUGINS, flood, peer_entry, share, wait_until
from support.nodes import free_port, make_config, running_network

FAST = {"ping_interval_s": 0.1, "ping_timeout_s": 1.0, "dead_retry_max_s": 0.4}


class Planned:
    """Nodes on pre-picked ports, so configs can name each other as ``[[peers]]`` friends."""

    def __init__(self, base, names, *, friends, **flood_cfg) -> None:
        self.base = base
        self.ports = {name: (free_port(), free_port()) for name in names}
        self.friends = friends
        self.flood_cfg = {**FAST, **flood_cfg}

    def config(self, name):
        _, grpc_port = self.ports[name]
        peers = [peer_entry(f, 1, self.ports[f][1]) for f in self.friends.get(name, [])]
        return make_config(
            self.base, name, plugins=FLOOD_PLUGINS, grpc_port=grpc_port, peers=peers, discovery_flood=self.flood_cfg
        )


@contextlib.asynccontextmanager
async def started(*nodes: Node) -> AsyncIterator[None]:
    running = []
    try:
        for node in nodes:
            await node.start()
            running.append(node)
        yield
    finally:
        await asyncio.gather(*(n.stop() for n in running), return_exceptions=True)


def names(node: Node) -> set[str]:
    return {p.name for p in node.peers.all()}


async def test_announce_makes_links_two_way_and_learn_off_keeps_exactly_them(tmp_path):
    plan = Planned(tmp_path, ["hub", "s1", "s2", "s3"], friends={s: ["hub"] for s in ("s1", "s2", "s3")}, learn_peers=False)
    hub, s1, s2, s3 = (Node(plan.config(n)) for n in ("hub", "s1", "s2", "s3"))
    async with started(hub):
        assert names(hub) == set(), "the hub has no friends of its own"
    hub = Node(plan.config("hub"))  # a node is started once; the same config again
    async with started(hub, s1, s2, s3):
        await wait_until(lambda: names(hub) == {"s1", "s2", "s3"}, 15, "spokes announced to the hub")
        assert not any(p.friend for p in hub.peers.all()), "announced peers are not config friends"
        await asyncio.sleep(0.6)  # several ping rounds: pongs carry the other spokes, learning is off
        assert [names(s) for s in (s1, s2, s3)] == [{"hub"}] * 3
        await wait_until(
            lambda: all(p.state == "alive" and p.last_seen for s in (hub, s1) for p in s.peers.all()), 15, "pings answered"
        )
        share(s3, "s3.txt")
        result = await flood(s1).locate("s3.txt", ttl=2)
        assert [(h.peer, h.hops) for h in result.hits] == [("s3", 2)]


async def test_peer_table_converges_with_learning(tmp_path):
    line = [f"n{i}" for i in range(5)]
    plan = Planned(tmp_path, line, friends={line[i]: [line[i - 1]] for i in range(1, 5)}, learn_peers=True, max_peers=8)
    nodes = [Node(plan.config(n)) for n in line]
    async with started(*nodes):
        await wait_until(
            lambda: all(names(n) == set(line) - {n.name} for n in nodes), 20, "every node knows every other"
        )
        await wait_until(lambda: all(p.state == "alive" for n in nodes for p in n.peers.all()), 15, "all alive")
        assert sum(n.metrics.get("peers_learned") for n in nodes) > 0
        # Converged means stable: more rounds change nothing.
        await asyncio.sleep(0.3)
        assert all(names(n) == set(line) - {n.name} for n in nodes)


async def test_learning_stops_at_max_peers_but_friends_are_kept(tmp_path):
    spokes = [f"s{i}" for i in range(5)]
    plan = Planned(tmp_path, ["hub", *spokes], friends={s: ["hub"] for s in spokes}, learn_peers=True, max_peers=2)
    hub = Node(plan.config("hub"))
    others = [Node(plan.config(s)) for s in spokes]
    async with started(hub, *others):
        await wait_until(lambda: names(hub) == set(spokes), 15, "every spoke's announce accepted (configured links)")
        await wait_until(lambda: all(len(names(s)) == 2 for s in others), 15, "spokes learn up to max_peers")
        await asyncio.sleep(0.5)
        assert all(len(names(s)) == 2 and "hub" in names(s) for s in others)
        assert names(hub) == set(spokes)


async def test_late_joiner_is_found(tmp_path):
    async with running_network(
        tmp_path, 4, "ring", plugins=FLOOD_PLUGINS, discovery_flood={"learn_peers": False, "ping_interval_s": 30.0}
    ) as nodes:
        p2 = nodes[2]
        assert (await flood(nodes[0]).locate("late.txt", ttl=3)).hits == []
        joiner = Node(
            make_config(
                tmp_path, "late", plugins=FLOOD_PLUGINS, peers=[peer_entry("p2", 1, p2.grpc_port)],
                discovery_flood={"learn_peers": False, "ping_interval_s": 30.0},
            )
        )
        share(joiner, "late.txt")
        async with started(joiner):
            await wait_until(lambda: "late" in p2.peers, 15, "the joiner's announce reached p2")
            result = await flood(nodes[0]).locate("late.txt", ttl=3)
            assert [(h.peer, h.hops) for h in result.hits] == [("late", 3)]
            assert (await flood(nodes[0]).locate("late.txt", ttl=2)).hits == [], "three hops away, not two"


async def test_removed_peer_stays_removed(tmp_path):
    plan = Planned(tmp_path, ["a", "b", "c"], friends={"b": ["a"], "c": ["a"]}, learn_peers=True)
    a, b, c = (Node(plan.config(n)) for n in "abc")
    async with started(a, b, c):
        await wait_until(lambda: names(a) == {"b", "c"} and names(c) == {"a", "b"}, 15, "the triangle forms")
        await asyncio.to_thread(a.peers.remove, "b")  # the operator's decision
        # b keeps pinging and re-announcing (every 8 intervals); c's pongs keep offering b.
        await asyncio.sleep(1.2)
        assert names(a) == {"c"}
        await wait_until(  # a still answers b's pings; it just does not list b
            lambda: b.peers.get("a").state == "alive" and b.peers.get("a").failures == 0, 15, "a answers b"
        )


async def test_dead_peer_is_skipped_retried_and_alive_again(tmp_path):
    plan = Planned(tmp_path, ["a", "b"], friends={"b": ["a"]}, learn_peers=False)
    a = Node(plan.config("a"))
    async with started(a):
        b = Node(plan.config("b"))
        share(b, "b.txt")
        async with started(b):
            await wait_until(lambda: "b" in a.peers, 15, "b announced")
            assert [h.peer for h in (await flood(a).locate("b.txt", ttl=1)).hits] == ["b"]
        await wait_until(lambda: a.peers.get("b").state == "dead", 15, "a marks the stopped b dead")
        forwarded = a.metrics.get("queries_forwarded")
        result = await flood(a).locate("b.txt", ttl=1, timeout=1.0)
        assert result.hits == [] and result.peers_reached == 1
        assert a.metrics.get("queries_forwarded") == forwarded, "a dead neighbour is not sent queries"
        assert a.metrics.get("neighbour_failures.b") >= 3
        b2 = Node(plan.config("b"))  # same name, ports and share: the node comes back
        async with started(b2):
            await wait_until(lambda: a.peers.get("b").state == "alive", 15, "the retried b is alive again")
            # a's channel to b failed while b was down; a fresh one is opened at once,
            # so the first locate after b is alive again finds it.
            assert [h.peer for h in (await flood(a).locate("b.txt", ttl=1, timeout=2.0)).hits] == ["b"]


async def test_a_peer_answering_pings_with_hostile_json_does_not_stop_pinging(tmp_path):
    """A pong nested 100,000 deep used to end the ping loop for good (RecursionError): every peer's state froze."""
    async with running_network(tmp_path, 2, plugins=FLOOD_PLUGINS, discovery_flood={**FAST, "learn_peers": False}) as (a, h):
        hostile_calls = []

        async def hostile_pong(payload: bytes, sender: str) -> bytes:
            hostile_calls.append(sender)
            return b'{"name":"p1","known":true,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

        h.messages._handlers["flood.ping"] = hostile_pong  # noqa: SLF001 - make a real node misbehave
        await wait_until(lambda: hostile_calls.count("p0") >= 3, 15, "p0 keeps pinging after a hostile pong")
        assert a.metrics.get("neighbour_failures.p1") >= 2  # each counted as a failed ping, not a crash


async def test_a_learned_peer_nobody_reaches_is_not_passed_on_and_is_forgotten(tmp_path):
    """A row that never answered used to spread through pongs and hold a max_peers place forever."""
    async with running_network(tmp_path, 2, plugins=FLOOD_PLUGINS, discovery_flood=FAST) as (a, b):
        a.peers.add("ghost", "http://127.0.0.1:1", "127.0.0.1:1", learned=True)
        await wait_until(lambda: "ghost" not in a.peers, 30, "a forgets the unreachable learned peer")
        assert a.metrics.get("peers_forgotten") == 1
        assert "ghost" not in b.peers  # never in a's pongs: a never reached it
        a.peers.add("ghost", "http://127.0.0.1:1", "127.0.0.1:1", learned=True)  # forgetting is not an operator's removal
        a.peers.add("gone", "http://127.0.0.1:1", "127.0.0.1:1")  # an operator's peer is kept, however dead
        await wait_until(lambda: "ghost" not in a.peers, 30, "forgotten again")
        assert "gone" in a.peers and a.peers.get("gone").state == "dead"
