"""Every error the REST API answers is RFC 9457 ``application/problem+json``.

Route handlers (ours and other plugins') raise peerkit errors or Litestar
``HTTPException``s; one table here turns them into problem details, app-wide,
through Litestar's ``ProblemDetailsPlugin``. Routing errors (404 unknown path,
405) and request validation (400/422) go through the same table, and anything
unexpected becomes a 500 whose body says nothing about the code (the traceback
goes to the node's log only).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Reference, Schema
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin

from peerkit.errors import AlreadyExists, IntegrityError, NotFound, Stalled, TooLarge, TransportError

log = logging.getLogger("peerkit.rest")

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA = "ProblemDetail"

# Most specific first: InvalidName is a ValueError, so it must be looked up by MRO.
ERROR_STATUS: dict[type[Exception], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    TooLarge: 413,
    Stalled: 408,
    IntegrityError: 422,
    TransportError: 502,
    ValueError: 422,  # InvalidName and every "bad input" ValueError
}


class ProblemDetail(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, as every error response of this API carries them."""

    title: str
    status: int
    type: str = "about:blank"
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    """For validation errors: what was wrong and where (``key``, ``source``, ``message``)."""


def problem(description: str) -> ResponseSpec:
    """One documented error response for a route's ``responses=``."""
    return ResponseSpec(ProblemDetail, description=description, media_type=PROBLEM_JSON, generate_examples=False)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _problem(status: int, detail: str | None, *, headers: dict[str, str] | None = None, errors: Any = None) -> ProblemDetailsException:
    extra: dict[str, Any] | None = {"errors": errors} if errors else None
    return ProblemDetailsException(status_code=status, title=_phrase(status), detail=detail or _phrase(status), headers=headers, extra=extra)


def _is_malformed_body(errors: Any) -> bool:
    """True when the body could not be decoded at all (bad JSON), as opposed to decoded but invalid."""
    if not isinstance(errors, list):
        return False
    return any(
        isinstance(e, dict) and "malformed" in str(e.get("message", "")).lower() for e in errors
    )


CLIENT_LEFT = "client disconnected prematurely"  # Litestar's words when a body stops with the connection


def from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    if isinstance(exc, ProblemDetailsException):
        return exc
    if exc.status_code == 500 and exc.detail == CLIENT_LEFT:
        # The client's doing (it hung up mid-body, or sent framing the server dropped):
        # not a server error to log or count as 5xx. Nobody reads this answer anyway.
        return _problem(400, "the request body ended before it was complete")
    status = exc.status_code
    errors = exc.extra if isinstance(exc, ValidationException) else None
    if isinstance(exc, ValidationException) and errors and not _is_malformed_body(errors):
        # Decoded but invalid input is 422; an undecodable body or a bad query string stays 400.
        if any(isinstance(e, dict) and e.get("source") == "body" for e in errors):
            status = 422
    detail = exc.detail if exc.detail and exc.detail != _phrase(exc.status_code) else None
    if status >= 500:
        log.error("REST handler failed", exc_info=exc)
        detail = None  # Litestar's own 5xx details may describe internals
    return _problem(status, detail, headers=exc.headers, errors=errors)


def from_peerkit_error(exc: Exception) -> ProblemDetailsException:
    status = next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 500)
    return _problem(status, str(exc))


def from_unexpected(exc: Exception) -> ProblemDetailsException:
    if isinstance(exc, RecursionError):  # a JSON body nested thousands deep
        return _problem(400, "the request body is nested too deeply")
    log.error("unexpected error in a REST handler", exc_info=exc)
    return _problem(500, "The node hit an unexpected error; its log has the details.")


def problem_details_plugin() -> ProblemDetailsPlugin:
    mapping: dict[type[Exception], Any] = {HTTPException: from_http_exception, Exception: from_unexpected}
    mapping.update(dict.fromkeys(ERROR_STATUS, from_peerkit_error))
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=mapping))



# ---------------------------------------------------------------- OpenAPI


def _problem_schema() -> Schema:
    string = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        title="ProblemDetail",
        description="RFC 9457 problem details",
        required=["title", "status"],
        properties={
            "type": string,
            "title": string,
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": string,
            "instance": string,
            "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
        },
    )


def document_problems(openapi: OpenAPI) -> None:
    """Make every documented error response (any plugin's route) say problem+json, and add a default.

    Litestar documents its own exceptions with a different JSON shape; the
    app answers with problem details, so the document is corrected in one
    place rather than in every plugin.
    """
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    openapi.components.schemas[PROBLEM_SCHEMA] = _problem_schema()
    content = {PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{PROBLEM_SCHEMA}"))}
    for path_item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for code, response in list(responses.items()):
                if code[:1] in "45" and isinstance(response, OpenAPIResponse):
                    response.content = content
            responses.setdefault(
                "default", OpenAPIResponse(description="Any other error, as problem details", content=content)
            )
            operation.responses = responses
