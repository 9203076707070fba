r"""``jobsync secret set PEER``: a peer's password, sealed for this machine, readable by few.

For a peer outside the domain (a DR share, a workgroup server) the service needs a user name
and a password. An environment variable would put it in the service's definition, and a gMSA,
NetworkService or LocalSystem cannot have a Credential Manager entry an administrator could
fill. So the administrator types it once; it is sealed with DPAPI for this machine
(:mod:`jobsync.windows.dpapi`) and written to the peer's ``password_file``, whose access list
then holds SYSTEM and Administrators (full control) and the service's and the task's accounts
(read) alone.
"""

from __future__ import annotations

from pathlib import Path

from jobsync.config import Config, PeerConfig
from jobsync.errors import ConfigError
from jobsync.files import replace_atomically
from jobsync.names import name_key
from jobsync.windows import LOCAL_SYSTEM, acl_name
from jobsync.windows.acl import ADMINISTRATORS, SYSTEM
from jobsync.windows.dpapi import Seal, entropy
from jobsync.windows.runner import Tools


def secret_peer(config: Config, name: str) -> PeerConfig:
    """The peer whose password is to be stored: it must name a user and a password_file."""
    peer = next((p for p in config.peers if name_key(p.name) == name_key(name)), None)
    if peer is None:
        known = ", ".join(p.name for p in config.peers)
        raise ConfigError(f"{config.path}: no peer {name} (peers: {known})")
    if peer.username is None or peer.password_file is None:
        raise ConfigError(
            f"{config.path}: peer {peer.name} needs username and password_file (where the "
            "sealed password goes, e.g. password_file = 'secrets\\\\node3.dpapi') first"
        )
    return peer


def store_secret(
    config: Config, peer: PeerConfig, password: str, tools: Tools, *, seal: Seal
) -> Path:
    """Seal ``password`` for ``peer``'s user into its password_file; only a few may read it."""
    if not password:
        raise ConfigError("an empty password was typed: nothing was stored")
    if peer.username is None or peer.password_file is None:
        raise ConfigError(f"peer {peer.name} needs username and password_file")
    path = peer.password_file
    replace_atomically(path, seal(password.encode("utf-8"), entropy(peer.username)), mode=0o600)
    accounts = dict.fromkeys((config.service.account, config.schedule.account))
    grants = [f"{SYSTEM}:F", f"{ADMINISTRATORS}:F"]
    grants += [f"{acl_name(a)}:R" for a in accounts if a and a != LOCAL_SYSTEM]  # (is SYSTEM)
    tools.check(["icacls.exe", str(path), "/inheritance:r", "/grant:r", *grants])
    readers = ", ".join(a for a in (config.service.account, config.schedule.account) if a)
    tools.say(
        f"the password of {peer.username} for {peer.name} is sealed in {path}; SYSTEM, "
        f"Administrators{' and ' + readers if readers else ''} may read it"
    )
    return path
