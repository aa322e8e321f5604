"""The share's file-name rules, in one place (CONTRACT.md, "Names in the share").

A name is one path component: no "/", "\\", NUL or other control characters,
no leading ".", not empty, at most 255 bytes of UTF-8, stored NFC-normalised.
Everything that turns a user-supplied name into something on disk goes
through :func:`validate_name` first.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 255


class InvalidName(ValueError):
    """A file name the share refuses; ``str(exc)`` says why, in one line."""


def validate_name(name: object) -> str:
    """Return the NFC form of ``name`` or raise :class:`InvalidName`."""
    if not isinstance(name, str):
        raise InvalidName(f"file name must be a string, got {type(name).__name__}")
    norm = unicodedata.normalize("NFC", name)
    if not norm:
        raise InvalidName("file name is empty")
    if "/" in norm or "\\" in norm:
        raise InvalidName(f"file name {norm!r} must be one path component (no '/' or '\\\\')")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in norm):
        raise InvalidName(f"file name {norm!r} contains a control character")
    if norm.startswith("."):
        raise InvalidName(f"file name {norm!r} must not start with '.'")
    try:
        size = len(norm.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidName(f"file name {norm!r} is not valid Unicode") from None
    if size > MAX_NAME_BYTES:
        raise InvalidName(f"file name is {size} bytes of UTF-8, the limit is {MAX_NAME_BYTES}")
    return norm

