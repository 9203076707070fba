"""Keeping secrets out of everything jobsync prints or logs, and making it printable."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


class Redactor:
    """A processor that replaces every registered secret with ``***``."""

    def __init__(self) -> None:
        """Start with no secrets."""
        self._secrets: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secrets, longest first so overlapping ones are hidden whole."""
        merged = {*self._secrets, *(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)}
        self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def text(self, value: str) -> str:
        """``value`` with every secret hidden."""
        for secret in self._secrets:
            value = value.replace(secret, "***")
        return value

    def __call__(
        self,
        _logger: Any,  # noqa: ANN401 - structlog's processor signature
        _name: str,
        event: MutableMapping[str, Any],
    ) -> MutableMapping[str, Any]:
        """Hide secrets in every string value of the event."""
        if not self._secrets:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.text(value)
            elif not isinstance(value, (int, float, bool)) and value is not None:
                event[key] = self.text(str(value))
        return event


REDACTOR = Redactor()


def printable(text: str) -> str:
    r"""``text`` safe to print: bytes a file name held that are not UTF-8 show as ``\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def secrets_hidden(value: str) -> str:
    """Text for the user: every registered secret hidden, every character printable."""
    return printable(REDACTOR.text(value))
