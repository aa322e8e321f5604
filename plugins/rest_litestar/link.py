"""Peer messages over HTTP: the ``POST /api/v1/link/{method}`` route and the "rest" transport.

Used when gRPC is disabled or when a config pins ``transport = "rest"``. The
body is the raw payload; the sender's name travels in ``X-Peerkit-Sender``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from litestar import Request, Response, post
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import FromPath

from peerkit.errors import NotFound, TransportError
from peerkit.messages import MAX_PAYLOAD
from peerkit.tls import client_ssl_context

from .problems import problem

if TYPE_CHECKING:
    from peerkit import Node, Peer

SENDER_HEADER = "X-Peerkit-Sender"
OCTETS = "application/octet-stream"


def link_route(node: Node):  # noqa: ANN201 - a Litestar handler
    bind_names = node.config.security.bind_names

    @post(
        "/link/{method:str}",
        summary="Deliver a peer-to-peer message (used by other peers' plugins)",
        media_type=OCTETS,
        status_code=200,
        request_max_body_size=MAX_PAYLOAD,
        tags=["link"],
        responses={403: problem("Peer messages go over gRPC only on this node ([security] bind_names)")},
    )
    async def link(request: Request, method: FromPath[str]) -> Response[bytes]:
        if bind_names:
            node.metrics.inc("link_sender_refused")
            raise PermissionDeniedException(
                detail="this node takes peer messages over gRPC only: [security] bind_names is on and "
                "the REST server cannot check the sender's name against its certificate"
            )
        payload = await request.body()
        sender = request.headers.get(SENDER_HEADER, "")
        try:
            reply = await node.messages.dispatch(method, payload, sender)
        except NotFound as err:
            raise NotFoundException(detail=str(err)) from None
        except ValueError as err:
            raise ValidationException(detail=str(err)) from None
        node.metrics.bytes_received.labels("rest").inc(len(payload))
        node.metrics.bytes_sent.labels("rest").inc(len(reply))
        return Response(reply, media_type=OCTETS)

    return link


class RestTransport:
    """Sends peer messages as HTTP POSTs with one pooled httpx client per node."""

    name = "rest"

    def __init__(self, node: Node) -> None:
        self._node = node
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Peers of a TLS network are verified against [security] tls_ca (else the system roots).
            # It presents its own certificate, for peers that demand one (tls_client_auth).
            verify = (
                client_ssl_context(self._node.tls_ca, self._node.tls_identity) if self._node.tls or self._node.tls_ca else True
            )
            self._client = httpx.AsyncClient(
                verify=verify,
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                headers={SENDER_HEADER: self._node.name, **({"Authorization": self._node.auth_header} if self._node.auth_header else {})},
            )
        return self._client

    async def call(self, peer: Peer, method: str, payload: bytes, *, timeout: float) -> bytes:
        url = f"{peer.rest}/api/v1/link/{method}"
        try:
            resp = await self._http().post(url, content=payload, timeout=timeout, headers={"content-type": OCTETS})
        except httpx.TimeoutException:
            raise TransportError(f"{peer.name}: no answer within {timeout:.2f}s") from None
        except httpx.HTTPError as err:
            raise TransportError(f"{peer.name}: {type(err).__name__}: {err}") from None
        if resp.status_code != 200:
            detail = resp.text[:200]
            raise TransportError(f"{peer.name}: HTTP {resp.status_code} for {method}: {detail}")
        self._node.metrics.bytes_sent.labels("rest").inc(len(payload))
        self._node.metrics.bytes_received.labels("rest").inc(len(resp.content))
        return resp.content

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
