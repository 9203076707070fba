"""Requests sent and not finally answered: which ones the server said it is working on.

A server that must wait (another client holds a lease or an oplock on the file, and the server
is breaking it) answers STATUS_PENDING with an AsyncId, and the final answer may take up to its
break timeout. Such a request may wait ``pending_limit`` seconds; what follows it in its
compound waits with it. Silence while only such requests wait is not a frozen server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Waiting:
    """A request sent and not finally answered yet."""

    chain: tuple[int, ...]  # the ids of its compound, in order
    pending_until: float | None = None  # set once the server answered STATUS_PENDING
    async_id: int | None = None
    cancelled: bool = False


class Outstanding:
    """The requests of one connection still waiting for their final answers."""

    def __init__(self, *, pending_limit: float, sent: Iterable[int] = ()) -> None:
        """Track ``sent`` (requests sent before the channel took the connection over)."""
        self._pending_limit = pending_limit
        self._waiting = {message_id: Waiting((message_id,)) for message_id in sent}

    def __len__(self) -> int:
        """How many requests wait."""
        return len(self._waiting)

    def sent(self, chain: tuple[int, ...]) -> None:
        """A compound went out."""
        for message_id in chain:
            self._waiting[message_id] = Waiting(chain)

    def get(self, message_id: int) -> Waiting | None:
        """The request ``message_id`` if it still waits."""
        return self._waiting.get(message_id)

    def answered(self, message_id: int) -> None:
        """Its final answer came."""
        del self._waiting[message_id]

    def pending(self, message_id: int, async_id: int) -> None:
        """The server works on ``message_id``; what follows it in its compound waits with it."""
        waiting = self._waiting[message_id]
        until = time.monotonic() + self._pending_limit
        waiting.async_id = async_id
        waiting.pending_until = None if waiting.cancelled else until
        for later in waiting.chain[waiting.chain.index(message_id) + 1 :]:
            behind = self._waiting.get(later)
            if behind is not None and behind.pending_until is None and not behind.cancelled:
                behind.pending_until = until

    def quiet_limit(self, timeout: float) -> float:
        """How long silence may last: ``timeout``, or less when a pending request falls due."""
        deadlines = [w.pending_until for w in self._waiting.values() if w.pending_until]
        if deadlines and len(deadlines) == len(self._waiting):
            return max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        return timeout

    def overdue(self) -> list[int]:
        """After silence: the pending requests past their limit, to cancel.

        Raises ``TimeoutError`` when a request the server never said it works on is among
        those waiting: the server itself is silent.
        """
        if not self._waiting or any(w.pending_until is None for w in self._waiting.values()):
            raise TimeoutError("no answer from the server")
        now = time.monotonic()
        return [i for i, w in self._waiting.items() if w.pending_until and w.pending_until <= now]
