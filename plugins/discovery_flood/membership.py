"""Bootstrap and membership: announce to friends, ping neighbours, learn peers from pongs.

On start a node announces itself to each friend peer, which adds it, so links
are two-way. Every ``ping_interval_s`` it pings its neighbours: an answer
marks one alive, a miss suspect, several misses dead (queries skip dead
peers). Dead peers are pinged again with exponential backoff, and one that
answers is alive again. Pongs carry a sample of the answerer's live
neighbours; with ``learn_peers`` the node adds them (``learned=True``, so a
peer the operator removed stays removed) until it has ``max_peers``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from peerkit.errors import AlreadyExists, PeerkitError, TooLarge
from peerkit.peers import validate_grpc_address, validate_rest_url

from .counters import neighbour_failed
from .forwarding import peer_addresses
from .messages import ANNOUNCE, PING, Announce, AnnounceReply, PeerInfo, Ping, Pong, decode, encode

if TYPE_CHECKING:
    from peerkit import Node, Peer

    from .config import FloodConfig

log = logging.getLogger("peerkit.flood")

PONG_SAMPLE = 8
MAX_TABLE = 256
"""Hard cap on the table size whatever announces arrive (friends' announces bypass max_peers)."""
REANNOUNCE_EVERY = 8
FORGET_LEARNED_AFTER = 20  # failed contacts in a row before a learned (never configured) peer is dropped
"""Pings between two announces to a neighbour that does not list us back."""


class Membership:
    def __init__(self, node: Node, config: FloodConfig) -> None:
        self.node = node
        self.config = config
        self.transport = None if config.transport == "auto" else config.transport
        self.ping_timeout = min(config.ping_timeout_s, config.ping_interval_s)
        self._retry_at: dict[str, float] = {}  # dead peer -> when to ping it again
        self._backoff: dict[str, float] = {}
        self._announce_at: dict[str, float] = {}

    def _me(self) -> tuple[str, str]:
        return peer_addresses(self.node)

    # ------------------------------------------------------------- sending
    async def run(self) -> None:
        """Background loop (node.spawn): announce to friends, then ping every interval until cancelled."""
        await self.announce_friends()
        while True:
            await asyncio.sleep(self.config.ping_interval_s)
            await self.ping_round()

    async def announce_friends(self) -> None:
        friends = [p for p in self.node.peers.all() if p.friend]
        results = await asyncio.gather(*(self.announce(p, friend=True) for p in friends), return_exceptions=True)
        for peer, result in zip(friends, results):
            if isinstance(result, Exception):
                log.warning("%s: announce to %s failed unexpectedly: %r", self.node.name, peer.name, result)

    async def announce(self, peer: Peer, *, friend: bool) -> bool:
        """Ask ``peer`` to add us; True if it did (or already had us)."""
        rest, grpc = self._me()
        self._announce_at[peer.name] = time.monotonic()
        msg = Announce(name=self.node.name, rest=rest, grpc=grpc, friend=friend)
        try:
            raw = await self.node.call_peer(peer, ANNOUNCE, encode(msg), timeout=self.ping_timeout, transport=self.transport)
            reply = decode(raw, AnnounceReply)
        except (PeerkitError, ValueError) as err:
            log.info("%s: announce to %s failed: %s", self.node.name, peer.name, err)
            self._failed(peer.name)
            return False
        self._alive(peer.name)
        if not reply.accepted:
            log.info("%s: %s did not add us: %s", self.node.name, peer.name, reply.reason)
        return reply.accepted

    async def ping_round(self) -> None:
        """Ping every neighbour that is due (all but dead ones waiting out their backoff)."""
        now = time.monotonic()
        due = [p for p in self.node.peers.all() if p.state != "dead" or now >= self._retry_at.get(p.name, 0.0)]
        # One peer's failure, whatever it is, must not end the loop that keeps every other peer's state.
        results = await asyncio.gather(*(self.ping(p) for p in due), return_exceptions=True)
        for peer, result in zip(due, results):
            if isinstance(result, Exception):
                log.warning("%s: ping %s failed unexpectedly: %r", self.node.name, peer.name, result)
                self._failed(peer.name)

    async def ping(self, peer: Peer) -> bool:
        rest, grpc = self._me()
        try:
            raw = await self.node.call_peer(
                peer, PING, encode(Ping(name=self.node.name, rest=rest, grpc=grpc)), timeout=self.ping_timeout, transport=self.transport
            )
            pong = decode(raw, Pong)
            if pong.name != peer.name:
                raise ValueError(f"{peer.grpc} answers as {pong.name!r}")
        except (PeerkitError, ValueError) as err:
            log.debug("%s: ping %s failed: %s", self.node.name, peer.name, err)
            self._failed(peer.name)
            return False
        self._alive(peer.name)
        if not pong.known:
            due = self._announce_at.get(peer.name, float("-inf")) + REANNOUNCE_EVERY * self.config.ping_interval_s
            if time.monotonic() >= due:
                await self.announce(peer, friend=peer.friend)
        if self.config.learn_peers:
            await self.learn(pong.peers)
        return True

    async def learn(self, sample: list[PeerInfo]) -> None:
        """Add peers from a neighbour's pong until the table holds ``max_peers``; announce to each."""
        for info in sample:
            if len(self.node.peers) >= self.config.max_peers:
                return
            if info.name == self.node.name or info.name in self.node.peers:
                continue
            try:
                peer = await asyncio.to_thread(
                    self.node.peers.add, info.name, info.rest, info.grpc, learned=True, limit=self.config.max_peers
                )
            except TooLarge:
                return  # an announce filled the table meanwhile
            except (AlreadyExists, ValueError):
                continue  # removed by the operator, raced with another add, or a bad address: skip
            self.node.metrics.inc("peers_learned")
            log.info("%s: learned peer %s", self.node.name, peer.name)
            self.node.spawn(self.announce(peer, friend=False), name=f"{self.node.name}-announce-{peer.name}")

    def _alive(self, name: str) -> None:
        self.node.peers.mark_alive(name)
        self._retry_at.pop(name, None)
        self._backoff.pop(name, None)

    def _failed(self, name: str) -> None:
        state = neighbour_failed(self.node, name)
        if state == "dead" and self.node.peers.forget(name, after_failures=FORGET_LEARNED_AFTER):
            # Learned from a pong and unreachable ever since: free its place in max_peers.
            log.info("%s: forgot learned peer %s after %d failed contacts", self.node.name, name, FORGET_LEARNED_AFTER)
            self.node.metrics.inc("peers_forgotten")
            self._backoff.pop(name, None)
            self._retry_at.pop(name, None)
            return
        if state == "dead":
            backoff = min(self._backoff.get(name, self.config.ping_interval_s / 2) * 2, self.config.dead_retry_max_s)
            self._backoff[name] = backoff
            self._retry_at[name] = time.monotonic() + backoff

    # ----------------------------------------------------------- receiving
    def _speaks_for_others(self, claimed: str, sender: str) -> bool:
        """With [security] bind_names the sender is the certificate's name: a message about another name is a lie."""
        return self.node.config.security.bind_names and claimed != sender

    async def handle_ping(self, payload: bytes, sender: str) -> bytes:
        ping = decode(payload, Ping)
        known = ping.name in self.node.peers and not self._speaks_for_others(ping.name, sender)
        if known:
            self._alive(ping.name)
        live = [
            PeerInfo(name=p.name, rest=p.rest, grpc=p.grpc)
            for p in self.node.peers.all()
            # Only peers this node has actually reached: a row nobody ever answered for spreads no further.
            if p.state == "alive" and p.last_seen is not None and p.name != ping.name
        ]
        sample = random.sample(live, min(PONG_SAMPLE, len(live)))
        return encode(Pong(name=self.node.name, known=known, peers=sample))

    async def handle_announce(self, payload: bytes, sender: str) -> bytes:
        msg = decode(payload, Announce)
        try:  # malformed addresses are a malformed message, whether or not we would add the peer
            msg.rest = validate_rest_url(msg.rest)
            validate_grpc_address(msg.grpc)
        except ValueError as err:
            raise ValueError(f"malformed Announce message: {err}") from None
        if self._speaks_for_others(msg.name, sender):
            accepted, reason = False, f"announces {msg.name!r} but its certificate names {sender!r}"
        else:
            accepted, reason = await self._accept(msg)
        if accepted:
            self.node.metrics.inc("announces_accepted")
        return encode(AnnounceReply(name=self.node.name, accepted=accepted, reason=reason))

    async def _accept(self, msg: Announce) -> tuple[bool, str]:
        peers = self.node.peers
        if msg.name == self.node.name:
            return False, "that is this node's own name"
        if msg.name in peers:
            known = peers.get(msg.name)
            if (known.rest, known.grpc) != (msg.rest, msg.grpc):
                if known.state == "alive" and known.last_seen is not None:
                    # A live neighbour is not re-pointed by whoever claims its name.
                    return False, "a live peer of that name is known at other addresses"
                await asyncio.to_thread(peers.update_address, msg.name, msg.rest, msg.grpc)  # ValueError: malformed
            self._alive(msg.name)
            return True, "known"
        if len(peers) >= MAX_TABLE:
            return False, "the neighbour table is full"
        if not msg.friend:
            if not self.config.learn_peers:
                return False, "this node keeps only its configured links (learn_peers = false)"
            if len(peers) >= self.config.max_peers:
                return False, f"this node has max_peers = {self.config.max_peers} neighbours"
        limit = MAX_TABLE if msg.friend else self.config.max_peers
        try:
            await asyncio.to_thread(peers.add, msg.name, msg.rest, msg.grpc, learned=True, limit=limit)
        except (AlreadyExists, TooLarge) as err:
            return False, str(err)
        self._alive(msg.name)
        log.info("%s: %s announced itself; added", self.node.name, msg.name)
        return True, "added"
