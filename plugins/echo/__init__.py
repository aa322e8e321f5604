"""Built-in plugin echo (placeholder until its issue lands)."""

from peerkit import hookimpl  # noqa: F401


class Plugin:
    """echo: not implemented yet."""

