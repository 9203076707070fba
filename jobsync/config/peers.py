"""One ``[[peers]]`` entry: where the peer's jobs folder is and how to log on to it.

A UNC path makes an SMB peer; anything else is a local or mounted folder, which takes none of
the SMB keys. A user name needs a password source; without one, the running account logs on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path

from jobsync.config.model import DEFAULT_SMB_PORT, PeerConfig
from jobsync.config.paths import local_folder, parse_unc
from jobsync.config.reader import Table, shown
from jobsync.credentials import KeyringGet, Unseal, resolve_password
from jobsync.errors import ConfigError
from jobsync.names import name_key

SMB_KEYS = (
    "port",
    "username",
    "password_env",
    "password_keyring",
    "password_file",
    "encrypt",
    "share_root",
    "address",
    "admin_share",
)


def parse_peer(
    raw: object,
    *,
    index: int,
    path: Path,
    environ: Mapping[str, str],
    node: str,
    keyring_get: KeyringGet,
    unseal: Unseal | None = None,
    secrets: bool = True,
) -> PeerConfig:
    """Read one ``[[peers]]`` table; errors name the file, the peer and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: peers[{index}] must be a table ([[peers]])")
    name = raw.get("name")
    label = f"peer {name}" if isinstance(name, str) and name.strip() else f"peers[{index}]"
    table = Table(raw, where=f"{path}: {label}")
    if "password" in raw:
        # Never echo the value: it may be a real password.
        raise table.fail(
            "password is not allowed in the config file: leave username out for integrated "
            "login, or name an environment variable with password_env, or a credential store "
            "entry with password_keyring"
        )
    name = table.required_text("name")
    peer_path = table.required_text("path")
    unc = parse_unc(peer_path, fail=table.fail)
    if unc is None:
        smb_only = [key for key in SMB_KEYS if table.has(key)]
        if smb_only:
            raise table.fail(
                f"{', '.join(smb_only)}: only for SMB peers, and path {shown(peer_path)} is a "
                "local folder (an SMB path starts with \\\\host\\share)"
            )
        local = local_folder(peer_path, base=None, fail=table.fail)
        table.finish()
        return PeerConfig(name=name, path=peer_path, target=local)

    share_root = table.take("share_root", bool, default=False)
    if unc.folder and share_root:
        raise table.fail(
            f"share_root = true, but path {shown(peer_path)} names a folder inside the share"
        )
    if not unc.folder and not share_root:
        raise table.fail(
            f"path {shown(peer_path)} stops at the share: name the jobs folder inside it "
            "(\\\\host\\share\\folder), or set share_root = true if the share is the jobs folder"
        )
    port = table.port("port", DEFAULT_SMB_PORT)
    username = table.text("username")
    password_env = table.take("password_env", str)
    password_keyring = table.take("password_keyring", str)
    file_text = table.text("password_file")
    encrypt = table.take("encrypt", bool, default=True)
    address = _address(table)
    admin_share = table.text("admin_share", "C$")
    table.finish()
    password_file = None if file_text is None else (path.parent / file_text)
    if username is not None and password_env is None and password_keyring is None and not file_text:
        raise table.fail(
            "username is set but no password source: add password_env, password_keyring or "
            "password_file, or leave username out to log on as the account jobsync runs as"
        )
    password = resolve_password(
        username=username,
        password_env=password_env,
        password_keyring=password_keyring,
        environ=environ,
        fail=table.fail,
        needed=secrets and name_key(name) != name_key(node),
        keyring_get=keyring_get,
        password_file=password_file,
        unseal=unseal,
    )
    return PeerConfig(
        name=name,
        path=peer_path,
        target=unc,
        port=port,
        username=username,
        password=password,
        password_file=password_file,
        encrypt=bool(encrypt),
        address=address,
        admin_share=admin_share.strip("\\"),
    )


def _address(table: Table) -> str | None:
    """``address``: the node's IP address, which the services name gets when it is that node."""
    text = table.text("address")
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise table.fail(
            f"address must be the node's IP address (such as 10.0.0.12), not {shown(text)}"
        ) from None
