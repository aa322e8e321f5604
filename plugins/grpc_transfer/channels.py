"""Channel settings for bulk transfers, shared by the client's worker threads.

Measured with bench/transfer.py on a 2-core box (bench/README.md): bigger
TCP read chunks and HTTP/2 frames let one receiving thread keep up with
1 MiB messages; with grpc's defaults the client, not the server, is the limit.
"""

from __future__ import annotations

import grpc

from peerkit.grpc_server import CHANNEL_OPTIONS
from peerkit import tls

BULK_CHANNEL_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.http2.max_frame_size", (1 << 24) - 1),
    ("grpc.experimental.tcp_read_chunk_size", 4 << 20),
    ("grpc.experimental.tcp_min_read_chunk_size", 1 << 20),
    ("grpc.experimental.tcp_max_read_chunk_size", 16 << 20),
    # A source that vanishes without closing TCP is noticed within ~15 s.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # Each transfer owns its channels: never share a TCP connection with another stream.
    ("grpc.use_local_subchannel_pool", 1),
]


def metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def sync_channel(
    address: str, *, secure: bool = False, ca: bytes | None = None, identity: tls.Identity | None = None
) -> grpc.Channel:
    """A blocking channel: a stream iterated in a worker thread beat grpc.aio by up to 1.25x here.

    TLS when ``secure`` or a CA (PEM bytes) is given; plaintext otherwise.
    """
    return tls.sync_channel(address, secure=secure, ca=ca, options=BULK_CHANNEL_OPTIONS, identity=identity)


def aio_channel(
    address: str, *, secure: bool = False, ca: bytes | None = None, identity: tls.Identity | None = None
) -> grpc.aio.Channel:
    return tls.aio_channel(address, secure=secure, ca=ca, options=BULK_CHANNEL_OPTIONS, identity=identity)
