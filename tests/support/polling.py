"""Waiting in the tests and their helpers: a condition polled until it holds or time runs out.

The one place the suite pauses. A test waits for what it needs (a port open, a process gone,
a file arrived), never for a fixed time: fast machines go on at once, slow ones get the whole
deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
DEADLINE = 30.0


def poll_until(check: Callable[[], T], *, timeout: float, interval: float = 0.02) -> T | None:
    """What ``check()`` returns once it is truthy; ``None`` if it is not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)  # the poll interval, not a wait for something to have happened


def wait_for(check: Callable[[], T], *, timeout: float = DEADLINE, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    value = poll_until(check, timeout=timeout)
    if not value:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
    return value
