"""REST routes of the plugin: ``GET /locate`` and ``GET /network/files`` (mounted under ``/api/v1``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import get
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from .config import TTL_CAP
from .messages import MAX_QUERY_BYTES
from .models import LocateResult, NetworkFiles

if TYPE_CHECKING:
    from .forwarding import Flooder

TTL_DOC = f"hops the query may travel: 0 = this node only, 1 = direct neighbours; capped at {TTL_CAP} (default from [discovery_flood] ttl)"
TIMEOUT_DOC = "deadline of the whole locate in seconds, at most 60 (default from [discovery_flood] timeout_s)"


def _bad_input(err: ValueError) -> ValidationException:
    return ValidationException(detail=str(err))


def flood_routes(flooder: Flooder) -> list[Any]:
    @get(
        "/locate",
        summary="Flood a query through the network; list every peer holding matching files",
        description=(
            "`name` is an exact file name, a glob such as `*.txt`, or `sha256:<hex>` "
            "(the whole digest or a prefix of at least 8 hex digits)."
        ),
        tags=["discovery"],
    )
    async def locate(
        name: Annotated[str, Parameter(description="exact name, glob or sha256:<hex> (8+ digits: a prefix)", min_length=1, max_length=MAX_QUERY_BYTES)],
        ttl: Annotated[int | None, Parameter(description=TTL_DOC)] = None,
        timeout: Annotated[float | None, Parameter(description=TIMEOUT_DOC)] = None,
    ) -> LocateResult:
        try:
            return await flooder.locate(name, ttl=ttl, timeout=timeout)
        except ValueError as err:
            raise _bad_input(err) from None

    @get(
        "/network/files",
        summary="Every reachable peer's shared files, by peer",
        description="Floods a list-everything query; each peer lists at most `limit` files (capped by its config).",
        tags=["discovery"],
    )
    async def network_files(
        ttl: Annotated[int | None, Parameter(description=TTL_DOC)] = None,
        timeout: Annotated[float | None, Parameter(description=TIMEOUT_DOC)] = None,
        limit: Annotated[int | None, Parameter(description="files per peer at most")] = None,
    ) -> NetworkFiles:
        try:
            return await flooder.network_files(ttl=ttl, timeout=timeout, limit=limit)
        except ValueError as err:
            raise _bad_input(err) from None

    return [locate, network_files]
