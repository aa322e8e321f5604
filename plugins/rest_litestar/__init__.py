"""Built-in plugin ``rest_litestar``: the node's REST API on Litestar + uvicorn.

It builds the one Litestar app (hook ``peerkit_rest_app``), mounting every
plugin's routes (hook ``peerkit_rest_routes``) under ``/api/v1``, contributes
the node's own routes (status, peers, files and their content), serves
``/metrics`` and the OpenAPI document, and offers the "rest" transport for
peer messages (``POST /api/v1/link/{method}``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from peerkit import hookimpl

from .config import TABLE, RestConfig
from .link import RestTransport, link_route
from .protocol import protocol_class

if TYPE_CHECKING:
    import msgspec
    from litestar import Litestar

    from peerkit import Node


def server_options(config: RestConfig) -> dict[str, Any]:
    """uvicorn options: uvloop and httptools when installed, access log as configured.

    With httptools the protocol is uvicorn's own plus limits on request
    headers (``protocol.py``: ``max_header_bytes``, ``header_timeout_s``).

    The node serves uvicorn inside its already running loop (the CLI starts
    it with uvloop), so ``loop`` only matters to a uvicorn that makes its own.
    """
    options: dict[str, Any] = {"access_log": config.access_log}
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        bounded = protocol_class(config.max_header_bytes, config.header_timeout_s or None)
        options["http"] = bounded or "httptools"
    return options


class Plugin:
    @hookimpl
    def peerkit_config_schema(self) -> tuple[str, type[msgspec.Struct]]:
        return TABLE, RestConfig

    @hookimpl
    def peerkit_configure(self, node: Node) -> None:
        node.uvicorn_options.update(server_options(node.plugin_config(TABLE)))

    @hookimpl
    def peerkit_rest_routes(self, node: Node) -> list[Any]:
        from .content import content_routes
        from .routes import node_routes

        return [*node_routes(node), *content_routes(node, node.plugin_config(TABLE)), link_route(node)]

    @hookimpl
    def peerkit_rest_app(self, node: Node, routes: list[Any]) -> Litestar:
        from .app import build_app

        return build_app(node, routes, node.plugin_config(TABLE))

    @hookimpl
    def peerkit_transports(self, node: Node) -> list[Any]:
        return [RestTransport(node)]
