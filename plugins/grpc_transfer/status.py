"""peerkit errors <-> gRPC status codes: the one table both directions use.

The servicer also names the error class in the trailing metadata key
``peerkit-error``, so a client tells a bad file name (InvalidName) from a
malformed request although both are INVALID_ARGUMENT.
"""

from __future__ import annotations

import grpc

from peerkit.errors import AlreadyExists, IntegrityError, InvalidName, NotFound, PeerkitError, Stalled, TooLarge, TransportError

ERROR_KEY = "peerkit-error"


class BadRequest(ValueError):
    """A malformed request (message order, missing field): INVALID_ARGUMENT."""


class OutOfRange(ValueError):
    """An offset past the end of the file: OUT_OF_RANGE."""


# The one table: error class -> status code. Sibling classes, so order is free.
ERROR_CODES: dict[type[Exception], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidName: grpc.StatusCode.INVALID_ARGUMENT,
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    IntegrityError: grpc.StatusCode.DATA_LOSS,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    Stalled: grpc.StatusCode.DEADLINE_EXCEEDED,
    TransportError: grpc.StatusCode.UNAVAILABLE,
}
_BY_NAME: dict[str, type[Exception]] = {cls.__name__: cls for cls in ERROR_CODES}
_BY_CODE: dict[grpc.StatusCode, type[Exception]] = {
    code: cls for cls, code in ERROR_CODES.items() if cls not in (BadRequest, InvalidName, TransportError, Stalled)
}


def code_for(err: Exception) -> grpc.StatusCode | None:
    """The status code a servicer answers ``err`` with; None for an unexpected error."""
    for cls, code in ERROR_CODES.items():
        if isinstance(err, cls):
            return code
    return None


async def abort(context: grpc.aio.ServicerContext, err: Exception) -> None:
    """End the call with ``err``'s status code and message (raises, like context.abort)."""
    code = code_for(err) or grpc.StatusCode.INTERNAL
    context.set_trailing_metadata(((ERROR_KEY, type(err).__name__),))
    await context.abort(code, str(err) or code.name)


def error_for(err: grpc.RpcError, address: str) -> Exception:
    """The peerkit error (or InvalidName) a client raises for a failed call to ``address``."""
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or code.name
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    marker = dict(trailing or ()).get(ERROR_KEY)
    cls = _BY_NAME.get(marker or "") or _BY_CODE.get(code)
    if cls is InvalidName or cls is BadRequest:
        return InvalidName(details) if cls is InvalidName else PeerkitError(f"{address}: {details}")
    if cls is not None and cls not in (TransportError, OutOfRange):
        return cls(details)
    if code == grpc.StatusCode.UNAVAILABLE:
        return TransportError(f"cannot reach gRPC at {address}: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TransportError(f"{address}: no answer in time")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return TransportError(f"{address} does not serve peerkit.v1.Transfer (is grpc_transfer enabled?)")
    if code == grpc.StatusCode.CANCELLED:
        return TransportError(f"{address}: the transfer was cancelled")
    return PeerkitError(f"{address}: {code.name}: {details}")
