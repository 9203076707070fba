"""Where a peer's password comes from. Never from the config file.

In order: no ``username`` means integrated login as the running account (Kerberos or NTLM
through SSPI on Windows; a gMSA service account needs no secret at all); ``password_env`` names
an environment variable; ``password_keyring`` names a service in the system credential store
(the Windows Credential Manager through ``keyring``, read as the account jobsync runs as);
``password_file`` names a file ``jobsync secret set`` sealed with DPAPI on this machine, which
is how a gMSA, NetworkService or LocalSystem service reaches a peer outside the domain.

DPAPI, machine scope: a password sealed so that only this machine can open it.
``jobsync secret set`` seals a peer's password with ``CryptProtectData`` (machine scope, so the
service's account can open it whatever it is: a gMSA, NetworkService or LocalSystem, none of
which can hold a password of its own in a vault an administrator can fill) and writes it to a
file only SYSTEM, Administrators and the service's and task's accounts may read. A copy of the
file taken elsewhere (a backup) opens nowhere else. The user name is mixed in as entropy: a
file sealed for one account does not open as another's password.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

Seal = Callable[[bytes, bytes], bytes]  # (data, entropy) -> sealed, or back

_LOCAL_MACHINE = 0x4  # CRYPTPROTECT_LOCAL_MACHINE
_UI_FORBIDDEN = 0x1  # CRYPTPROTECT_UI_FORBIDDEN: a service has no desktop to prompt on


def entropy(username: str) -> bytes:
    """What binds a sealed password to the account it is for."""
    return f"jobsync:{username.casefold()}".encode()


def platform_seal() -> tuple[Seal, Seal] | None:
    """(protect, unprotect) through the Windows API; None where there is no DPAPI."""
    if sys.platform != "win32":
        return None
    return _protect, _unprotect


def _call(name: str, data: bytes, extra: bytes) -> bytes:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    class Blob(ctypes.Structure):
        _fields_ = (("size", wintypes.DWORD), ("data", ctypes.POINTER(ctypes.c_char)))

    def blob(raw: bytes) -> Blob:
        buffer = ctypes.create_string_buffer(raw, len(raw))
        return Blob(len(raw), ctypes.cast(buffer, ctypes.POINTER(ctypes.c_char)))

    crypt32 = ctypes.WinDLL("crypt32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined,unused-ignore]
    source, salt, out = blob(data), blob(extra), Blob()
    flags = _UI_FORBIDDEN | (_LOCAL_MACHINE if name == "CryptProtectData" else 0)
    # Both take (in, description, entropy, reserved, prompt, flags, out); the description
    # out-parameter of CryptUnprotectData is not wanted (None).
    function = getattr(crypt32, name)
    arguments = (ctypes.byref(source), None, ctypes.byref(salt), None, None, flags)
    done = function(*arguments, ctypes.byref(out))
    if not done:
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
    try:
        return ctypes.string_at(out.data, out.size)
    finally:
        kernel32.LocalFree(out.data)


def _protect(data: bytes, extra: bytes) -> bytes:  # pragma: no cover - Windows only
    return _call("CryptProtectData", data, extra)


def _unprotect(sealed: bytes, extra: bytes) -> bytes:  # pragma: no cover - Windows only
    return _call("CryptUnprotectData", sealed, extra)


Fail = Callable[[str], Exception]
KeyringGet = Callable[[str, str], "str | None"]
Unseal = Callable[[bytes, bytes], bytes]  # (sealed, entropy) -> the password's bytes


@dataclass(frozen=True)
class Secret:
    """A password that never shows itself in ``repr``, ``str`` or a log line."""

    value: str

    def __repr__(self) -> str:
        """Hide the value."""
        return "Secret('***')"

    __str__ = __repr__


def keyring_password(service: str, username: str) -> str | None:
    """Read a password from the system credential store."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(service, username)
    except KeyringError as exc:
        raise LookupError(f"the credential store cannot be read: {exc}") from None


def resolve_password(
    *,
    username: str | None,
    password_env: str | None,
    password_keyring: str | None,
    environ: Mapping[str, str],
    fail: Fail,
    needed: bool = True,
    keyring_get: KeyringGet = keyring_password,
    password_file: Path | None = None,
    unseal: Unseal | None = None,
) -> Secret | None:
    """The password for a peer, or ``None`` for integrated login.

    ``needed`` is False for the node's own entry, which is never contacted: a secret that is
    missing there is not an error. ``unseal`` opens a ``password_file`` (default: DPAPI).
    """
    given = [s for s in (password_env, password_keyring, password_file) if s is not None]
    if len(given) > 1:
        raise fail(
            "password_env, password_keyring and password_file are each a source for one "
            "password: keep one"
        )
    if not given:
        return None
    if isinstance(given[0], str) and not given[0].strip():
        raise fail("password_env and password_keyring must not be empty")
    if username is None:
        raise fail("a password source is set but username is not (no username: integrated login)")
    if password_env is not None:
        return _from_environment(password_env, environ, fail=fail, needed=needed)
    if password_file is not None:
        return _from_file(password_file, username, unseal, fail=fail, needed=needed)
    return _from_keyring(str(password_keyring), username, keyring_get, fail=fail, needed=needed)


def _from_file(
    path: Path, username: str, unseal: Unseal | None, *, fail: Fail, needed: bool
) -> Secret | None:
    try:
        sealed = path.read_bytes()
    except FileNotFoundError:
        if not needed:
            return None
        raise fail(
            f"password_file {path} does not exist: store the password with jobsync secret set "
            "PEER, as Administrator"
        ) from None
    except OSError as exc:
        raise fail(
            f"password_file {path}: cannot read it as this account: {exc.strerror}"
        ) from None
    if unseal is None:
        seal = platform_seal()
        if seal is None:
            if not needed:
                return None
            raise fail("password_file needs Windows: the file is sealed with DPAPI")
        unseal = seal[1]
    try:
        return Secret(unseal(sealed, entropy(username)).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        if not needed:
            return None
        raise fail(
            f"password_file {path} does not open on this machine for {username} (sealed on "
            "another machine, for another user, or damaged): store it again with jobsync "
            "secret set PEER"
        ) from None


def _from_environment(
    name: str, environ: Mapping[str, str], *, fail: Fail, needed: bool
) -> Secret | None:
    if name in environ:
        return Secret(environ[name])
    if needed:
        raise fail(f"password_env names {name}, which is not set")
    return None


def _from_keyring(
    service: str, username: str, keyring_get: KeyringGet, *, fail: Fail, needed: bool
) -> Secret | None:
    try:
        value = keyring_get(service, username)
    except LookupError as exc:
        if needed:
            raise fail(f"password_keyring {service}: {exc}") from None
        return None
    if value is None and needed:
        raise fail(
            f"password_keyring: no password stored for service {service!r} and user "
            f"{username!r} (store it as the account jobsync runs as)"
        )
    return None if value is None else Secret(value)
