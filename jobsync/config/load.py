"""Finding and loading ``jobsync.toml``: the top-level keys, then each table in turn."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobsync.config.model import (
    DEFAULT_MAX_DELETE_RATIO,
    DEFAULT_PATTERN,
    DEFAULT_TIMEOUT_SECONDS,
    Config,
    PeerConfig,
)
from jobsync.config.reader import Table, local_folder, same_folder, shown
from jobsync.config.sections import (
    parse_active,
    parse_failover,
    parse_fleet_check,
    parse_health,
    parse_peer,
    parse_retention,
    parse_schedule,
    parse_service,
    parse_watch,
)
from jobsync.credentials import KeyringGet, Unseal, keyring_password
from jobsync.errors import ConfigError
from jobsync.jobs_folder import name_key, pattern_problem
from jobsync.node import host_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_ENV = "JOBSYNC_CONFIG"
CONFIG_NAME = "jobsync.toml"
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def find_config_path(explicit: Path | None, *, environ: Mapping[str, str] | None = None) -> Path:
    """Where the configuration is: ``-c``, else ``$JOBSYNC_CONFIG``, else the usual places."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    candidates = [Path.cwd() / CONFIG_NAME]
    if sys.platform == "win32" and env.get("ProgramData"):
        candidates.append(Path(env["ProgramData"]) / "jobsync" / CONFIG_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    places = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"no configuration file: pass -c PATH, set {CONFIG_ENV}, or create one of: {places}"
    )


def load_config(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    keyring_get: KeyringGet = keyring_password,
    unseal: Unseal | None = None,
    secrets: bool = True,
) -> Config:
    """Read and validate the configuration at ``path``.

    ``secrets=False`` reads no password (``jobsync secret set``, which is about to store one).
    """
    env = os.environ if environ is None else environ
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}{_toml_hint(text, exc)}") from None
    reading = _Secrets(keyring_get=keyring_get, unseal=unseal, needed=secrets)
    return _parse(data, path=path, environ=env, secrets=reading)


@dataclass(frozen=True)
class _Secrets:
    """How passwords are read, and whether they are read at all."""

    keyring_get: KeyringGet
    unseal: Unseal | None
    needed: bool


def _toml_hint(text: str, error: Exception) -> str:
    """Advice for the commonest mistake: a Windows path in a double-quoted string."""
    found = _TOML_LINE.search(str(error))
    lines = text.splitlines()
    if found is None or not 0 < int(found.group(1)) <= len(lines):
        return ""
    line = lines[int(found.group(1)) - 1]
    if "\\" in line and '"' in line:
        return (
            "; in double quotes a backslash starts an escape: write Windows paths in single "
            "quotes (TOML literal strings), e.g. path = '\\\\host\\share\\folder'"
        )
    return ""


def _parse(
    data: Mapping[str, Any],
    *,
    path: Path,
    environ: Mapping[str, str],
    secrets: _Secrets,
) -> Config:
    top = Table(data, where=str(path))
    node = _node_name(top)
    source_text = top.required_text("source")
    pattern = top.text("pattern", DEFAULT_PATTERN)
    timeout = top.positive("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    ratio = top.take("max_delete_ratio", float, DEFAULT_MAX_DELETE_RATIO)
    raw_peers = top.take("peers", list, [])
    state_text = top.text("state_dir")
    watch = parse_watch(top.take("watch", dict, {}), path=path)
    active = parse_active(top.take("active", dict), path=path)
    health = parse_health(top.take("health", dict, {}), path=path)
    service = parse_service(top.take("service", dict, {}), path=path)
    schedule = parse_schedule(top.take("schedule", dict, {}), path=path, service=service)
    retention = parse_retention(top.take("retention", dict, {}), path=path)
    failover = parse_failover(top.take("failover", dict), path=path, active=active)
    fleet_check = parse_fleet_check(
        top.take("fleet_check", dict),
        path=path,
        environ=environ,
        keyring_get=secrets.keyring_get,
        unseal=secrets.unseal,
        secrets=secrets.needed,
    )
    top.finish()

    if any(sep in pattern for sep in "/\\"):
        raise top.fail(f"pattern must be a file name glob such as *.jobs, not {shown(pattern)}")
    if problem := pattern_problem(pattern):
        raise top.fail(problem)
    if not (0.0 <= ratio <= 1.0) or math.isnan(ratio):
        raise top.fail("max_delete_ratio must be between 0 and 1")
    source = local_folder(source_text, base=path.parent, fail=lambda m: top.fail(f"source: {m}"))
    state_dir = (
        local_folder(state_text, base=path.parent, fail=lambda m: top.fail(f"state_dir: {m}"))
        if state_text is not None
        else path.parent / "state"
    )
    if not raw_peers:
        raise top.fail("no [[peers]]: name at least one node to copy the jobs to")
    peers = _parse_peers(
        raw_peers, path=path, environ=environ, node=node, source=source, secrets=secrets
    )
    return Config(
        path=path,
        node=node,
        source=source,
        pattern=pattern,
        timeout_seconds=timeout,
        max_delete_ratio=ratio,
        peers=peers,
        state_dir=state_dir,
        watch=watch,
        active=active,
        health=health,
        service=service,
        schedule=schedule,
        retention=retention,
        failover=failover,
        fleet_check=fleet_check,
    )


def _node_name(top: Table) -> str:
    """``node``: the host name unless the file says otherwise, and then knowingly.

    A copied config that names another machine would make two machines one node, so a name
    that is not this machine's needs ``node_differs_from_host = true`` beside it.
    """
    host = host_name()
    named = top.text("node")
    acknowledged = top.take("node_differs_from_host", bool, default=False)
    if named is None:
        if acknowledged:
            raise top.fail("node_differs_from_host is only used with node")
        return host
    if not acknowledged and name_key(named.split(".")[0]) != name_key(host):
        raise top.fail(
            f"node = {shown(named)} is not this machine's host name ({host}): leave node out "
            f"(it defaults to the host name), or, if the other nodes know this machine as "
            f"{named}, add node_differs_from_host = true"
        )
    return named


def _parse_peers(
    raw_peers: list[Any],
    *,
    path: Path,
    environ: Mapping[str, str],
    node: str,
    source: Path,
    secrets: _Secrets,
) -> tuple[PeerConfig, ...]:
    peers: list[PeerConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_peers):
        peer = parse_peer(
            raw,
            index=index,
            path=path,
            environ=environ,
            node=node,
            keyring_get=secrets.keyring_get,
            unseal=secrets.unseal,
            secrets=secrets.needed,
        )
        if name_key(peer.name) in seen:
            raise ConfigError(f"{path}: peers[{index}]: duplicate peer name {shown(peer.name)}")
        seen.add(name_key(peer.name))
        if isinstance(peer.target, Path) and same_folder(peer.target, source):
            raise ConfigError(f"{path}: peer {peer.name}: path is the source folder itself")
        peers.append(peer)
    return tuple(peers)
