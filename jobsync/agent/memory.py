"""Giving freed memory back to the system after a large pass.

A full pass over 10,000 jobs reads and parses the peer's manifest and listing (megabytes that
are freed right after). CPython returns such blocks to the C allocator, and glibc keeps them
mapped, so a long-running agent would sit at the peak of its busiest pass. ``malloc_trim``
asks glibc to release what is free. Other C libraries (Windows, musl) manage this themselves
or lack the call; there it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
if sys.platform == "linux":
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = _libc.malloc_trim
    except (OSError, AttributeError):
        _trim = None


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system, where the C library allows it."""
    if _trim is not None:
        _trim(0)
