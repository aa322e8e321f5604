"""Peer messages over gRPC: the ``peerkit.v1.Link`` service and the "grpc" transport.

One channel per peer address, reused across calls. A channel whose peer was
unreachable is dropped and the next call opens a fresh one, so a peer that
comes back answers the very next message instead of after grpc's reconnect
backoff (which only grows while a peer stays down).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from peerkit.errors import NotFound, TransportError
from peerkit.grpc_server import CHANNEL_OPTIONS
from peerkit.tls import aio_channel
from peerkit.v1 import link_pb2, link_pb2_grpc

if TYPE_CHECKING:
    from peerkit import Node, Peer

LINK_CHANNEL_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def certificate_names(context: grpc.aio.ServicerContext) -> set[str]:
    """The common name and subject alternative names of the client's certificate (empty without one)."""
    auth = context.auth_context()
    names = [*auth.get("x509_common_name", ()), *auth.get("x509_subject_alternative_name", ())]
    return {n.decode("utf-8", "replace") for n in names}


class LinkServicer(link_pb2_grpc.LinkServicer):
    def __init__(self, node: Node) -> None:
        self._node = node
        self._bind_names = node.config.security.bind_names

    async def Call(self, request: link_pb2.LinkMessage, context: grpc.aio.ServicerContext) -> link_pb2.LinkMessage:
        if self._bind_names and request.sender not in (names := certificate_names(context)):
            self._node.metrics.inc("link_sender_refused")
            shown = ", ".join(sorted(names)) or "none"
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"sender {request.sender!r} is not a name in the client's certificate ({shown}); [security] bind_names is on",
            )
        try:
            reply = await self._node.messages.dispatch(request.method, request.payload, request.sender)
        except NotFound as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        except ValueError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        self._node.metrics.bytes_received.labels("grpc").inc(len(request.payload))
        self._node.metrics.bytes_sent.labels("grpc").inc(len(reply))
        return link_pb2.LinkMessage(method=request.method, payload=reply, sender=self._node.name)


class GrpcTransport:
    """Sends peer messages with ``Link.Call`` over cached grpc.aio channels."""

    name = "grpc"

    def __init__(self, node: Node) -> None:
        self._node = node
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._metadata = (("authorization", node.auth_header),) if node.auth_header else None

    def channel(self, address: str) -> grpc.aio.Channel:
        ch = self._channels.get(address)
        if ch is not None and ch.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            self._forget(address)  # waiting out a backoff: a fresh channel connects now
            ch = None
        if ch is None:
            # A TLS node's peers are TLS too: verify them against [security] tls_ca.
            ch = aio_channel(
                address, secure=self._node.tls, ca=self._node.tls_ca, options=LINK_CHANNEL_OPTIONS, identity=self._node.tls_identity
            )
            self._channels[address] = ch
        return ch

    async def call(self, peer: Peer, method: str, payload: bytes, *, timeout: float) -> bytes:
        stub = link_pb2_grpc.LinkStub(self.channel(peer.grpc))
        msg = link_pb2.LinkMessage(method=method, payload=payload, sender=self._node.name)
        try:
            reply = await stub.Call(msg, timeout=timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            code = err.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TransportError(f"{peer.name}: no answer within {timeout:.2f}s") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                self._forget(peer.grpc)
            raise TransportError(f"{peer.name}: {code.name}: {err.details()}") from None
        except asyncio.CancelledError:
            raise
        self._node.metrics.bytes_sent.labels("grpc").inc(len(payload))
        self._node.metrics.bytes_received.labels("grpc").inc(len(reply.payload))
        return reply.payload

    def _forget(self, address: str) -> None:
        """Drop the channel to ``address``; it closes in the background (calls on it fail over)."""
        ch = self._channels.pop(address, None)
        if ch is not None:
            task = asyncio.ensure_future(ch.close(grace=2.0))  # calls still on it get a moment
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close(grace=None)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
