"""Doing one piece of work for every peer at once: a slow peer never delays the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each_peer(peers: Sequence[T], work: Callable[[T], R], *, name: str) -> list[R]:
    """``work(peer)`` for every peer concurrently, one thread each; results in the peers' order.

    ``work`` reports a peer's own failure in its result; anything it raises is re-raised here
    (a broken installation, a bug), after every other peer has finished.
    """
    if not peers:
        return []
    with ThreadPoolExecutor(max_workers=len(peers), thread_name_prefix=name) as pool:
        futures = [pool.submit(work, peer) for peer in peers]
        return [future.result() for future in futures]
