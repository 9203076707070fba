"""One roll-up of exit codes: the most serious wins."""

from __future__ import annotations

from collections.abc import Iterable

from jobsync.errors import ExitCode


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The code of a run made of parts: refusals outrank failures, failures outrank drift.

    (The codes are ordered so: 0 success, 1 drift, 3 failed, 4 refused; see ``ExitCode``.)
    """
    return max(codes, default=ExitCode.OK)
