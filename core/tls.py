"""TLS for REST and gRPC (``[security] tls_cert``, ``tls_key``, ``tls_ca``).

One place builds every TLS object peerkit uses, so servers, node-to-node
transports and clients agree: a node with ``tls_cert``/``tls_key`` serves
https and secure gRPC; its peers (a TLS network is TLS throughout) and clients
verify it against ``tls_ca`` when given, else against the system's roots.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import grpc


def read_pem(path: str | Path) -> bytes:
    """The bytes of a PEM file; OSError when it cannot be read."""
    return Path(path).read_bytes()


def client_ssl_context(ca: bytes | None = None) -> ssl.SSLContext:
    """An httpx ``verify=`` context trusting ``ca`` (PEM bytes), or the system roots without it."""
    if ca is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=ca.decode("ascii"))


def channel_credentials(ca: bytes | None = None) -> grpc.ChannelCredentials:
    """gRPC credentials verifying the server against ``ca``, or grpc's default roots."""
    return grpc.ssl_channel_credentials(root_certificates=ca)


def server_credentials(cert: bytes, key: bytes) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key, cert)])


def aio_channel(address: str, *, secure: bool, ca: bytes | None = None, options: Any = None) -> grpc.aio.Channel:
    """A grpc.aio channel: TLS when ``secure`` (or a CA is given), plaintext otherwise."""
    if secure or ca is not None:
        return grpc.aio.secure_channel(address, channel_credentials(ca), options=options)
    return grpc.aio.insecure_channel(address, options=options)


def sync_channel(address: str, *, secure: bool, ca: bytes | None = None, options: Any = None) -> grpc.Channel:
    """The blocking twin of :func:`aio_channel`."""
    if secure or ca is not None:
        return grpc.secure_channel(address, channel_credentials(ca), options=options)
    return grpc.insecure_channel(address, options=options)


def is_verify_failure(err: BaseException) -> bool:
    """Whether a connection error comes from certificate verification (to hint at --cacert)."""
    text = str(err)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower()
