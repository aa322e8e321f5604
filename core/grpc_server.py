"""The node's gRPC server: plugin services plus standard health and reflection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

# Large messages: transfers use chunks of about 1 MiB (see grpc_transfer); the
# limit leaves room above that without letting one message eat memory.
MAX_MESSAGE_BYTES = 8 << 20
SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    # Bound what a fast uploader can park in the node's memory: with BDP probing on,
    # grpc keeps growing the HTTP/2 receive window while the node hashes and writes,
    # and a 1 GiB upload held +60-110 MB. A fixed 4 MiB window measured +28-30 MB at
    # the same speed on loopback (bench/README.md, "Tuning round 2").
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 4 << 20),
]
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


@dataclass(frozen=True)
class GrpcService:
    """A plugin's contribution to the gRPC server.

    ``name`` is the full service name (``"peerkit.v1.Transfer"``), used for
    health status and reflection; ``add`` registers the servicer, e.g.
    ``lambda server: transfer_pb2_grpc.add_TransferServicer_to_server(svc, server)``.
    """

    name: str
    add: Callable[[grpc.aio.Server], None]


async def build_server(
    services: list[GrpcService], interceptors: list[grpc.aio.ServerInterceptor] | None = None
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A grpc.aio server with ``services``, Health (all SERVING) and reflection; not yet bound."""
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors or None)
    for svc in services:
        svc.add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [svc.name for svc in services]
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return server, health_servicer
