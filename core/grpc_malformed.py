"""gRPC requests that do not decode get INVALID_ARGUMENT, not UNKNOWN and a logged traceback.

grpc decodes a request before any servicer code runs; when the bytes are not
a valid message, it logs the exception and answers UNKNOWN. This interceptor
wraps every method's request deserializer so a decoding failure becomes a
marker value, and the method's behaviour refuses the marker with
INVALID_ARGUMENT and a one-line reason (for streams: at the bad message).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc


class _Malformed:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as err:  # any decoder's failure: the bytes are the client's fault
            return _Malformed(f"{type(err).__name__}: {err}"[:200])

    return decode


async def _refuse(context: grpc.aio.ServicerContext, bad: _Malformed) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request message ({bad.reason})")


async def _checked(messages: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    async for msg in messages:
        if isinstance(msg, _Malformed):
            await _refuse(context, msg)
        yield msg


def _guard_unary(inner: Any) -> Any:
    if inspect.isasyncgenfunction(inner):

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, _Malformed):
                await _refuse(context, request)
            async for reply in inner(request, context):
                yield reply

        return stream

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Malformed):
            await _refuse(context, request)
        return await inner(request, context)

    return call


def _guard_streaming(inner: Any) -> Any:
    if inspect.isasyncgenfunction(inner):

        async def stream(messages: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for reply in inner(_checked(messages, context), context):
                yield reply

        return stream

    async def call(messages: Any, context: grpc.aio.ServicerContext) -> Any:
        return await inner(_checked(messages, context), context)

    return call


def _guarded(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    decode = _safe(handler.request_deserializer)
    encode = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_guard_unary(handler.unary_unary), decode, encode)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_guard_unary(handler.unary_stream), decode, encode)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_guard_streaming(handler.stream_unary), decode, encode)
    return grpc.stream_stream_rpc_method_handler(_guard_streaming(handler.stream_stream), decode, encode)


class RefuseMalformedRequests(grpc.aio.ServerInterceptor):
    """Wraps each method so undecodable requests are INVALID_ARGUMENT (see module doc)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._cache[method] = (handler, _guarded(handler))
        return cached[1]
