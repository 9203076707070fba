"""Many SMB compounds in flight on one connection.

Each file operation is written as a generator that yields one compound (a list of requests)
at a time and receives the replies to it. The runner keeps up to ``window`` of them in flight,
never spends more credits than the server granted, and receives every reply of a compound even
after a failure, so responses never pile up on the connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from smbprotocol.exceptions import SMBResponseException

from jobsync.transport.smb.wire import credit_charge

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """The answer to one request of a compound: a response header, or the error status."""

    header: Any = None
    error: SMBResponseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the server carried the request out."""
        return self.error is None


Compound = list[Any]
Step = tuple[Compound, bool]  # the requests, and whether they are related to each other
Operation = Generator[Step, list[Reply], T]


class Channel:
    """What the runner needs from a connection, so the runner itself stays free of sockets."""

    def __init__(
        self,
        *,
        send: Callable[[Compound, bool], list[Any]],
        receive: Callable[[Any], Any],
        credits_available: Callable[[], int],
    ) -> None:
        """Wrap the three calls the runner makes."""
        self.send = send
        self.receive = receive
        self.credits_available = credits_available


def run(channel: Channel, operations: Sequence[Operation[T]], *, window: int) -> list[T]:
    """Drive every operation to completion, ``window`` at a time; results in input order.

    A connection-level failure (raised by ``channel.receive``) aborts the run; a failed
    request is handed to its operation as a :class:`Reply` with an error.
    """
    results: list[T | None] = [None] * len(operations)
    fresh = deque(enumerate(operations))
    ready: deque[tuple[int, Operation[T], Step]] = deque()
    in_flight: deque[tuple[int, Operation[T], list[Any]]] = deque()

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
            needed = sum(credit_charge(m) for m in compound)
            if in_flight and channel.credits_available() < needed:
                break  # wait for replies to hand credits back
            ready.popleft()
            in_flight.append((index, op, channel.send(compound, related)))
        if in_flight:
            index, op, requests = in_flight.popleft()
            replies = [_receive(channel, r) for r in requests]
            advance(index, op, replies)
    return results  # type: ignore[return-value] # every slot was filled by its operation


def _receive(channel: Channel, request: Any) -> Reply:  # noqa: ANN401
    try:
        return Reply(header=channel.receive(request))
    except SMBResponseException as exc:
        return Reply(error=exc)
