"""Many SMB compounds in flight on one connection.

Each file operation is written as a generator that yields one compound (a list of requests)
at a time and receives the replies to it. The runner keeps up to ``window`` of them in flight,
never spends more credits than the server granted, and moves each operation on as soon as its
replies are in, whatever order they come in: a request the server keeps waiting (another client
holds the file) delays its own operation only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from jobsync.transport.smb.channel import Reply
from jobsync.transport.smb.wire import Request

T = TypeVar("T")

Compound = list[Request]
Step = tuple[Compound, bool]  # the requests, and whether they are related to each other
Operation = Generator[Step, list[Reply], T]


class Link(Protocol):
    """What the runner needs from a connection, so the runner itself stays free of sockets."""

    @property
    def credits(self) -> int:
        """Credits granted and not yet spent."""
        ...

    def cost(self, compound: Compound) -> int:
        """Credits sending ``compound`` spends."""
        ...

    def top_up(self, needed: int) -> None:
        """With nothing in flight, get ``needed`` credits from the server (or raise)."""
        ...

    def send(self, compound: Compound, *, related: bool) -> list[int]:
        """Send one compound; returns the message ids of its requests."""
        ...

    def wait(self) -> list[int]:
        """Block until some final replies arrive; returns their message ids."""
        ...

    def take(self, message_id: int) -> Reply:
        """The reply to one request, once it has arrived."""
        ...


@dataclass
class _InFlight(Generic[T]):
    index: int
    operation: Operation[T]
    ids: list[int]
    left: int


def run(link: Link, operations: Sequence[Operation[T]], *, window: int) -> list[T]:
    """Drive every operation to completion, ``window`` at a time; results in input order.

    A connection-level failure (raised by ``link``) aborts the run; a failed request is handed
    to its operation as a :class:`Reply` with its error status.
    """
    return _Run(link, operations, window).results()


class _Run(Generic[T]):
    """One :func:`run`: the operations not started, ready to send, and in flight."""

    def __init__(self, link: Link, operations: Sequence[Operation[T]], window: int) -> None:
        self._link = link
        self._window = window
        self._results: list[T | None] = [None] * len(operations)
        self._fresh = deque(enumerate(operations))
        self._ready: deque[tuple[int, Operation[T], Step]] = deque()
        self._by_id: dict[int, _InFlight[T]] = {}
        self._in_flight = 0

    def results(self) -> list[T]:
        while self._fresh or self._ready or self._in_flight:
            self._send_what_fits()
            if self._in_flight:
                self._collect()
        return self._results  # type: ignore[return-value] # every slot was filled

    def _advance(self, index: int, op: Operation[T], replies: list[Reply] | None) -> None:
        try:
            step = next(op) if replies is None else op.send(replies)
        except StopIteration as done:
            self._results[index] = done.value
        else:
            self._ready.append((index, op, step))

    def _send_what_fits(self) -> None:
        link, ready = self._link, self._ready
        while self._in_flight < self._window and (ready or self._fresh):
            if not ready:
                self._advance(*self._fresh.popleft(), None)
                continue
            index, op, (compound, related) = ready[0]
            needed = link.cost(compound)
            if link.credits < needed:
                if self._in_flight:
                    return  # replies will hand credits back
                link.top_up(needed)  # nothing will: ask the server
            ready.popleft()
            ids = link.send(compound, related=related)
            entry = _InFlight(index, op, ids, len(ids))
            for message_id in ids:
                self._by_id[message_id] = entry
            self._in_flight += 1

    def _collect(self) -> None:
        """Move on every operation whose replies are all in, in whatever order they came."""
        for message_id in self._link.wait():
            entry = self._by_id.pop(message_id, None)
            if entry is None:
                continue  # not one of this run's requests
            entry.left -= 1
            if not entry.left:
                self._in_flight -= 1
                replies = [self._link.take(i) for i in entry.ids]
                self._advance(entry.index, entry.operation, replies)
