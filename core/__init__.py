"""peerkit: a plugin-based peer-to-peer file-sharing framework.

The core is small and is the public API for plugin authors::

    from peerkit import hookimpl

    class Plugin:
        @hookimpl
        def peerkit_rest_routes(self, node): ...

Everything else (REST, gRPC transfers, flooding discovery, ECO) is a plugin.
"""

from __future__ import annotations

import os

# grpc's C core prints INFO lines (a failed TLS handshake, say) on stderr unless
# told otherwise before grpc is imported; peerkit reports those failures itself.
# An explicit GRPC_VERBOSITY from the user still wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

__version__ = "0.1.0"

from .config import Config, ConfigError, load_config
from .errors import AlreadyExists, IntegrityError, InvalidName, NotFound, PeerkitError, TooLarge, TransportError
from .grpc_server import GrpcService
from .markers import hookimpl, hookspec
from .names import validate_name
from .node import Node, StartupError
from .peers import Peer, PeerTable
from .host import installed_plugins, make_plugin_manager
from .store import FileEntry, FileStore
from .transport import Transport

__all__ = [
    "AlreadyExists",
    "Config",
    "ConfigError",
    "FileEntry",
    "FileStore",
    "GrpcService",
    "IntegrityError",
    "InvalidName",
    "Node",
    "NotFound",
    "Peer",
    "PeerTable",
    "PeerkitError",
    "StartupError",
    "TooLarge",
    "Transport",
    "TransportError",
    "__version__",
    "hookimpl",
    "hookspec",
    "installed_plugins",
    "load_config",
    "make_plugin_manager",
    "validate_name",
]
