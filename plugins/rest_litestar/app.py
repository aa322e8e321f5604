"""The one Litestar application of a node: every plugin's routes under ``/api/v1``, plus ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig

from peerkit import __version__

from .observe import LatencyMiddleware, metrics_route
from .pathname import RefuseSplitNames
from .problems import document_problems, problem_details_plugin

if TYPE_CHECKING:
    from peerkit import Node

    from .config import RestConfig

API_PREFIX = "/api/v1"


def build_app(node: Node, routes: list[Any], config: RestConfig) -> Litestar:
    """Compose the app; errors anywhere in it are problem details, and it is timed as a whole."""
    openapi = (
        OpenAPIConfig(
            title=f"peerkit node {node.name}",
            version=__version__,
            description="The REST API of one peerkit node. Errors are RFC 9457 problem details.",
            path="/schema",
        )
        if config.docs
        else None
    )
    app = Litestar(
        route_handlers=[Router(API_PREFIX, route_handlers=routes), metrics_route(node)],
        plugins=[problem_details_plugin()],
        openapi_config=openapi,
        debug=False,
        logging_config=None,  # the node configures logging; handlers log unexpected errors themselves
    )
    if openapi is not None:
        document_problems(app.openapi_schema)
    histogram = node.metrics.histogram(
        "rest_request_seconds", "REST request latency in seconds", ("method", "route", "status")
    )
    # Outside the router, so 404/405 answers are timed too (Litestar middleware runs per route).
    app.asgi_handler = LatencyMiddleware(RefuseSplitNames(app.asgi_handler), histogram)
    return app
