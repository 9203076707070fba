"""The lock files in requirements/: the Python versions they serve, and their pins read back."""

from __future__ import annotations

import re

from packaging.markers import Marker
from packaging.utils import canonicalize_name

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\#\n]+))?", re.MULTILINE)


def read_pins(text: str, environment: dict[str, str] | None = None) -> dict[str, str]:
    """``name==version`` lines as {canonical name: version}, markers evaluated if given."""
    found = {}
    for name, pinned, marker in _PIN.findall(text):
        if marker and environment is not None and not Marker(marker).evaluate(environment):
            continue
        found[canonicalize_name(name)] = pinned
    return found
