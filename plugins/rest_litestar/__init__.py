"""Built-in plugin ``rest_litestar``: the node's REST API on Litestar + uvicorn.

It builds the one Litestar app, mounting every plugin's routes (hook
``peerkit_rest_routes``) under ``/api/v1``, and offers the "rest" transport
for peer messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Litestar, Router

from peerkit import hookimpl

from .link import RestTransport, link_route

if TYPE_CHECKING:
    from peerkit import Node

API_PREFIX = "/api/v1"


class Plugin:
    @hookimpl
    def peerkit_rest_routes(self, node: Node) -> list[Any]:
        return [link_route(node)]

    @hookimpl
    def peerkit_rest_app(self, node: Node, routes: list[Any]) -> Litestar:
        return Litestar(route_handlers=[Router(API_PREFIX, route_handlers=routes)])

    @hookimpl
    def peerkit_transports(self, node: Node) -> list[Any]:
        return [RestTransport(node)]
