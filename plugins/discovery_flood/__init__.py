"""Built-in plugin ``discovery_flood``: one network out of many nodes, and files located anywhere in it.

Gnutella-style flooding (CONTRACT.md "Flooding discovery"): ``messages``
defines the protocol, ``seen`` and ``ratelimit`` guard each node,
``forwarding`` handles and originates queries, ``membership`` announces,
pings and learns peers, ``routes`` adds ``GET /locate`` and ``GET
/network/files``. Messages travel through ``node.call_peer`` (gRPC Link when
enabled, REST otherwise, or as ``[discovery_flood] transport`` pins).

Other code reaches the Python API through the node's plugin manager (a plugin
never imports another)::

    flood = node.pm.get_plugin("discovery_flood")
    result = await flood.locate("*.txt", ttl=3)         # LocateResult
    listing = await flood.network_files()               # NetworkFiles
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peerkit import hookimpl

from .config import FloodConfig
from .forwarding import Flooder
from .membership import Membership
from .messages import ANNOUNCE, PING, QUERY

if TYPE_CHECKING:
    import msgspec

    from peerkit import Node

    from .models import LocateResult, NetworkFiles

TABLE = "discovery_flood"


class Plugin:
    """One instance per node (the host instantiates the class per plugin manager)."""

    def __init__(self) -> None:
        self.flooder: Flooder | None = None
        self.membership: Membership | None = None

    @hookimpl
    def peerkit_config_schema(self) -> tuple[str, type[msgspec.Struct]]:
        return TABLE, FloodConfig

    @hookimpl
    def peerkit_configure(self, node: Node) -> None:
        config: FloodConfig = node.plugin_config(TABLE)
        self.flooder = Flooder(node, config)
        self.membership = Membership(node, config)
        node.messages.register(QUERY, self.flooder.handle)
        node.messages.register(PING, self.membership.handle_ping)
        node.messages.register(ANNOUNCE, self.membership.handle_announce)

    @hookimpl
    def peerkit_startup(self, node: Node) -> None:
        # In the background: a friend that is down must not delay start-up.
        assert self.membership is not None
        node.spawn(self.membership.run(), name=f"{node.name}-flood-membership")

    @hookimpl
    def peerkit_rest_routes(self, node: Node) -> list[Any]:
        from .routes import flood_routes

        return flood_routes(self._flooder())

    def _flooder(self) -> Flooder:
        if self.flooder is None:
            raise RuntimeError("discovery_flood is not configured on a node yet")
        return self.flooder

    async def locate(self, query: str, *, ttl: int | None = None, timeout: float | None = None) -> LocateResult:
        """Flood ``query`` (name, glob or ``sha256:<hex>``); see :meth:`Flooder.locate`."""
        return await self._flooder().locate(query, ttl=ttl, timeout=timeout)

    async def network_files(
        self, *, ttl: int | None = None, timeout: float | None = None, limit: int | None = None
    ) -> NetworkFiles:
        """Every reachable peer's files, by peer; see :meth:`Flooder.network_files`."""
        return await self._flooder().network_files(ttl=ttl, timeout=timeout, limit=limit)
