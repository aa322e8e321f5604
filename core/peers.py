"""The neighbour table: who this node talks to, and how they are doing.

Friends come from the config; peers added at run time (CLI, REST, learned by
discovery) and removals are persisted atomically in ``state_dir`` so they
survive a restart, and a removed friend stays removed. States follow
CONTRACT.md: alive, suspect (missed a ping), dead (missed several; skipped by
queries and retried with backoff by whoever pings).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from .errors import AlreadyExists, NotFound, TooLarge

PeerState = Literal["alive", "suspect", "dead"]
PEERS_FILE = "peers.json"
DEAD_AFTER = 3  # consecutive failures; one failure makes a peer suspect

PEER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Peer(msgspec.Struct):
    """One neighbour. ``rest`` is a base URL, ``grpc`` a host:port."""

    name: str
    rest: str
    grpc: str
    state: PeerState = "alive"
    last_seen: float | None = None
    friend: bool = False
    failures: int = 0
    learned: bool = False  # added by discovery (not config, CLI or REST): forgotten when long dead


def validate_peer_name(name: str) -> str:
    if not isinstance(name, str) or not PEER_NAME_RE.match(name):
        raise ValueError(
            f"peer name {name!r} must be 1-64 characters of letters, digits, '.', '_' or '-'"
        )
    return name


def validate_rest_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"REST address {url!r} must look like http://host:port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ValueError(f"REST address {url!r} must look like http://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"REST address {url!r} must be a base URL with no path")
    if parts.username is not None or parts.password is not None:
        # The table is shown by GET /peers and passed to other peers in pongs.
        raise ValueError(f"REST address of {parts.hostname}:{port} must not carry a user name or password")
    return f"{parts.scheme}://{parts.netloc}"


def validate_grpc_address(addr: str) -> str:
    try:
        parts = urlsplit("//" + addr)
        port = parts.port
    except (ValueError, TypeError):
        raise ValueError(f"gRPC address {addr!r} must look like host:port") from None
    if not parts.hostname or port is None or parts.path or parts.username:
        raise ValueError(f"gRPC address {addr!r} must look like host:port")
    return addr


class PeerTable:
    """Thread-safe neighbour table with atomic persistence."""

    def __init__(self, state_dir: str | os.PathLike[str], self_name: str = "") -> None:
        self.path = Path(state_dir) / PEERS_FILE
        self.self_name = self_name
        self._peers: dict[str, Peer] = {}
        self._removed: set[str] = set()
        self._lock = threading.RLock()

    def load(self, friends: list[tuple[str, str, str]] = ()) -> None:  # type: ignore[assignment]
        """Load the persisted table, then add config friends not removed at run time."""
        try:
            raw = json.loads(self.path.read_text("utf-8"))
            for p in raw.get("peers", []):
                peer = Peer(
                    name=p["name"], rest=p["rest"], grpc=p["grpc"], friend=bool(p.get("friend")), learned=bool(p.get("learned"))
                )
                if peer.name != self.self_name:  # a table written by another node (or an old bug) may hold us
                    self._peers[peer.name] = peer
            self._removed = set(raw.get("removed", []))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # A damaged table must not stop the node: start from the config alone.
            self._peers, self._removed = {}, set()
        for name, rest, grpc in friends:
            if name in self._removed or name == self.self_name:
                continue
            self._peers[name] = Peer(name=name, rest=rest, grpc=grpc, friend=True)  # the config's addresses win
        self._save()

    def _save(self) -> None:
        with self._lock:
            data = {
                "peers": [
                    {"name": p.name, "rest": p.rest, "grpc": p.grpc, "friend": p.friend, "learned": p.learned}
                    for p in self._peers.values()
                ],
                "removed": sorted(self._removed),
            }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    # ----------------------------------------------------------------- reads
    def all(self) -> list[Peer]:
        with self._lock:
            return [msgspec.structs.replace(p) for p in sorted(self._peers.values(), key=lambda p: p.name)]

    def alive(self) -> list[Peer]:
        """Peers worth sending a query to (alive or merely suspect)."""
        return [p for p in self.all() if p.state != "dead"]

    def get(self, name: str) -> Peer:
        with self._lock:
            peer = self._peers.get(name)
            if peer is None:
                raise NotFound(f"no peer named {name!r}")
            return msgspec.structs.replace(peer)

    def counts(self) -> tuple[int, int]:
        """(all neighbours, alive ones) without copying the table."""
        with self._lock:
            return len(self._peers), sum(1 for p in self._peers.values() if p.state == "alive")

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._peers

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)

    # ---------------------------------------------------------------- writes
    def add(
        self, name: str, rest: str, grpc: str, *, friend: bool = False, learned: bool = False, limit: int | None = None
    ) -> Peer:
        """Add a neighbour (validated); AlreadyExists if the name is taken.

        ``learned=True`` (from discovery) does not override an explicit removal.
        ``limit``: refuse with TooLarge when the table already holds that many
        peers, checked under the same lock as the insert (no check-then-add race).
        """
        validate_peer_name(name)
        rest = validate_rest_url(rest)
        validate_grpc_address(grpc)
        if name == self.self_name:
            raise ValueError(f"{name!r} is this node's own name")
        with self._lock:
            if name in self._peers:
                raise AlreadyExists(f"peer {name!r} already exists")
            if learned and name in self._removed:
                raise AlreadyExists(f"peer {name!r} was removed by the operator")
            if limit is not None and len(self._peers) >= limit:
                raise TooLarge(f"the neighbour table already holds {len(self._peers)} peers (limit {limit})")
            peer = Peer(name=name, rest=rest, grpc=grpc, friend=friend, learned=learned and not friend)
            self._peers[name] = peer
            self._removed.discard(name)
            self._save()
            return msgspec.structs.replace(peer)

    def remove(self, name: str) -> None:
        with self._lock:
            if name not in self._peers:
                raise NotFound(f"no peer named {name!r}")
            del self._peers[name]
            self._removed.add(name)
            self._save()

    def forget(self, name: str, *, after_failures: int = 0) -> bool:
        """Drop a peer discovery added once it has failed ``after_failures`` times in a row.

        Unlike ``remove`` it leaves no "removed" mark: the peer may be learned again.
        """
        with self._lock:
            peer = self._peers.get(name)
            if peer is None or not peer.learned or peer.failures < after_failures:
                return False
            del self._peers[name]
            self._save()
            return True

    def update_address(self, name: str, rest: str, grpc: str) -> None:
        """A known peer announced new addresses (restart on other ports)."""
        rest = validate_rest_url(rest)
        validate_grpc_address(grpc)
        with self._lock:
            peer = self._peers.get(name)
            if peer is None or (peer.rest == rest and peer.grpc == grpc):
                return
            peer.rest, peer.grpc = rest, grpc
            self._save()

    def mark_alive(self, name: str) -> None:
        with self._lock:
            peer = self._peers.get(name)
            if peer is not None:
                peer.state, peer.failures, peer.last_seen = "alive", 0, time.time()

    def mark_failure(self, name: str) -> PeerState | None:
        """Count a failed contact; returns the peer's new state."""
        with self._lock:
            peer = self._peers.get(name)
            if peer is None:
                return None
            peer.failures += 1
            peer.state = "dead" if peer.failures >= DEAD_AFTER else "suspect"
            return peer.state
