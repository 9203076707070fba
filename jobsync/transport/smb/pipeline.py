"""Many SMB compounds in flight on one connection.

Each file operation is written as a generator that yields one compound (a list of requests)
at a time and receives the replies to it. The runner keeps up to ``window`` of them in flight,
never spends more credits than the server granted, and receives every reply of a compound even
after a failure, so responses never pile up on the connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from typing import Protocol, TypeVar

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

    def send(self, compound: Compound, *, related: bool) -> list[int]:
        """Send one compound; returns the message ids of its requests."""
        ...

    def receive(self, message_id: int) -> Reply:
        """The reply to one request."""
        ...


def run(link: Link, operations: Sequence[Operation[T]], *, window: int) -> list[T]:
    """Drive every operation to completion, ``window`` at a time; results in input order.

    A connection-level failure (raised by ``link``) aborts the run; a failed request is handed
    to its operation as a :class:`Reply` with its error status.
    """
    results: list[T | None] = [None] * len(operations)
    fresh = deque(enumerate(operations))
    ready: deque[tuple[int, Operation[T], Step]] = deque()
    in_flight: deque[tuple[int, Operation[T], list[int]]] = deque()

    def advance(index: int, op: Operation[T], replies: list[Reply] | None) -> None:
        try:
            step = next(op) if replies is None else op.send(replies)
        except StopIteration as done:
            results[index] = done.value
        else:
            ready.append((index, op, step))

    while fresh or ready or in_flight:
        while len(in_flight) < window and (ready or fresh):
            if not ready:
                index, op = fresh.popleft()
                advance(index, op, None)
                continue
            index, op, (compound, related) = ready[0]
            needed = sum(max(r.charge, 1) for r in compound)
            if in_flight and link.credits < needed:
                break  # wait for replies to hand credits back
            ready.popleft()
            in_flight.append((index, op, link.send(compound, related=related)))
        if in_flight:
            index, op, ids = in_flight.popleft()
            advance(index, op, [link.receive(i) for i in ids])
    return results  # type: ignore[return-value] # every slot was filled by its operation
