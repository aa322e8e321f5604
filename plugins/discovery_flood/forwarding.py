"""Handling one query: answer locally, forward while hops remain, merge what comes back.

The deadline is carved hop by hop: a node with ``remaining`` seconds waits at
most ``remaining - reply_margin`` for its neighbours and hands each of them a
budget smaller still, so every child answers (with partial results if it must)
before its parent stops waiting, and the origin always returns by its own
deadline. A dead or frozen neighbour costs its branch, never the whole query.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

import msgspec

from .counters import neighbour_failed
from .messages import (
    MAX_HITS_PER_REPLY,
    MAX_REACHED,
    QUERY,
    Query,
    QueryHit,
    QueryReply,
    ReachedPeer,
    check_query,
    check_ttl,
    decode,
    decode_query,
    encode,
)
from .models import LocateResult, NetworkFiles, PeerFiles, SharedFile
from .ratelimit import RateLimiter
from .seen import SeenCache

if TYPE_CHECKING:
    from peerkit import Node, Peer

    from .config import FloodConfig

log = logging.getLogger("peerkit.flood")

MIN_CHILD_BUDGET_S = 0.05
"""Below this a neighbour could not answer usefully: do not forward."""


def carve(remaining: float) -> tuple[float, float]:
    """Split the time a node has left into (how long to wait for a child, the budget the child gets).

    The node keeps 5% (at least 20 ms) to merge and send its own reply; the
    child gets 10% (at least 30 ms) less than the wait, for the two network
    transits and its own bookkeeping. Measured on loopback a hop costs a few
    milliseconds, so the margins are generous without starving deep TTLs
    (3 s still leaves ~1 s at 7 hops).
    """
    wait = remaining - max(0.02, 0.05 * remaining)
    child = wait - max(0.03, 0.10 * wait)
    return max(wait, 0.0), max(child, 0.0)


def peer_addresses(node: Node) -> tuple[str, str]:
    """This node's (rest, grpc) for others' tables; the table wants both, so a disabled one gets an unreachable placeholder."""
    host = node.advertise
    host = f"[{host}]" if ":" in host else host
    return node.rest_url or f"http://{host}:1", node.grpc_address or f"{host}:1"


class _Merged:
    """Hits, reached nodes and truncations of a subtree, de-duplicated and bounded."""

    def __init__(self, per_peer_limit: int) -> None:
        self.per_peer_limit = per_peer_limit
        self.hits: dict[tuple[str, str, str], QueryHit] = {}
        self.per_peer: dict[str, int] = {}
        self.reached: dict[str, ReachedPeer] = {}
        self.truncated: set[str] = set()

    def add_hit(self, hit: QueryHit) -> None:
        key = (hit.peer, hit.name, hit.sha256)
        old = self.hits.get(key)
        if old is not None:
            if hit.hops < old.hops:
                self.hits[key] = hit
            return
        if len(self.hits) >= MAX_HITS_PER_REPLY:
            self.truncated.add(hit.peer)
            return
        count = self.per_peer.get(hit.peer, 0)
        if count >= self.per_peer_limit:  # a neighbour claiming more than asked for
            self.truncated.add(hit.peer)
            return
        self.per_peer[hit.peer] = count + 1
        self.hits[key] = hit

    def add_reply(self, reply: QueryReply) -> None:
        for info in reply.reached:
            if len(self.reached) < MAX_REACHED:
                self.reached.setdefault(info.name, info)
        self.truncated.update(reply.truncated[:MAX_REACHED])
        for hit in reply.hits:
            self.add_hit(hit)

    def reply(self) -> QueryReply:
        hits = sorted(self.hits.values(), key=lambda h: (h.hops, h.peer, h.name))
        return QueryReply(hits=hits, reached=list(self.reached.values()), truncated=sorted(self.truncated)[:MAX_REACHED])


STRANGERS = "?"  # the rate-limit bucket of every sender that is not a neighbour


class Flooder:
    """Per-node query handling (the ``flood.query`` message) and the origin's locate."""

    def __init__(self, node: Node, config: FloodConfig) -> None:
        self.node = node
        self.config = config
        self.transport = None if config.transport == "auto" else config.transport
        self.seen = SeenCache(config.seen_cache_size, config.seen_ttl_s)
        self.limiter = RateLimiter(config.max_queries_per_s, config.query_burst)

    # ------------------------------------------------------------ receiving
    async def handle(self, payload: bytes, sender: str) -> bytes:
        """The ``flood.query`` handler: validate, rate-limit, process, reply (ValueError if malformed)."""
        metrics = self.node.metrics
        try:
            query = decode_query(payload)
        except ValueError:
            metrics.inc("queries_rejected")
            raise
        # Neighbours each have a bucket; every name not in the table shares one, so
        # inventing names (senders are not authenticated without bind_names) buys nothing.
        if not self.limiter.allow(sender if sender in self.node.peers else STRANGERS):
            metrics.inc("queries_rate_limited")
            return encode(QueryReply(dropped="rate_limited"))
        reply = await self.process(query, sender, time.monotonic() + query.budget_ms / 1000)
        return encode(reply)

    async def process(self, query: Query, sender: str, deadline: float) -> QueryReply:
        """Handle ``query`` once: local answer plus the forwarded subtree, by ``deadline``."""
        metrics = self.node.metrics
        metrics.inc("queries_received")
        if not self.seen.add(query.id):
            metrics.inc("duplicates_dropped")
            return QueryReply(dropped="duplicate")
        limit = min(query.limit, self.config.max_entries_per_peer)
        merged = _Merged(limit)
        rest, grpc = peer_addresses(self.node)
        merged.reached[self.node.name] = ReachedPeer(name=self.node.name, rest=rest, grpc=grpc, hops=query.hops)

        forwards = self._start_forwards(query, sender, deadline)
        local = asyncio.create_task(self._local_hits(query, limit, rest, grpc))
        tasks = [local, *forwards]
        try:
            wait_s, _ = carve(deadline - time.monotonic())
            done, pending = await asyncio.wait(tasks, timeout=wait_s)
        finally:
            # Past the deadline (or cancelled by our own caller): nobody will read these answers.
            for task in tasks:
                task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=0.05)

        if local in done and local.exception() is None:
            hits, truncated = local.result()
            for hit in hits:
                merged.add_hit(hit)
            if truncated:
                merged.truncated.add(self.node.name)
            metrics.inc("hits_returned", len(hits))
        elif local in pending:
            metrics.inc("local_query_timeouts")
        else:
            log.warning("%s: answering %r from the share failed: %s", self.node.name, query.query, local.exception())
        for task in forwards:
            peer_name = task.get_name()
            if task in pending:
                self._failed(peer_name, "no answer by the deadline")
                continue
            err = task.exception()
            if err is not None:
                self._failed(peer_name, str(err))
                continue
            reply = task.result()
            self.node.peers.mark_alive(peer_name)
            if reply.dropped == "rate_limited":
                metrics.inc("forwards_rate_limited")
            merged.add_reply(reply)
        return merged.reply()

    async def _local_hits(self, query: Query, limit: int, rest: str, grpc: str) -> tuple[list[QueryHit], bool]:
        entries = await self.node.local_query("*" if query.kind == "list" else query.query)
        hits = [
            QueryHit(peer=self.node.name, rest=rest, grpc=grpc, name=e.name, size=e.size, sha256=e.sha256, hops=query.hops)
            for e in entries[:limit]
        ]
        return hits, len(entries) > limit

    # ----------------------------------------------------------- forwarding
    def _start_forwards(self, query: Query, sender: str, deadline: float) -> list[asyncio.Task[QueryReply]]:
        if query.ttl <= 0:
            return []
        wait_s, child_s = carve(deadline - time.monotonic())
        if child_s < MIN_CHILD_BUDGET_S:
            self.node.metrics.inc("forwards_skipped_deadline")
            return []
        # The sender and the origin have seen this id already: sending it back would only be dropped.
        targets = [p for p in self.node.peers.alive() if p.name not in (sender, query.origin)]
        if not targets:
            return []
        child = msgspec.structs.replace(query, ttl=query.ttl - 1, hops=query.hops + 1, budget_ms=max(1, int(child_s * 1000)))
        payload = encode(child)
        self.node.metrics.inc("queries_forwarded", len(targets))
        return [asyncio.create_task(self._forward(peer, payload, wait_s), name=peer.name) for peer in targets]

    async def _forward(self, peer: Peer, payload: bytes, timeout: float) -> QueryReply:
        raw = await self.node.call_peer(peer, QUERY, payload, timeout=timeout, transport=self.transport)
        return decode(raw, QueryReply)

    def _failed(self, peer_name: str, why: str) -> None:
        """A neighbour did not answer a forwarded query usefully: count it against that neighbour."""
        state = neighbour_failed(self.node, peer_name)
        log.info("%s: query to %s failed (%s); now %s", self.node.name, peer_name, why, state)

    # --------------------------------------------------------------- origin
    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.config.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
            raise ValueError(f"timeout must be a number of seconds in (0, 60], got {timeout!r}")
        return float(timeout)

    async def _originate(self, query: str, kind: str, ttl: int | None, timeout: float | None, limit: int) -> tuple[Query, QueryReply, float]:
        ttl = check_ttl(self.config.ttl if ttl is None else ttl)
        seconds = self._timeout(timeout)
        q = Query(
            id=uuid.uuid4().hex, ttl=ttl, hops=0, origin=self.node.name, query=query, kind=kind,  # type: ignore[arg-type]
            limit=limit, budget_ms=max(1, int(seconds * 1000)),
        )
        start = time.monotonic()
        reply = await self.process(q, "", start + seconds)
        return q, reply, (time.monotonic() - start) * 1000

    async def locate(self, query: str, *, ttl: int | None = None, timeout: float | None = None) -> LocateResult:
        """Flood ``query`` (exact name, glob or ``sha256:<hex>``) and return every hit found by the deadline.

        ``ttl`` defaults to the config's (capped at 7; negative or non-integer
        is a ValueError), ``timeout`` to ``timeout_s``. The node's own files
        are hits with ``hops=0``.
        """
        check_query(query)
        q, reply, elapsed = await self._originate(query, "match", ttl, timeout, self.config.max_entries_per_peer)
        return LocateResult(
            name=query, query_id=q.id, ttl=q.ttl, hits=reply.hits, peers_reached=len(reply.reached), elapsed_ms=round(elapsed, 3)
        )

    async def network_files(
        self, *, ttl: int | None = None, timeout: float | None = None, limit: int | None = None
    ) -> NetworkFiles:
        """Every reachable peer's shared files, by peer (at most ``limit`` per peer, default the config's cap)."""
        cap = self.config.max_entries_per_peer
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        limit = cap if limit is None else min(limit, cap)
        q, reply, elapsed = await self._originate("", "list", ttl, timeout, limit)
        by_peer: dict[str, PeerFiles] = {
            info.name: PeerFiles(peer=info.name, rest=info.rest, grpc=info.grpc, hops=info.hops, files=[]) for info in reply.reached
        }
        for hit in reply.hits:
            entry = by_peer.get(hit.peer)
            if entry is None:  # a hit for a peer nobody reported reaching: still just data
                entry = by_peer[hit.peer] = PeerFiles(peer=hit.peer, rest=hit.rest, grpc=hit.grpc, hops=hit.hops, files=[])
            entry.files.append(SharedFile(name=hit.name, size=hit.size, sha256=hit.sha256))
        for name in reply.truncated:
            if name in by_peer:
                by_peer[name].truncated = True
        peers = sorted(by_peer.values(), key=lambda p: (p.hops, p.peer))
        for p in peers:
            p.files.sort(key=lambda f: f.name)
        return NetworkFiles(query_id=q.id, ttl=q.ttl, peers=peers, peers_reached=len(reply.reached), elapsed_ms=round(elapsed, 3))
