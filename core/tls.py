"""TLS for REST and gRPC (``[security] tls_cert``, ``tls_key``, ``tls_ca``, ``tls_client_auth``).

One place builds every TLS object peerkit uses, so servers, node-to-node
transports and clients agree: a node with ``tls_cert``/``tls_key`` serves
https and secure gRPC; its peers (a TLS network is TLS throughout) and clients
verify it against ``tls_ca`` when given, else against the system's roots.
With ``tls_client_auth`` the servers also demand a client certificate that
chains to ``tls_ca``; a node presents its own pair to its peers, and clients
present theirs (an :class:`Identity`, CLI ``--cert``/``--key``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


@dataclass(frozen=True)
class Identity:
    """A client certificate and its key, as files (ssl wants paths) and PEM bytes (grpc wants bytes)."""

    cert_file: str
    key_file: str
    cert: bytes
    key: bytes

    @classmethod
    def load(cls, cert_file: str | Path, key_file: str | Path) -> Identity:
        """Read the pair; OSError when a file cannot be read, ValueError when it is not PEM."""
        cert, key = read_pem(cert_file), read_pem(key_file)
        for name, data in ((cert_file, cert), (key_file, key)):
            if b"-----BEGIN" not in data:
                raise ValueError(f"{name} is not a PEM file")
        return cls(str(cert_file), str(key_file), cert, key)


def read_pem(path: str | Path) -> bytes:
    """The bytes of a PEM file; OSError when it cannot be read."""
    return Path(path).read_bytes()


def client_ssl_context(ca: bytes | None = None, identity: Identity | None = None) -> ssl.SSLContext:
    """An httpx ``verify=`` context trusting ``ca`` (PEM bytes), or the system roots without it;
    presenting ``identity`` when the server asks for a client certificate."""
    ctx = ssl.create_default_context() if ca is None else ssl.create_default_context(cadata=ca.decode("ascii"))
    if identity is not None:
        ctx.load_cert_chain(identity.cert_file, identity.key_file)
    return ctx


def channel_credentials(ca: bytes | None = None, identity: Identity | None = None) -> grpc.ChannelCredentials:
    """gRPC credentials verifying the server against ``ca``, or grpc's default roots; with ``identity``, mutual TLS."""
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=identity.key, certificate_chain=identity.cert)


def server_credentials(cert: bytes, key: bytes, client_ca: bytes | None = None) -> grpc.ServerCredentials:
    """The node's gRPC TLS; with ``client_ca``, clients must present a certificate chaining to it."""
    if client_ca is None:
        return grpc.ssl_server_credentials([(key, cert)])
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca, require_client_auth=True)


def aio_channel(
    address: str, *, secure: bool, ca: bytes | None = None, options: Any = None, identity: Identity | None = None
) -> grpc.aio.Channel:
    """A grpc.aio channel: TLS when ``secure`` (or a CA or identity is given), plaintext otherwise."""
    if secure or ca is not None or identity is not None:
        return grpc.aio.secure_channel(address, channel_credentials(ca, identity), options=options)
    return grpc.aio.insecure_channel(address, options=options)


def sync_channel(
    address: str, *, secure: bool, ca: bytes | None = None, options: Any = None, identity: Identity | None = None
) -> grpc.Channel:
    """The blocking twin of :func:`aio_channel`."""
    if secure or ca is not None or identity is not None:
        return grpc.secure_channel(address, channel_credentials(ca, identity), options=options)
    return grpc.insecure_channel(address, options=options)


def is_verify_failure(err: BaseException) -> bool:
    """Whether a connection error comes from certificate verification (to hint at --cacert)."""
    text = str(err)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower()


def is_client_cert_missing(err: BaseException) -> bool:
    """Whether a connection failed because the server wanted a client certificate we did not give."""
    text = str(err).lower()
    return "certificate required" in text or "certificate_required" in text or "peer did not return a certificate" in text
