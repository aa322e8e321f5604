"""Small helpers shared by the core and plugins."""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, TypeVar

from .errors import Stalled

T = TypeVar("T")


async def await_me_maybe(value: Any) -> Any:
    """Resolve a hook result that may be a value, an awaitable, or a callable returning either."""
    if callable(value) and not inspect.isawaitable(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


MAX_SIZE = (1 << 63) - 1  # what a file offset can hold


def parse_size(text: str | int) -> int:
    """Parse '100MB', '1GiB', '64k', '123' into bytes (decimal for kB/MB/GB, binary for KiB/MiB/GiB)."""
    if isinstance(text, int):
        return text
    s = text.strip().replace(" ", "").upper()
    units = {
        "": 1, "B": 1,
        "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3, "GB": 1000**3,
        "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3,
    }
    num = s.rstrip("KMGIB")
    unit = s[len(num):]
    if unit not in units or not num:
        raise ValueError(f"cannot read size {text!r} (try 100MB, 1GiB, 4096)")
    if num.isdigit():  # exact, however many digits
        size = int(num) * units[unit]
    else:
        try:
            value = float(num)
        except ValueError:
            raise ValueError(f"cannot read size {text!r} (try 100MB, 1GiB, 4096)") from None
        if math.isnan(value):
            raise ValueError(f"cannot read size {text!r} (try 100MB, 1GiB, 4096)")
        if value < 0:
            raise ValueError(f"size must not be negative: {text!r}")
        exact = value * units[unit]
        if not math.isfinite(exact):  # int() would raise OverflowError
            raise ValueError(f"size {text!r} is too large (at most {MAX_SIZE} bytes)")
        size = int(exact)
        if size != exact:
            raise ValueError(f"size {text!r} is not a whole number of bytes")
    if size > MAX_SIZE:
        raise ValueError(f"size {text!r} is too large (at most {MAX_SIZE} bytes)")
    return size


def normalise_sizes(struct: object, *keys: str) -> None:
    """In a config Struct's ``__post_init__``: turn size fields given as "4GiB" into ints >= 0.

    Raises ValueError naming the key, which the config loader reports as one line.
    """
    for key in keys:
        value = getattr(struct, key)
        if isinstance(value, str):
            try:
                value = parse_size(value)
            except ValueError as err:
                raise ValueError(f"{key}: {err}") from None
        if value < 0:
            raise ValueError(f"{key}: expected a size >= 0, got {value}")
        setattr(struct, key, value)


async def each_within(items: AsyncIterable[T], seconds: float | None, what: str) -> AsyncIterator[T]:
    """``items``, waiting at most ``seconds`` for each (None: forever); Stalled when one is late.

    For bodies and streams a client sends: one that goes silent must not hold a
    temp file and an upload slot forever.
    """
    it = items.__aiter__()
    while True:
        try:
            item = await asyncio.wait_for(it.__anext__(), seconds)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise Stalled(f"nothing received for {seconds:g} s: {what} abandoned") from None
        yield item
