"""Every hook peerkit calls: the whole seam between the core and its plugins.

Hooks are synchronous (pluggy). Where work is async (start-up, shutdown,
answering a query) a hook returns an awaitable, or a list, or None, and the
host awaits what needs it (see ``peerkit.utils.await_me_maybe``). Built-in
plugins (rest_litestar, grpc_transfer, discovery_flood, echo) implement these
exactly as third-party packages do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from collections.abc import Awaitable

    import msgspec

    from .grpc_server import GrpcService
    from .node import Node
    from .store import FileEntry
    from .transport import Transport

from .markers import hookspec


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------


@hookspec
def peerkit_config_schema() -> tuple[str, type[msgspec.Struct]] | None:
    """Declare this plugin's config table.

    Called while the config is validated, before any node exists, on every
    enabled plugin. Return ``(table_name, StructType)``; the table (missing
    means all defaults) is converted to that Struct, unknown keys and wrong
    types are config errors, and ``PEERKIT_<TABLE>_<KEY>`` overrides apply.
    The result is available as ``node.plugin_config(table_name)``.
    """


# ---------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------


@hookspec
def peerkit_configure(node: Node) -> None:
    """Set up per-node state.

    Called once, after the file store and peer table are open and before any
    server starts. Register message handlers here
    (``node.messages.register(...)``) and metrics (``node.metrics``).
    """


@hookspec
def peerkit_startup(node: Node) -> Awaitable[None] | None:
    """Start background work; called after the REST and gRPC servers listen.

    Return an awaitable (an ``async def`` hookimpl does) to be awaited;
    long-running loops should use ``node.spawn(coro)`` so shutdown cancels them.
    """


@hookspec
def peerkit_shutdown(node: Node) -> Awaitable[None] | None:
    """Stop this plugin's work; called before the servers stop. Keep it short."""


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------


@hookspec
def peerkit_rest_routes(node: Node) -> list[Any] | None:
    """Contribute Litestar route handlers, Routers or Controllers.

    Called once at start. Everything returned is mounted under ``/api/v1`` by
    the plugin that builds the app (``peerkit_rest_app``).
    """


@hookspec(firstresult=True)
def peerkit_rest_app(node: Node, routes: list[Any]) -> Any | None:
    """Build the ASGI application serving ``routes`` (first non-None wins).

    The node runs the result with uvicorn on ``[node] host:rest_port``. With no
    plugin implementing it (rest_litestar disabled) no REST server starts.
    """


@hookspec
def peerkit_grpc_services(node: Node) -> list[GrpcService] | None:
    """Contribute gRPC services to the node's ``grpc.aio`` server.

    Each :class:`peerkit.GrpcService` names its full service name (for health
    and reflection) and a function adding its servicer to the server. The
    server starts only if some plugin contributes.
    """


@hookspec
def peerkit_transports(node: Node) -> list[Transport] | None:
    """Offer ways to send a message to another peer (see ``peerkit.Transport``).

    Plugins that need to talk to peers (discovery) call ``node.call_peer``,
    which picks a transport; they never care which one it is.
    """


# ---------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------


@hookspec
def peerkit_local_query(node: Node, query: str) -> Awaitable[list[FileEntry]] | list[FileEntry] | None:
    """Answer a file query from this node alone.

    ``query`` is an exact name, a glob (``*.txt``) or ``sha256:<hex>``. The
    core answers from the file store; plugins may add virtual files. Results
    of all implementations are concatenated (``node.local_query`` de-duplicates).
    """
