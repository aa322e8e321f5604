"""The ``[grpc_transfer]`` config table."""

from __future__ import annotations

import math

import msgspec

from peerkit.utils import normalise_sizes

# Measured (bench/README.md): 1 MiB chunks move about twice the bytes per
# second of 64 KiB ones through grpcio; 4 MiB ones were slower again and cost
# more memory per stream.
DEFAULT_CHUNK_SIZE = 1 << 20
# Stays well under the 8 MiB message limit of peerkit.grpc_server.
MAX_CHUNK_SIZE = 4 << 20
DEFAULT_MAX_UPLOAD = 16 << 30


class TransferConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``chunk_size``: bytes per Download message. ``max_upload_bytes``: the
    largest file one Upload may store (0 = no limit); sizes are an int or a
    string with a unit such as ``"4GiB"``. ``max_concurrent_uploads``: uploads
    this node accepts at once (0 = no limit); more answer RESOURCE_EXHAUSTED.
    ``upload_idle_timeout_s``: an upload that sends nothing for this long is
    ended with DEADLINE_EXCEEDED and its temp file removed, so stalled clients
    cannot hold the upload slots forever (0 = wait forever).
    ``max_concurrent_downloads`` and ``download_idle_timeout_s`` do the same
    for Download streams: a client that takes no chunk for that long loses the
    stream (DEADLINE_EXCEEDED), and the node closes the file."""

    chunk_size: int | str = DEFAULT_CHUNK_SIZE
    max_upload_bytes: int | str = DEFAULT_MAX_UPLOAD
    max_concurrent_uploads: int = 32
    upload_idle_timeout_s: float = 60.0
    max_concurrent_downloads: int = 256
    download_idle_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        normalise_sizes(self, "chunk_size", "max_upload_bytes")
        if not 1 <= int(self.chunk_size) <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size: expected 1 to {MAX_CHUNK_SIZE} bytes, got {self.chunk_size}")
        for key in ("upload_idle_timeout_s", "download_idle_timeout_s", "max_concurrent_uploads", "max_concurrent_downloads"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):  # nan compares false with everything
                raise ValueError(f"{key}: expected >= 0, got {value}")

    @property
    def upload_limit(self) -> int | None:
        return int(self.max_upload_bytes) or None
