"""Request latency for ``/metrics``: a thin ASGI wrapper around the whole Litestar app.

It sits outside Litestar's router so unknown paths (404) and wrong methods
(405) are timed too. Labels are bounded: the route template (never the raw
path), a known method or "other", and the status code.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Response, get

from peerkit.metrics import PROMETHEUS_CONTENT_TYPE

# Litestar appends the charset to text/* itself; keep it from appearing twice.
MEDIA_TYPE = PROMETHEUS_CONTENT_TYPE.replace("; charset=utf-8", "")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class LatencyMiddleware:
    """Observe every HTTP request's duration (until the last body byte is handed to the server)."""

    def __init__(self, app: Any, histogram: Any) -> None:
        self.app = app
        self.histogram = histogram
        self._children: dict[tuple[str, str, int], Any] = {}  # labels() costs more than observe(): cache

    def _child(self, method: str, route: str, status: int) -> Any:
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.histogram.labels(method, route, str(status))
        return child

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = scope.get("path_template") or "unmatched"
            self._child(method, route, status).observe(time.perf_counter() - start)


def metrics_route(node: Any) -> Any:
    @get(
        "/metrics",
        summary="Prometheus metrics: counters, transfer bytes by transport, latency histograms",
        tags=["node"],
        media_type=MEDIA_TYPE,
        sync_to_thread=False,
    )
    def metrics() -> Response[bytes]:
        return Response(node.metrics.render(), media_type=MEDIA_TYPE)

    return metrics
