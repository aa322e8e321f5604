"""uvicorn's httptools protocol with limits on request headers: their size and how long they take.

uvicorn bounds neither with httptools: a probe sent a 64 MiB header (11 s of
parsing, +100 MB) and a header trickling one byte a second held its
connection indefinitely. Here the bytes read while a request's headers are
incomplete are counted, and a request whose headers pass ``max_header_bytes``
gets 431; headers still unfinished ``header_timeout_s`` after the read that
left them unfinished get 408. Either way the connection is closed. Only the asyncio and
httptools callbacks are overridden (``data_received``, ``on_headers_complete``,
``on_message_complete``), which uvicorn's class is built on.

The count is per read, so the body end of one request can count towards the
next pipelined request's headers: the limit is meant with slack (default 1 MiB,
while real headers are a few KiB).
"""

from __future__ import annotations

import asyncio
from typing import Any

STATUS = {408: b"408 Request Timeout", 431: b"431 Request Header Fields Too Large"}


def protocol_class(max_header_bytes: int, header_timeout_s: float | None) -> Any:
    """uvicorn's httptools protocol class with the limits, or None when httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class BoundedHeadersProtocol(HttpToolsProtocol):  # type: ignore[misc, valid-type]
        """One per connection; between requests it waits for the next request's headers."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._header_bytes = 0
            self._awaiting_headers = True
            self._header_timer: asyncio.TimerHandle | None = None
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if self._awaiting_headers and self._header_bytes:  # this read left a request's headers unfinished
                if self._header_bytes > max_header_bytes:
                    self._refuse(431, f"request headers over {max_header_bytes} bytes")
                elif self._header_timer is None and header_timeout_s:
                    # Armed only then: a request whose headers come in one read (nearly all) costs no timer.
                    self._header_timer = self.loop.call_later(header_timeout_s, self._refuse, 408, "request headers too slow")

        def on_headers_complete(self) -> None:
            self._awaiting_headers = False
            self._stop_timer()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers, self._header_bytes = True, 0

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def _stop_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _refuse(self, status: int, why: str) -> None:
            self._stop_timer()
            if self.transport.is_closing():
                return
            body = why.encode()
            self.transport.write(
                b"HTTP/1.1 " + STATUS[status] + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
            )
            self.transport.close()

    return BoundedHeadersProtocol
