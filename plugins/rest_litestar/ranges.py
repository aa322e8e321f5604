"""HTTP ``Range`` and validators for one file (RFC 9110 §14, single ranges only).

Pure functions, so the edge cases (first byte, last byte, suffix, past the
end) are tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import formatdate, parsedate_to_datetime


class RangeNotSatisfiable(Exception):
    """The Range cannot be served from a file of this size (416 with ``Content-Range: bytes */size``)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for a file of {size} bytes")
        self.size = size


_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _clip(digits: str | None) -> str | None:
    """Digit strings past any file size are read as the largest offset, not as a 4,300-digit int."""
    return str(OFFSET_MAX) if digits and len(digits) > len(str(OFFSET_MAX)) else digits


OFFSET_MAX = (1 << 63) - 1


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span ``header`` asks of a ``size``-byte file, or None to send it whole.

    Syntactically invalid headers and multi-range requests are ignored (RFC 9110
    allows a server to), so the client gets a plain 200. A well-formed range
    that starts at or past the end raises :class:`RangeNotSatisfiable`.
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.match(spec)
    if match is None:
        return None
    first, last = (_clip(g) for g in match.groups())
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid spec: ignore the header
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


def etag_for(sha256: str) -> str:
    """A strong ETag: the content's sha256, quoted."""
    return f'"{sha256}"'


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def if_range_allows(if_range: str | None, etag: str, mtime: float) -> bool:
    """Whether a Range may be honoured under ``If-Range`` (absent, same strong ETag, or same date)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # weak tags never match for ranges
    try:
        return int(parsedate_to_datetime(value).timestamp()) == int(mtime)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` (weak comparison) matches ``etag``."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def expected_sha256(x_sha256: str | None, digest: str | None, content_digest: str | None = None) -> str | None:
    """The hex sha256 a client announced (``X-Sha256``, ``Digest: sha-256=``, ``Content-Digest``).

    Raises ValueError for a malformed value or two announcements that disagree.
    """
    found: list[str] = []
    if x_sha256 is not None:
        value = x_sha256.strip()
        if not _HEX64.match(value):
            raise ValueError("X-Sha256 must be 64 hex digits")
        found.append(value.lower())
    for header_name, header, wrapped in (("Digest", digest, False), ("Content-Digest", content_digest, True)):
        if header is None:
            continue
        for part in header.split(","):
            algo, sep, value = part.strip().partition("=")
            if not sep or algo.strip().lower() != "sha-256":
                continue
            value = value.strip()
            if wrapped:  # RFC 9530 structured field: sha-256=:<base64>:
                value = value.strip(":")
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{header_name}: sha-256 must be base64") from None
            if len(raw) != 32:
                raise ValueError(f"{header_name}: sha-256 must be 32 bytes")
            found.append(raw.hex())
    if len(set(found)) > 1:
        raise ValueError("the announced sha256 values disagree")
    return found[0] if found else None
