"""A file name taken from the request's raw path, not from the router's cleaned-up one.

Servers and routers tidy paths before routing: ``/files//abs/content`` and
``/files/x%2F/content`` both reach the ``{name}`` route with a name ("abs",
"x") the client never sent. Reading the segment from ``raw_path`` and
decoding it once gives the name the client meant, which the store's rules
then accept or refuse.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from peerkit.names import InvalidName


def raw_segment(request: Any, param: str, routed: str) -> str:
    """The percent-decoded raw path segment that the route template calls ``{param}``.

    Falls back to ``routed`` (the router's value) when the server gives no
    ``raw_path``. Raises InvalidName when the raw path does not have the
    template's shape (an empty or extra segment).
    """
    scope = request.scope
    raw = scope.get("raw_path")
    template = scope.get("path_template")
    if not raw or not template or scope.get("root_path"):
        return routed
    raw_parts = raw.split(b"?", 1)[0].split(b"/")
    parts = template.split("/")
    if len(raw_parts) != len(parts):
        raise InvalidName("a file name must be exactly one non-empty path segment")
    try:
        return unquote_to_bytes(raw_parts[parts.index("{" + param + "}")]).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidName("the file name is not valid UTF-8") from None
    except ValueError:  # template without the parameter: trust the router
        return routed
