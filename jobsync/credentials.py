"""Where a peer's password comes from. Never from the config file.

In order: no ``username`` means integrated login as the running account (Kerberos or NTLM
through SSPI on Windows; a gMSA service account needs no secret at all); ``password_env`` names
an environment variable; ``password_keyring`` names a service in the system credential store
(the Windows Credential Manager through ``keyring``, read as the account jobsync runs as);
``password_file`` names a file ``jobsync secret set`` sealed with DPAPI on this machine, which
is how a gMSA, NetworkService or LocalSystem service reaches a peer outside the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
    import keyring  # noqa: PLC0415 - only configs that use it pay for the import
    from keyring.errors import KeyringError  # noqa: PLC0415

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
    from jobsync.windows.dpapi import entropy, platform_seal  # noqa: PLC0415 - Windows mostly

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
