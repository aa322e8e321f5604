"""Built-in plugin ``grpc_transfer``: moves files between peers over gRPC.

Contributes the ``peerkit.v1.Link`` service and the "grpc" transport for peer
messages (the Transfer service lands with its issue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peerkit import GrpcService, hookimpl
from peerkit.v1 import link_pb2_grpc

from .link import GrpcTransport, LinkServicer

if TYPE_CHECKING:
    from peerkit import Node


class Plugin:
    @hookimpl
    def peerkit_grpc_services(self, node: Node) -> list[GrpcService]:
        link = LinkServicer(node)
        return [GrpcService("peerkit.v1.Link", lambda server: link_pb2_grpc.add_LinkServicer_to_server(link, server))]

    @hookimpl
    def peerkit_transports(self, node: Node) -> list[Any]:
        return [GrpcTransport(node)]
