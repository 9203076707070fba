"""NT status codes jobsync meets on SMB, in words, and the errors they become.

Administrators read these in messages and logs, so every status is explained; the code stays
beside the words (``... (0xC000000D)``) because it is what a search finds.

Failures of an SMB peer in jobsync's error tree, mapped by type, explained in words.
smbprotocol's exceptions and socket errors are translated once, here, into the most specific
:class:`~jobsync.errors.PeerError`; an NT status becomes words (:mod:`statuses`), and a refused
logon keeps the authentication library's own reason.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Final

from smbprotocol.exceptions import (
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBLinkRedirectionError,
    SMBOSError,
    SMBResponseException,
    SMBUnsupportedFeature,
)

from jobsync.config.model import PeerConfig, UncPath
from jobsync.errors import (
    PeerAuthError,
    PeerError,
    PeerIOError,
    PeerPathError,
    PeerSecurityError,
    PeerTimeoutError,
    PeerUnreachableError,
)

STATUS_SUCCESS: Final = 0
STATUS_PENDING: Final = 0x00000103
STATUS_NO_MORE_FILES: Final = 0x80000006
STATUS_UNSUCCESSFUL: Final = 0xC0000001
STATUS_NOT_IMPLEMENTED: Final = 0xC0000002
STATUS_INVALID_INFO_CLASS: Final = 0xC0000003
STATUS_INVALID_HANDLE: Final = 0xC0000008
STATUS_INVALID_PARAMETER: Final = 0xC000000D
STATUS_NO_SUCH_FILE: Final = 0xC000000F
STATUS_INVALID_DEVICE_REQUEST: Final = 0xC0000010
STATUS_END_OF_FILE: Final = 0xC0000011
STATUS_MORE_PROCESSING_REQUIRED: Final = 0xC0000016
STATUS_ACCESS_DENIED: Final = 0xC0000022
STATUS_BUFFER_TOO_SMALL: Final = 0xC0000023
STATUS_OBJECT_NAME_INVALID: Final = 0xC0000033
STATUS_OBJECT_NAME_NOT_FOUND: Final = 0xC0000034
STATUS_OBJECT_NAME_COLLISION: Final = 0xC0000035
STATUS_OBJECT_PATH_INVALID: Final = 0xC0000039
STATUS_OBJECT_PATH_NOT_FOUND: Final = 0xC000003A
STATUS_OBJECT_PATH_SYNTAX_BAD: Final = 0xC000003B
STATUS_SHARING_VIOLATION: Final = 0xC0000043
STATUS_QUOTA_EXCEEDED: Final = 0xC0000044
STATUS_FILE_LOCK_CONFLICT: Final = 0xC0000054
STATUS_LOCK_NOT_GRANTED: Final = 0xC0000055
STATUS_DELETE_PENDING: Final = 0xC0000056
STATUS_PRIVILEGE_NOT_HELD: Final = 0xC0000061
STATUS_LOGON_FAILURE: Final = 0xC000006D
STATUS_ACCOUNT_RESTRICTION: Final = 0xC000006E
STATUS_INVALID_LOGON_HOURS: Final = 0xC000006F
STATUS_INVALID_WORKSTATION: Final = 0xC0000070
STATUS_PASSWORD_EXPIRED: Final = 0xC0000071
STATUS_ACCOUNT_DISABLED: Final = 0xC0000072
STATUS_DISK_FULL: Final = 0xC000007F
STATUS_INSUFFICIENT_RESOURCES: Final = 0xC000009A
STATUS_MEDIA_WRITE_PROTECTED: Final = 0xC00000A2
STATUS_FILE_IS_A_DIRECTORY: Final = 0xC00000BA
STATUS_NOT_SUPPORTED: Final = 0xC00000BB
STATUS_NETWORK_NAME_DELETED: Final = 0xC00000C9
STATUS_NETWORK_ACCESS_DENIED: Final = 0xC00000CA
STATUS_BAD_NETWORK_NAME: Final = 0xC00000CC
STATUS_REQUEST_NOT_ACCEPTED: Final = 0xC00000D0
STATUS_NOT_SAME_DEVICE: Final = 0xC00000D4
STATUS_FILE_RENAMED: Final = 0xC00000D5
STATUS_INTERNAL_ERROR: Final = 0xC00000E5
STATUS_DIRECTORY_NOT_EMPTY: Final = 0xC0000101
STATUS_NOT_A_DIRECTORY: Final = 0xC0000103
STATUS_NAME_TOO_LONG: Final = 0xC0000106
STATUS_FILES_OPEN: Final = 0xC0000107
STATUS_CANCELLED: Final = 0xC0000120
STATUS_CANNOT_DELETE: Final = 0xC0000121
STATUS_FILE_DELETED: Final = 0xC0000123
STATUS_FILE_CLOSED: Final = 0xC0000128
STATUS_INVALID_NETWORK_RESPONSE: Final = 0xC00000C3
STATUS_USER_SESSION_DELETED: Final = 0xC0000203
STATUS_NOT_FOUND: Final = 0xC0000225
STATUS_PASSWORD_MUST_CHANGE: Final = 0xC0000224
STATUS_ACCOUNT_LOCKED_OUT: Final = 0xC0000234
STATUS_PATH_NOT_COVERED: Final = 0xC0000257
STATUS_IO_TIMEOUT: Final = 0xC00000B5
STATUS_ACCOUNT_EXPIRED: Final = 0xC0000193
STATUS_DOWNGRADE_DETECTED: Final = 0xC0000388
STATUS_NETWORK_SESSION_EXPIRED: Final = 0xC000035C
STATUS_SMB_BAD_CLUSTER_DIALECT: Final = 0xC05D0001
STATUS_KDC_UNKNOWN_ETYPE: Final = 0xC00002FD
STATUS_TIME_DIFFERENCE_AT_DC: Final = 0xC0000133
STATUS_NO_LOGON_SERVERS: Final = 0xC000005E
STATUS_TRUSTED_RELATIONSHIP_FAILURE: Final = 0xC000018D

STATUS_NOTIFY_CLEANUP: Final = 0x0000010B
STATUS_NOTIFY_ENUM_DIR: Final = 0x0000010C
STATUS_BUFFER_OVERFLOW: Final = 0x80000005
STATUS_INVALID_EA_NAME: Final = 0x80000013
STATUS_EA_LIST_INCONSISTENT: Final = 0x80000014
STATUS_STOPPED_ON_SYMLINK: Final = 0x8000002D
STATUS_INFO_LENGTH_MISMATCH: Final = 0xC0000004
STATUS_EAS_NOT_SUPPORTED: Final = 0xC000004F
STATUS_EA_TOO_LARGE: Final = 0xC0000050
STATUS_NONEXISTENT_EA_ENTRY: Final = 0xC0000051
STATUS_NO_EAS_ON_FILE: Final = 0xC0000052
STATUS_EA_CORRUPT_ERROR: Final = 0xC0000053
STATUS_WRONG_PASSWORD: Final = 0xC000006A
STATUS_NONE_MAPPED: Final = 0xC0000073
STATUS_PIPE_NOT_AVAILABLE: Final = 0xC00000AC
STATUS_PIPE_BUSY: Final = 0xC00000AE
STATUS_PIPE_DISCONNECTED: Final = 0xC00000B0
STATUS_PIPE_CLOSING: Final = 0xC00000B1
STATUS_PIPE_EMPTY: Final = 0xC00000D9
STATUS_PIPE_BROKEN: Final = 0xC000014B
STATUS_FS_DRIVER_REQUIRED: Final = 0xC000019C
STATUS_INSUFF_SERVER_RESOURCES: Final = 0xC0000205
STATUS_DFS_UNAVAILABLE: Final = 0xC000026D
STATUS_NOT_A_REPARSE_POINT: Final = 0xC0000275
STATUS_SERVER_UNAVAILABLE: Final = 0xC0000466

# The session or the share connection is gone; logging on again (and connecting the share
# again) is the remedy, as a Windows client does silently (MS-SMB2 3.2.5.1.4).
SESSION_LOST: Final = frozenset(
    {STATUS_NETWORK_SESSION_EXPIRED, STATUS_USER_SESSION_DELETED, STATUS_NETWORK_NAME_DELETED}
)

_WORDS: Final = {
    STATUS_SUCCESS: "done",
    STATUS_PENDING: "still in progress",
    STATUS_NO_MORE_FILES: "no more files",
    STATUS_UNSUCCESSFUL: "the server could not do it (unspecified failure)",
    STATUS_NOT_IMPLEMENTED: "the server does not implement this request",
    STATUS_INVALID_INFO_CLASS: "the server does not support this kind of information request",
    STATUS_INVALID_HANDLE: "the file handle is no longer valid on the server",
    STATUS_INVALID_PARAMETER: "the server refused a parameter of the request (a size or a "
    "limit it does not accept)",
    STATUS_NO_SUCH_FILE: "no such file",
    STATUS_INVALID_DEVICE_REQUEST: "the server's file system does not support this request",
    STATUS_END_OF_FILE: "end of file",
    STATUS_MORE_PROCESSING_REQUIRED: "the logon needs another step",
    STATUS_ACCESS_DENIED: "access denied",
    STATUS_BUFFER_TOO_SMALL: "the answer did not fit the buffer asked for",
    STATUS_OBJECT_NAME_INVALID: "name not valid on the peer",
    STATUS_OBJECT_NAME_NOT_FOUND: "not found",
    STATUS_OBJECT_NAME_COLLISION: "already exists",
    STATUS_OBJECT_PATH_INVALID: "the path is not valid on the peer",
    STATUS_OBJECT_PATH_NOT_FOUND: "folder not found",
    STATUS_OBJECT_PATH_SYNTAX_BAD: "the path is malformed",
    STATUS_SHARING_VIOLATION: "in use by another program: a sharing violation",
    STATUS_QUOTA_EXCEEDED: "disk quota exceeded",
    STATUS_FILE_LOCK_CONFLICT: "locked by another program",
    STATUS_LOCK_NOT_GRANTED: "locked by another program",
    STATUS_DELETE_PENDING: "being deleted (delete pending)",
    STATUS_PRIVILEGE_NOT_HELD: "the account lacks a privilege this needs",
    STATUS_LOGON_FAILURE: "wrong user name or password",
    STATUS_ACCOUNT_RESTRICTION: "the account may not log on this way (account restriction)",
    STATUS_INVALID_LOGON_HOURS: "the account may not log on at this time",
    STATUS_INVALID_WORKSTATION: "the account may not log on from this computer",
    STATUS_PASSWORD_EXPIRED: "the account's password has expired",
    STATUS_ACCOUNT_DISABLED: "the account is disabled",
    STATUS_DISK_FULL: "disk full",
    STATUS_INSUFFICIENT_RESOURCES: "the server is out of resources",
    STATUS_MEDIA_WRITE_PROTECTED: "the share or disk is read-only",
    STATUS_FILE_IS_A_DIRECTORY: "it is a folder, not a file",
    STATUS_NOT_SUPPORTED: "the server does not support this",
    STATUS_NETWORK_NAME_DELETED: "the server closed the share connection",
    STATUS_NETWORK_ACCESS_DENIED: "access to the share denied",
    STATUS_BAD_NETWORK_NAME: "no such share on the server",
    STATUS_REQUEST_NOT_ACCEPTED: "the server accepts no more connections",
    STATUS_NOT_SAME_DEVICE: "cannot move between volumes",
    STATUS_FILE_RENAMED: "the file was renamed meanwhile",
    STATUS_INTERNAL_ERROR: "the server failed internally",
    STATUS_DIRECTORY_NOT_EMPTY: "the folder is not empty",
    STATUS_NOT_A_DIRECTORY: "a part of the path is a file, not a folder",
    STATUS_NAME_TOO_LONG: "the name is too long for the peer",
    STATUS_FILES_OPEN: "files are still open",
    STATUS_CANCELLED: "cancelled",
    STATUS_CANNOT_DELETE: "cannot be deleted (read-only or in use)",
    STATUS_FILE_DELETED: "the file was deleted meanwhile",
    STATUS_FILE_CLOSED: "the file was closed meanwhile",
    STATUS_INVALID_NETWORK_RESPONSE: "the server gave an answer that is not valid",
    STATUS_USER_SESSION_DELETED: "the server ended the logon session",
    STATUS_NOT_FOUND: "not found",
    STATUS_PASSWORD_MUST_CHANGE: "the account must change its password first",
    STATUS_ACCOUNT_LOCKED_OUT: "the account is locked out",
    STATUS_PATH_NOT_COVERED: "the path is on another server (a DFS referral)",
    STATUS_IO_TIMEOUT: "the server timed out",
    STATUS_ACCOUNT_EXPIRED: "the account has expired",
    STATUS_DOWNGRADE_DETECTED: "the server saw the connection downgraded (a tampered "
    "negotiation, or a proxy in the path)",
    STATUS_NETWORK_SESSION_EXPIRED: "the logon session expired (its Kerberos ticket ended)",
    STATUS_SMB_BAD_CLUSTER_DIALECT: "the server's cluster needs a newer SMB dialect",
    STATUS_KDC_UNKNOWN_ETYPE: "Kerberos: the domain controller does not support the encryption "
    "type asked for",
    STATUS_TIME_DIFFERENCE_AT_DC: "Kerberos: this machine's clock differs too much from the "
    "domain controller's",
    STATUS_NO_LOGON_SERVERS: "no domain controller is available to check the logon",
    STATUS_TRUSTED_RELATIONSHIP_FAILURE: "the server's trust with its domain is broken",
    STATUS_NOTIFY_CLEANUP: "the watch on the folder was closed",
    STATUS_NOTIFY_ENUM_DIR: "too many changes to report one by one",
    STATUS_BUFFER_OVERFLOW: "the answer was longer than the buffer asked for",
    STATUS_INVALID_EA_NAME: "an extended attribute name is not valid",
    STATUS_EA_LIST_INCONSISTENT: "the extended attributes are inconsistent",
    STATUS_STOPPED_ON_SYMLINK: "the path goes through a symbolic link",
    STATUS_INFO_LENGTH_MISMATCH: "the information sent has the wrong length",
    STATUS_EAS_NOT_SUPPORTED: "the file system has no extended attributes",
    STATUS_EA_TOO_LARGE: "the extended attributes are too large",
    STATUS_NONEXISTENT_EA_ENTRY: "no such extended attribute",
    STATUS_NO_EAS_ON_FILE: "the file has no extended attributes",
    STATUS_EA_CORRUPT_ERROR: "the extended attributes are corrupt",
    STATUS_WRONG_PASSWORD: "wrong password",
    STATUS_NONE_MAPPED: "an account name could not be mapped to a security identifier",
    STATUS_PIPE_NOT_AVAILABLE: "the named pipe is not available",
    STATUS_PIPE_BUSY: "the named pipe is busy",
    STATUS_PIPE_DISCONNECTED: "the named pipe was disconnected",
    STATUS_PIPE_CLOSING: "the named pipe is closing",
    STATUS_PIPE_EMPTY: "the named pipe is empty",
    STATUS_PIPE_BROKEN: "the named pipe is broken",
    STATUS_FS_DRIVER_REQUIRED: "the path needs a file system driver the server lacks",
    STATUS_INSUFF_SERVER_RESOURCES: "the server is out of resources",
    STATUS_DFS_UNAVAILABLE: "the DFS namespace is not available",
    STATUS_NOT_A_REPARSE_POINT: "not a reparse point",
    STATUS_SERVER_UNAVAILABLE: "the file server is not available (a cluster moving its role?)",
}


def describe(status: int) -> str:
    """An NT status in words, with its code: ``access denied (0xC0000022)``."""
    words = _WORDS.get(status)
    code = f"0x{status:08X}"
    if words is None:
        return f"refused with NT status {code}, which jobsync has no words for"
    return f"{words} ({code})"


def known_statuses() -> frozenset[int]:
    """Every status :func:`describe` explains in words."""
    return frozenset(_WORDS)


_LOGON_STATUSES = frozenset(
    {
        STATUS_LOGON_FAILURE,
        STATUS_WRONG_PASSWORD,
        STATUS_ACCOUNT_RESTRICTION,
        STATUS_INVALID_LOGON_HOURS,
        STATUS_INVALID_WORKSTATION,
        STATUS_PASSWORD_EXPIRED,
        STATUS_PASSWORD_MUST_CHANGE,
        STATUS_ACCOUNT_DISABLED,
        STATUS_ACCOUNT_EXPIRED,
        STATUS_ACCOUNT_LOCKED_OUT,
        STATUS_TIME_DIFFERENCE_AT_DC,
        STATUS_NO_LOGON_SERVERS,
        STATUS_TRUSTED_RELATIONSHIP_FAILURE,
        STATUS_KDC_UNKNOWN_ETYPE,
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
        return PeerIOError(f"peer {peer}: refused while {doing}: {describe(exc.ntstatus)}")
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
    peer, words = config.name, describe(status)
    if status in _LOGON_STATUSES:
        return _logon_refused(config, words)
    if status == STATUS_BAD_NETWORK_NAME:
        return PeerPathError(
            f"peer {peer}: share \\\\{unc.host}\\{unc.share} does not exist (0x{status:08X})"
        )
    if status in (STATUS_ACCESS_DENIED, STATUS_NETWORK_ACCESS_DENIED):
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
