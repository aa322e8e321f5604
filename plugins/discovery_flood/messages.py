"""The flooding protocol's messages: typed, versioned msgspec Structs sent as JSON.

Every message carries ``v`` (protocol version, 1 today). A newer peer may add
fields (decoders ignore unknown ones); a change that old peers cannot read
gets a new method name rather than a new meaning for an old one. Decoding is
also validation: anything malformed, oversized or out of range raises
``ValueError``, which the transports answer with INVALID_ARGUMENT / 422, so a
hostile neighbour's message never reaches the forwarding logic.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from peerkit.peers import PEER_NAME_RE
from peerkit.store import sha256_query

from .config import TTL_CAP

PROTOCOL_VERSION = 1

QUERY = "flood.query"
PING = "flood.ping"
ANNOUNCE = "flood.announce"

MAX_QUERY_BYTES = 1024
"""Longest query string accepted (UTF-8 bytes): names are at most 255 bytes, globs a little more."""
MAX_HITS_PER_REPLY = 20_000
MAX_REACHED = 4096
MAX_PEER_SAMPLE = 32
MAX_BUDGET_MS = 60_000

_PEER_NAME = PEER_NAME_RE.pattern

Version = Annotated[int, msgspec.Meta(ge=1)]
PeerName = Annotated[str, msgspec.Meta(pattern=_PEER_NAME)]
QueryId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Address = Annotated[str, msgspec.Meta(max_length=300)]
Text = Annotated[str, msgspec.Meta(max_length=1024)]


class Query(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """One flooded query.

    ``ttl`` is how many more hops it may travel (0: answer, do not forward);
    ``hops`` how many it has travelled; ``budget_ms`` how long the receiver has
    to send its reply (each hop hands its children less than it got).
    ``kind="list"`` asks for every shared file, at most ``limit`` per peer.
    """

    id: QueryId
    ttl: int
    hops: Annotated[int, msgspec.Meta(ge=0, le=TTL_CAP)] = 0
    origin: PeerName
    query: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_BYTES)] = ""
    kind: Literal["match", "list"] = "match"
    limit: Annotated[int, msgspec.Meta(ge=1)] = 1000
    budget_ms: Annotated[int, msgspec.Meta(ge=1)]
    v: Version = PROTOCOL_VERSION


class QueryHit(msgspec.Struct, kw_only=True, frozen=True):
    """A file some peer claims to hold. Only data: nothing is written or trusted because of it."""

    peer: Text
    rest: Address
    grpc: Address
    name: Text
    size: Annotated[int, msgspec.Meta(ge=0)]
    sha256: Annotated[str, msgspec.Meta(max_length=64)]
    hops: Annotated[int, msgspec.Meta(ge=0, le=TTL_CAP)]


class PeerInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A node and its addresses (as a neighbour table row carries them)."""

    name: PeerName
    rest: Address
    grpc: Address


class ReachedPeer(PeerInfo, kw_only=True, frozen=True):
    """A node that handled a query, ``hops`` from its origin."""

    hops: Annotated[int, msgspec.Meta(ge=0, le=TTL_CAP)] = 0


class QueryReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The reply to a forwarded query: hits of the whole subtree, travelling the reverse path.

    ``reached`` lists the nodes that handled the query in that subtree;
    ``truncated`` those whose listing was cut at the limit; ``dropped`` says
    why a node refused (``"duplicate"``, ``"rate_limited"``).
    """

    hits: Annotated[list[QueryHit], msgspec.Meta(max_length=MAX_HITS_PER_REPLY)] = []
    reached: Annotated[list[ReachedPeer], msgspec.Meta(max_length=MAX_REACHED)] = []
    truncated: Annotated[list[Text], msgspec.Meta(max_length=MAX_REACHED)] = []
    dropped: Literal["duplicate", "rate_limited"] | None = None
    v: Version = PROTOCOL_VERSION


class Ping(msgspec.Struct, kw_only=True):
    """"Are you there?" with the sender's own addresses."""

    name: PeerName
    rest: Address = ""
    grpc: Address = ""
    v: Version = PROTOCOL_VERSION


class Pong(msgspec.Struct, kw_only=True):
    """The answer to a ping: ``known`` says whether the sender is in our table; ``peers`` samples our live neighbours."""

    name: PeerName
    known: bool
    peers: Annotated[list[PeerInfo], msgspec.Meta(max_length=MAX_PEER_SAMPLE)] = []
    v: Version = PROTOCOL_VERSION


class Announce(msgspec.Struct, kw_only=True):
    """"Add me": ``friend`` is true when the sender has the receiver in its config (a configured link)."""

    name: PeerName
    rest: Address
    grpc: Address
    friend: bool = False
    v: Version = PROTOCOL_VERSION


class AnnounceReply(msgspec.Struct, kw_only=True):
    name: PeerName
    accepted: bool
    reason: Text = ""
    v: Version = PROTOCOL_VERSION


T = TypeVar("T", bound=msgspec.Struct)

_decoders: dict[type, msgspec.json.Decoder] = {}
_encoder = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode(payload: bytes, kind: type[T]) -> T:
    """Decode and validate one message; ValueError (with the reason) if it is not a valid ``kind``."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(payload)
    except msgspec.DecodeError as err:  # ValidationError included
        raise ValueError(f"malformed {kind.__name__} message: {err}") from None
    except RecursionError:  # JSON nested thousands deep: hostile, not a message
        raise ValueError(f"malformed {kind.__name__} message: nested too deeply") from None


def decode_query(payload: bytes) -> Query:
    """Decode a Query and apply the hostile-input rules.

    Negative or non-integer ttl is rejected; a ttl above the cap (or one that
    would carry the query past ``TTL_CAP`` hops from its origin) is clamped; a
    query string over ``MAX_QUERY_BYTES`` bytes or an empty match is rejected.
    """
    q = decode(payload, Query)
    if q.ttl < 0:
        raise ValueError(f"malformed Query message: ttl must be >= 0, got {q.ttl}")
    q.ttl = min(q.ttl, TTL_CAP - q.hops)
    if len(q.query.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise ValueError(f"malformed Query message: query is over {MAX_QUERY_BYTES} bytes")
    if q.kind == "match" and not q.query:
        raise ValueError("malformed Query message: empty query")
    q.budget_ms = min(q.budget_ms, MAX_BUDGET_MS)
    return q


def check_ttl(ttl: object) -> int:
    """A caller's TTL: an integer >= 0 (ValueError otherwise), clamped to the cap."""
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise ValueError(f"ttl must be an integer from 0 to {TTL_CAP}, got {ttl!r}")
    if ttl < 0:
        raise ValueError(f"ttl must be >= 0, got {ttl}")
    return min(ttl, TTL_CAP)


def check_query(query: object) -> str:
    """A caller's query string: non-empty text of at most ``MAX_QUERY_BYTES`` bytes."""
    if not isinstance(query, str) or not query:
        raise ValueError("the query must be a non-empty name, glob or sha256:<hex>")
    if len(query.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise ValueError(f"the query is over {MAX_QUERY_BYTES} bytes")
    sha256_query(query)  # a malformed sha256: query is the caller's mistake, not "no hits"
    return query
