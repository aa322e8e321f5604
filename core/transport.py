"""Pluggable transports: how a message reaches another peer.

Plugins offer :class:`Transport` objects through the ``peerkit_transports``
hook (grpc_transfer offers "grpc", rest_litestar offers "rest"). The node
tries them in its preference order; callers see only bytes in, bytes out,
or :class:`peerkit.errors.TransportError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .peers import Peer


@runtime_checkable
class Transport(Protocol):
    name: str
    """Short name used in config (``transport = "grpc"``) and metrics labels."""

    async def call(self, peer: Peer, method: str, payload: bytes, *, timeout: float) -> bytes:
        """Send one message and return the reply payload.

        Raise ``TransportError`` when the peer cannot be reached, times out or
        answers with an error (``NotFound`` if it has no handler for ``method``).
        """
        ...

    async def close(self) -> None:
        """Release connections; called once at node shutdown."""
        ...
