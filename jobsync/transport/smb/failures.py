"""Failures of an SMB peer in jobsync's error tree, mapped by type, explained in words.

smbprotocol's exceptions and socket errors are translated once, here, into the most specific
:class:`~jobsync.errors.PeerError`; an NT status becomes words (:mod:`statuses`), and a refused
logon keeps the authentication library's own reason.
"""

from __future__ import annotations

import importlib.util
import sys

from smbprotocol.exceptions import (
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBLinkRedirectionError,
    SMBOSError,
    SMBResponseException,
    SMBUnsupportedFeature,
)

from jobsync.config import PeerConfig, UncPath
from jobsync.errors import (
    PeerAuthError,
    PeerError,
    PeerIOError,
    PeerPathError,
    PeerSecurityError,
    PeerTimeoutError,
    PeerUnreachableError,
)
from jobsync.transport.smb import statuses

_LOGON_STATUSES = frozenset(
    {
        statuses.STATUS_LOGON_FAILURE,
        statuses.STATUS_WRONG_PASSWORD,
        statuses.STATUS_ACCOUNT_RESTRICTION,
        statuses.STATUS_INVALID_LOGON_HOURS,
        statuses.STATUS_INVALID_WORKSTATION,
        statuses.STATUS_PASSWORD_EXPIRED,
        statuses.STATUS_PASSWORD_MUST_CHANGE,
        statuses.STATUS_ACCOUNT_DISABLED,
        statuses.STATUS_ACCOUNT_EXPIRED,
        statuses.STATUS_ACCOUNT_LOCKED_OUT,
        statuses.STATUS_TIME_DIFFERENCE_AT_DC,
        statuses.STATUS_NO_LOGON_SERVERS,
        statuses.STATUS_TRUSTED_RELATIONSHIP_FAILURE,
        statuses.STATUS_KDC_UNKNOWN_ETYPE,
    }
)


def translate(  # noqa: PLR0911 - one answer per kind of failure, most specific first
    exc: BaseException,
    *,
    config: PeerConfig,
    unc: UncPath,
    doing: str,
    timeout: float,
    timed_out: bool,
) -> PeerError:
    """Map an smbprotocol, socket or channel error, by type, to the most specific PeerError."""
    peer = config.name
    if isinstance(exc, PeerError):
        return exc
    if timed_out or isinstance(exc, TimeoutError):
        return PeerTimeoutError(f"peer {peer}: no answer within {timeout:g} s while {doing}")
    if isinstance(exc, SMBAuthenticationError):
        return _logon_refused(config, str(exc))
    if isinstance(exc, SMBResponseException):
        return _refused(exc.status, config=config, unc=unc, doing=doing)
    if isinstance(exc, SMBOSError):
        return PeerIOError(f"peer {peer}: refused while {doing}: {statuses.describe(exc.ntstatus)}")
    if isinstance(exc, SMBLinkRedirectionError):
        return PeerPathError(
            f"peer {peer}: {unc} goes through a symbolic link jobsync does not follow: {exc}"
        )
    if isinstance(exc, SMBUnsupportedFeature):
        return PeerSecurityError(f"peer {peer}: the server cannot give what jobsync needs: {exc}")
    if isinstance(exc, (SMBConnectionClosed, SMBException, OSError)):
        return PeerUnreachableError(f"peer {peer}: connection lost while {doing}: {exc}")
    return PeerUnreachableError(f"peer {peer}: failed while {doing}: {type(exc).__name__}: {exc}")


def _refused(status: int, *, config: PeerConfig, unc: UncPath, doing: str) -> PeerError:
    peer, words = config.name, statuses.describe(status)
    if status in _LOGON_STATUSES:
        return _logon_refused(config, words)
    if status == statuses.STATUS_BAD_NETWORK_NAME:
        return PeerPathError(
            f"peer {peer}: share \\\\{unc.host}\\{unc.share} does not exist (0x{status:08X})"
        )
    if status in (statuses.STATUS_ACCESS_DENIED, statuses.STATUS_NETWORK_ACCESS_DENIED):
        who = _who(config)
        if doing == "connecting":
            return PeerAuthError(
                f"peer {peer}: {who} may not use \\\\{unc.host}\\{unc.share} ({words}); if the "
                "server requires encryption, it must allow SMB 3"
            )
    return PeerIOError(f"peer {peer}: refused while {doing}: {words}")


def _logon_refused(config: PeerConfig, cause: str) -> PeerAuthError:
    hint = "" if config.username else f"; {current_account_hint()}"
    return PeerAuthError(f"peer {config.name}: logon refused for {_who(config)}: {cause}{hint}")


def current_account_hint() -> str:
    """What logging on as the current account (no user name in the config) needs here."""
    if sys.platform == "win32":
        return (
            "the current account logs on with its own Windows credentials: check that jobsync "
            "runs as the intended account and names the peer by host name, not IP address"
        )
    if not all(importlib.util.find_spec(module) for module in ("gssapi", "krb5")):
        return (
            "logging on as the current account needs Kerberos, which on Linux needs "
            "pip install 'jobsync[kerberos]'"
        )
    return (
        "logging on as the current account needs a Kerberos ticket for it (kinit, or a "
        "keytab named by KRB5_CLIENT_KTNAME)"
    )


def _who(config: PeerConfig) -> str:
    return f"user {config.username}" if config.username else "the current account"
