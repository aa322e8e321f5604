"""A streamed response that gives up on a client which stops reading.

uvicorn waits for room in the socket as long as it takes, so a client that
opens a download and never reads would hold the file, a read-ahead buffer
and a task forever. Here one timer covers the whole body and every chunk
the server takes pushes it forward; when it fires the response ends with
:class:`ClientStalled`, uvicorn closes the connection and the file is
closed. The uvicorn log filter below keeps that expected ending out of the
error log (it is counted in ``downloads_stalled`` instead).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from typing import Any

from litestar.enums import MediaType
from litestar.response import Stream
from litestar.response.streaming import ASGIStreamingResponse
from litestar.utils.helpers import get_enum_string_value

BODY = "http.response.body"


class ResponseCutOff(Exception):
    """A streamed response ended on purpose mid-body: the connection is dropped, no traceback is logged."""


class ClientStalled(ResponseCutOff):
    """The client took no bytes for the idle timeout."""


class FileShrank(ResponseCutOff):
    """The file got shorter while being sent (replaced in place or truncated): the rest cannot be sent."""


class _QuietCutOffs(logging.Filter):
    """Drop uvicorn's "Exception in ASGI application" record when the exception is a ResponseCutOff."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_cut_off(record.exc_info[1] if record.exc_info else None)


def _is_cut_off(exc: BaseException | None) -> bool:
    """A ResponseCutOff itself, or wrapped: task groups raise exception groups, Litestar chains."""
    if exc is None:
        return False
    if isinstance(exc, ResponseCutOff):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_cut_off(e) for e in exc.exceptions)
    return _is_cut_off(exc.__cause__ or exc.__context__)


def install_log_filter() -> None:
    """Idempotent: one filter on uvicorn's error logger for the whole process."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietCutOffs) for f in logger.filters):
        logger.addFilter(_QuietCutOffs())


class _ASGIIdleTimedStream(ASGIStreamingResponse):
    __slots__ = ("idle", "on_stall")

    def __init__(self, *, idle: float, on_stall: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.idle = idle
        self.on_stall = on_stall

    async def _stream(self, send: Any) -> None:
        loop = asyncio.get_running_loop()
        iterator = self.iterator
        try:
            async with asyncio.timeout(self.idle) as no_progress:
                async for chunk in iterator:
                    no_progress.reschedule(loop.time() + self.idle)
                    await send({"type": BODY, "body": chunk, "more_body": True})
                await send({"type": BODY, "body": b"", "more_body": False})
        except TimeoutError:
            self.on_stall()
            raise ClientStalled(f"no bytes taken for {self.idle:g} s") from None
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()  # closes the file now, not whenever the generator is collected


class IdleTimedStream(Stream):
    """``Stream`` of bytes whose client must take some at least every ``idle`` seconds (None: no limit)."""

    def __init__(self, content: Any, *, idle: float | None, on_stall: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.idle = idle
        self.on_stall = on_stall

    def to_asgi_response(  # type: ignore[override]
        self,
        app: Any,
        request: Any,
        *,
        background: Any = None,
        cookies: Iterable[Any] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIStreamingResponse:
        if self.idle is None:
            return super().to_asgi_response(
                app, request, background=background, cookies=cookies, encoded_headers=encoded_headers,
                headers=headers, is_head_response=is_head_response, media_type=media_type,
                status_code=status_code, type_encoders=type_encoders,
            )
        # As Stream.to_asgi_response, with the timed response class.
        return _ASGIIdleTimedStream(
            idle=self.idle,
            on_stall=self.on_stall,
            iterator=self.iterator,
            background=self.background or background,
            content_length=0,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            media_type=get_enum_string_value(media_type or self.media_type or MediaType.JSON),
            status_code=self.status_code or status_code,
        )
