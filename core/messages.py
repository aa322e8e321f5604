"""Peer-to-peer messages: named methods with opaque payloads.

A plugin that talks to other peers registers a handler for each method it
answers (``"flood.query"`` ...) and sends with ``node.call_peer``; whichever
transport carried the message (gRPC ``Link.Call``, REST ``POST
/api/v1/link/{method}``) hands it to :meth:`MessageRouter.dispatch`. Payload
encoding is the plugin's business (msgspec JSON, versioned).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from .errors import NotFound
from .peers import PEER_NAME_RE

Handler = Callable[[bytes, str], Awaitable[bytes]]
"""``await handler(payload, sender_name) -> reply payload``; raise ValueError for a malformed message."""

METHOD_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_PAYLOAD = 4 << 20  # messages are control traffic; files travel by Transfer


class MessageRouter:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, method: str, handler: Handler) -> None:
        if not METHOD_RE.match(method):
            raise ValueError(f"method name {method!r} must look like 'plugin.action'")
        if method in self._handlers:
            raise ValueError(f"method {method!r} is already registered")
        self._handlers[method] = handler

    def methods(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, method: str, payload: bytes, sender: str = "") -> bytes:
        """Run the handler; NotFound for an unknown method, ValueError for a bad payload."""
        handler = self._handlers.get(method)
        if handler is None:
            raise NotFound(f"no handler for message {method!r}")
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"message of {len(payload)} bytes is over the {MAX_PAYLOAD} byte limit")
        if sender and not PEER_NAME_RE.match(sender):
            # Handlers key state by sender (rate limits, reverse paths): only peer names get in.
            shown = sender[:40] + ("..." if len(sender) > 40 else "")
            raise ValueError(f"sender must be a peer name (1-64 letters, digits, '.', '_' or '-'), got {shown!r}")
        return await handler(payload, sender)
