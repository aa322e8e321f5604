"""peerkit-hello: the smallest useful third-party peerkit plugin.

It adds ``GET /api/v1/hello`` (a greeting from the node) and counts the calls
in the node's status counters as ``hello_requests``. Configure the greeting in
the node's config::

    [hello]
    greeting = "hi from"
"""

from __future__ import annotations

import msgspec
from litestar import get

from peerkit import hookimpl


class HelloConfig(msgspec.Struct, forbid_unknown_fields=True):
    greeting: str = "hello from"


class Greeting(msgspec.Struct):
    message: str
    count: int


class HelloPlugin:
    """Instantiated once per node by peerkit's plugin host."""

    @hookimpl
    def peerkit_config_schema(self):
        return ("hello", HelloConfig)

    @hookimpl
    def peerkit_rest_routes(self, node):
        greeting = node.plugin_config("hello").greeting

        @get("/hello", summary="A greeting from this node (example plugin)")
        async def hello() -> Greeting:
            node.metrics.inc("hello_requests")
            return Greeting(message=f"{greeting} {node.name}", count=node.metrics.get("hello_requests"))

        return [hello]
