"""Built-in plugin ``grpc_transfer``: moves files between peers over gRPC.

Contributes ``peerkit.v1.Transfer`` (Download, Upload, Stat: real files,
chunked, verified), ``peerkit.v1.Link`` and the "grpc" transport for peer
messages. ``peerkit.plugins.grpc_transfer.client`` is the matching client
(resumable, multi-source downloads; verified uploads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peerkit import GrpcService, hookimpl
from peerkit.v1 import link_pb2_grpc

from .config import TransferConfig
from .link import GrpcTransport, LinkServicer

if TYPE_CHECKING:
    import msgspec

    from peerkit import Node

TABLE = "grpc_transfer"


class Plugin:
    @hookimpl
    def peerkit_config_schema(self) -> tuple[str, type[msgspec.Struct]]:
        return TABLE, TransferConfig

    @hookimpl
    def peerkit_grpc_services(self, node: Node) -> list[GrpcService]:
        from .service import TransferServicer
        from .wire import add_transfer_servicer

        link = LinkServicer(node)
        transfer = TransferServicer(node, node.plugin_config(TABLE))
        return [
            GrpcService("peerkit.v1.Link", lambda server: link_pb2_grpc.add_LinkServicer_to_server(link, server)),
            GrpcService("peerkit.v1.Transfer", lambda server: add_transfer_servicer(transfer, server)),
        ]

    @hookimpl
    def peerkit_transports(self, node: Node) -> list[Any]:
        return [GrpcTransport(node)]
