"""Keep glibc's malloc from handing bulk-transfer buffers back to the kernel after each use.

A transfer allocates and frees 1-2 MiB buffers hundreds of times per second.
With glibc's defaults those come from fresh mmaps or from heap tops that are
trimmed right after, so every buffer is paid again in page faults: ~129,000
per GiB sent, a third of a node's CPU (on this project's VM, where first-touch
memory is expensive). Serving such buffers from the heap, trimming only above
16 MiB of free top, and capping arenas at two (each arena keeps its own free
memory) took a 1 GiB download from 1.4-1.5 to 0.8-0.9 node CPU-s/GB and an upload from
4.0 to 2.6, with RSS still ~30 MB above idle (bench/README.md).

Only glibc has ``mallopt``; elsewhere, or when the user tunes malloc through the
environment (MALLOC_*_ or GLIBC_TUNABLES), this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 8 << 20  # buffers up to this size come from the heap (transfers use 1-2 MiB)
TRIM_THRESHOLD = 16 << 20  # free memory kept at a heap's top before it is returned
ARENA_MAX = 2

_USER_KNOBS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_done: bool | None = None


def tune_malloc() -> bool:
    """Apply the settings once per process; True when they are in effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if any(k in os.environ for k in _USER_KNOBS):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = all(
        mallopt(param, value) == 1
        for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX))
    )
    _done = ok
    return ok
