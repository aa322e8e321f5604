"""Built-in plugin discovery_flood (placeholder until its issue lands)."""

from peerkit import hookimpl  # noqa: F401


class Plugin:
    """discovery_flood: not implemented yet."""

