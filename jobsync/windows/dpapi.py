"""DPAPI, machine scope: a password sealed so that only this machine can open it.

``jobsync secret set`` seals a peer's password with ``CryptProtectData`` (machine scope, so the
service's account can open it whatever it is: a gMSA, NetworkService or LocalSystem, none of
which can hold a password of its own in a vault an administrator can fill) and writes it to a
file only SYSTEM, Administrators and the service's and task's accounts may read. A copy of the
file taken elsewhere (a backup) opens nowhere else. The user name is mixed in as entropy: a
file sealed for one account does not open as another's password.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

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
    import ctypes  # noqa: PLC0415
    from ctypes import wintypes  # noqa: PLC0415

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
