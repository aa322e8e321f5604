"""Shared-token authentication for REST and gRPC (``[security] token``).

A network that sets a token requires it on every REST request, whatever the
path (``Authorization: Bearer <token>``; ``/metrics`` and ``/schema`` too), and
every gRPC call (metadata ``authorization: Bearer <token>``), peers' own
messages included. gRPC health checks stay open so orchestrators can probe a
node. Without a token the node is open, which suits the loopback demo only.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

AUTH_HEADER = "authorization"
OPEN_GRPC_METHODS = ("/grpc.health.v1.Health/",)


def bearer(token: str | None) -> str | None:
    return f"Bearer {token}" if token else None


def token_matches(header_value: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization`` value against the token."""
    if not header_value:
        return False
    scheme, _, value = header_value.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Rejects gRPC calls without the right bearer token with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._token = token

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token (set --token / PEERKIT_TOKEN)")

        async def deny_stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token (set --token / PEERKIT_TOKEN)")

        self._deny = {
            (False, False): grpc.unary_unary_rpc_method_handler(deny),
            (False, True): grpc.unary_stream_rpc_method_handler(deny),
            (True, False): grpc.stream_unary_rpc_method_handler(deny_stream),
            (True, True): grpc.stream_stream_rpc_method_handler(deny_stream),
        }

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method or ""
        if method.startswith(OPEN_GRPC_METHODS):
            return await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        if token_matches(metadata.get(AUTH_HEADER), self._token):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: let gRPC answer UNIMPLEMENTED
        return self._deny[(handler.request_streaming, handler.response_streaming)]


class TokenMiddleware:
    """Pure ASGI middleware: 401 problem+json for any HTTP request without the token.

    Every path is guarded, not a prefix: the router merges doubled slashes, so
    a prefix check let ``//api/v1/...`` through without the token.
    """

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or ())
            value = headers.get(b"authorization", b"").decode("latin-1")
            if not token_matches(value, self._token):
                body = (
                    b'{"type":"about:blank","title":"Unauthorized","status":401,'
                    b'"detail":"missing or wrong token (set --token / PEERKIT_TOKEN)"}'
                )
                await send({
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                })
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
