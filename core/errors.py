"""Errors the core raises; each transport maps them to its own status codes.

One small hierarchy keeps the mapping in one table per transport (REST problem
details, gRPC status codes, CLI exit codes) instead of scattered string checks.
"""

from __future__ import annotations

from .names import InvalidName


class PeerkitError(Exception):
    """Base class: ``str(exc)`` is a one-line message fit for a user."""


class NotFound(PeerkitError):
    """No such file, peer or method."""


class AlreadyExists(PeerkitError):
    """The name is taken (file without overwrite, peer name)."""


class TooLarge(PeerkitError):
    """Over a configured size limit."""


class IntegrityError(PeerkitError):
    """Received bytes do not match the announced size or sha256."""


class Stalled(PeerkitError):
    """The other side went silent mid-transfer for longer than this node waits."""


class TransportError(PeerkitError):
    """A peer could not be reached, timed out or answered with an error."""


__all__ = [
    "AlreadyExists",
    "IntegrityError",
    "InvalidName",
    "NotFound",
    "Stalled",
    "PeerkitError",
    "TooLarge",
    "TransportError",
]
