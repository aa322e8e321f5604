"""The ``[rest_litestar]`` config table."""

from __future__ import annotations

import msgspec

TABLE = "rest_litestar"
DEFAULT_MAX_UPLOAD = 64 << 30  # 64 GiB: a guard against a runaway body, not a quota


class RestConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Options of the REST plugin; every key may be overridden as ``PEERKIT_REST_LITESTAR_<KEY>``."""

    access_log: bool = False
    """uvicorn's per-request access log (off: it costs about a tenth of the request rate)."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    """Largest body ``PUT /files/{name}/content`` accepts; larger gets 413."""
    docs: bool = True
    """Serve the OpenAPI document and browsable docs under ``/schema``."""

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 0:
            raise ValueError("max_upload_bytes must be >= 0")
