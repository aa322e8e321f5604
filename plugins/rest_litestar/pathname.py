"""A file name taken from the request's raw path, not from the router's cleaned-up one.

Servers and routers tidy paths before routing: ``/files//abs/content`` and
``/files/x%2F/content`` both reach the ``{name}`` route with a name ("abs",
"x") the client never sent. Reading the segment from ``raw_path`` and
decoding it once gives the name the client meant, which the store's rules
then accept or refuse.
"""

from __future__ import annotations

import json
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


FILES_PREFIX = b"/api/v1/files/"


def split_name_problem(raw_path: bytes | None) -> str | None:
    """Why a ``/files/{name}[/content]`` request names no usable file, when the router cannot tell.

    The router matches the decoded path, so ``a%2Fb`` arrives as two segments
    and an empty name as a doubled slash: both would miss the file routes
    (404/405). They are bad names, and get the same 422 as any other.
    """
    if not raw_path or not raw_path.startswith(FILES_PREFIX):
        return None
    parts = raw_path.split(b"?", 1)[0][len(FILES_PREFIX):].split(b"/")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] != b"content"):
        return None
    if parts[0] == b"":
        return None if len(parts) == 1 else "the file name is empty"
    if b"/" in unquote_to_bytes(parts[0]):
        return "a file name must be one path component (no '/', encoded or not)"
    return None


class RefuseSplitNames:
    """ASGI wrapper answering 422 problem+json for the names :func:`split_name_problem` catches."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        detail = split_name_problem(scope.get("raw_path")) if scope["type"] == "http" else None
        if detail is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"status": 422, "title": "Unprocessable Entity", "detail": detail}).encode()
        await send({
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
