"""The ``[rest_litestar]`` config table."""

from __future__ import annotations

import math

import msgspec

TABLE = "rest_litestar"
DEFAULT_MAX_UPLOAD = 64 << 30  # 64 GiB: a guard against a runaway body, not a quota


class RestConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Options of the REST plugin; every key may be overridden as ``PEERKIT_REST_LITESTAR_<KEY>``."""

    access_log: bool = False
    """uvicorn's per-request access log (off: it costs about a tenth of the request rate)."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    """Largest body ``PUT /files/{name}/content`` accepts; larger gets 413."""
    upload_idle_timeout_s: float = 60.0
    """A PUT whose body stops arriving for this long gets 408 and leaves nothing (0: wait forever)."""
    download_idle_timeout_s: float = 60.0
    """A content download whose client takes no bytes for this long is cut off; the file is closed (0: wait forever)."""
    max_header_bytes: int = 1 << 20
    """A request whose headers pass this many bytes gets 431 and the connection closes (counted per read: leave slack)."""
    header_timeout_s: float = 10.0
    """A request whose headers take longer than this from their first byte gets 408 (0: no limit)."""
    docs: bool = True
    """Serve the OpenAPI document and browsable docs under ``/schema``."""

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 0:
            raise ValueError("max_upload_bytes must be >= 0")
        if not (math.isfinite(self.upload_idle_timeout_s) and self.upload_idle_timeout_s >= 0):
            raise ValueError("upload_idle_timeout_s must be a number of seconds >= 0")
        if not (math.isfinite(self.download_idle_timeout_s) and self.download_idle_timeout_s >= 0):
            raise ValueError("download_idle_timeout_s must be a number of seconds >= 0")
        if not (math.isfinite(self.header_timeout_s) and self.header_timeout_s >= 0):
            raise ValueError("header_timeout_s must be a number of seconds >= 0")
        if self.max_header_bytes < 4096:
            raise ValueError("max_header_bytes must be at least 4096")
