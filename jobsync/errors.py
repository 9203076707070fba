"""The one error tree of jobsync, each class with its exit code, and their roll-up.

::

    JobsyncError
    ├── ConfigError            2  bad or missing configuration
    ├── SourceError            2  the source folder is missing or unreadable
    ├── InstallationError      2  a dependency is not the version jobsync was tested with
    ├── PeerError              3  one peer failed; the others still ran
    │   ├── PeerUnreachableError     connection refused, name unknown, connection dropped
    │   │   └── PeerSessionLostError   the server ended the logon session: log on again
    │   ├── PeerTimeoutError         no answer within ``timeout_seconds``
    │   ├── PeerAuthError            logon refused
    │   ├── PeerSecurityError        the peer cannot give what the config requires (encryption)
    │   ├── PeerPathError            the share or folder cannot be used (missing, DFS namespace)
    │   └── PeerIOError              the peer refused one operation (access denied, disk full, ...)
    └── SafetyRefusalError          4  jobsync would rather not than guess

Errors of the lower libraries are translated into this tree once, at the transport boundary.
Drift is a result, not an exception.

One roll-up of exit codes: the most serious wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes."""

    OK = 0
    DRIFT = 1
    USAGE = 2
    PEER_FAILED = 3
    REFUSED = 4
    AGENT_NOT_RUNNING = 5  # jobsync status: no agent runs with this configuration
    # jobsync failover: the step that failed, each leaving a known state (docs/failover.md)
    FENCE_FAILED = 10  # the services elsewhere may still run; nothing changed here
    TAKEOVER_FAILED = 11  # fenced elsewhere; the jobs were not taken over
    START_FAILED = 12  # the jobs are taken over; a service here did not reach RUNNING
    REPOINT_FAILED = 13  # services and jobs here; the services name still points elsewhere
    NOT_PROVEN = 14  # everything moved, but the healthcheck or a final check does not pass
    OUTRANKED = 15  # another node's takeover won meanwhile; the services here were stopped


class JobsyncError(Exception):
    """Base of every error jobsync reports to its user."""

    exit_code: ExitCode = ExitCode.USAGE


class ConfigError(JobsyncError):
    """The configuration file is missing, malformed or invalid."""

    exit_code = ExitCode.USAGE


class SourceError(JobsyncError):
    """The source folder is missing or cannot be listed."""

    exit_code = ExitCode.USAGE


class InstallationError(JobsyncError):
    """jobsync's installation is broken: a dependency is not the version it was tested with."""

    exit_code = ExitCode.USAGE


class PeerError(JobsyncError):
    """A peer could not be reached or refused an operation."""

    exit_code = ExitCode.PEER_FAILED


class PeerUnreachableError(PeerError):
    """The peer's address could not be reached, or the connection dropped."""


class PeerSessionLostError(PeerUnreachableError):
    """The server ended the logon session (an expired Kerberos ticket, a closed share).

    The connection logs on again at its next use, so the work can simply be done again.
    """


class PeerTimeoutError(PeerError):
    """The peer did not answer within the configured time."""


class PeerAuthError(PeerError):
    """The peer refused the logon."""


class PeerSecurityError(PeerError):
    """The peer cannot offer what the configuration requires (for example encryption)."""


class PeerPathError(PeerError):
    """The peer's share or folder cannot be used as configured (missing, a DFS namespace)."""


class PeerIOError(PeerError):
    """The peer refused one file operation."""


class PeerFileNotFoundError(PeerIOError):
    """The file the operation named is not on the peer."""


class SafetyRefusalError(JobsyncError):
    """jobsync refused an action that could lose data."""

    exit_code = ExitCode.REFUSED


class ManifestTooNewError(SafetyRefusalError):
    """A folder's manifest is in a newer jobsync's format: this one leaves the folder alone.

    Raised where the manifest is parsed, and again, in the words of the place it was met (a
    peer, this node's own folder), by whoever refuses to act on it.
    """


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The code of a run made of parts: refusals outrank failures, failures outrank drift.

    (The codes are ordered so: 0 success, 1 drift, 3 failed, 4 refused; see ``ExitCode``.)
    """
    return max(codes, default=ExitCode.OK)
