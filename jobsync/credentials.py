"""Where a peer's password comes from. Never from the config file.

In order: no ``username`` means integrated login as the running account (Kerberos or NTLM
through SSPI on Windows; a gMSA service account needs no secret at all); ``password_env`` names
an environment variable; ``password_keyring`` names a service in the system credential store
(the Windows Credential Manager through ``keyring``, read as the account jobsync runs as).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Fail = Callable[[str], Exception]
KeyringGet = Callable[[str, str], "str | None"]


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
) -> Secret | None:
    """The password for a peer, or ``None`` for integrated login.

    ``needed`` is False for the node's own entry, which is never contacted: a secret that is
    missing there is not an error.
    """
    if password_env is not None and password_keyring is not None:
        raise fail("password_env and password_keyring are two sources for one password: keep one")
    source = password_env if password_env is not None else password_keyring
    if source is None:
        return None
    if not source.strip():
        raise fail("password_env and password_keyring must not be empty")
    if username is None:
        raise fail("a password source is set but username is not (no username: integrated login)")
    if password_env is not None:
        return _from_environment(password_env, environ, fail=fail, needed=needed)
    return _from_keyring(source, username, keyring_get, fail=fail, needed=needed)


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
