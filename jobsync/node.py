"""The node's own things: the machine it is, its files written whole, its work lock.

Which machine a node name stands for: a per-install identity that cannot be copied by mistake.
A node's name is only a label in ``jobsync.toml``; two machines given the same file would both
be "node1", and their claims could not be told apart. So each installation makes one random
``install`` id, once, in its state folder (``install-id``, never copied with the config), and
records it with the host name:

* in its own jobs folder, ``.jobsync/node.json``: which node, host and install this folder
  belongs to, with the machine's addresses (a push lists ``.jobsync/`` anyway, so the services
  node reads it from every peer for the price of one small read when it changes);
* beside the epoch: in the node's claim (``.jobsync/epoch.json``) and, as ``owner_install``
  and ``owner_host``, in every manifest the owner writes.

Wherever two records name the same node with different installs, both machines refuse to write
(:func:`clash`), naming the two hosts.

Writing a small file of jobsync's own on this machine so that a reader never sees half of it.

One jobsync at work per node: the agent and the scheduled push never write at the same time.
A file lock in the state folder (``jobsync.lock``), taken through ``filelock``: the operating
system releases it when its holder dies, so a killed process never leaves a stale lock. The
agent holds it for as long as it runs; ``push``, ``reconcile --apply`` and ``takeover`` take it
for their run. A second comer waits briefly, then says who is at work.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from jobsync import __version__
from jobsync.errors import ConfigError
from jobsync.jobs_folder import STATE_DIR, name_key

if TYPE_CHECKING:
    from jobsync.config.model import Config


def replace_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to a temp file beside ``path``, flush it to disk, and rename it over ``path``.

    A reader sees the old content or the new, never a mix; ``mode`` sets the permissions the
    file ends with (otherwise those ``mkstemp`` gives: the owner's only).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            Path(temp).chmod(mode)
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
        raise


NODE_FILE = f"{STATE_DIR}/node.json"
INSTALL_FILE = "install-id"


@dataclass(frozen=True)
class Identity:
    """One installation of jobsync: the node name it goes by, its host, its install id."""

    node: str
    host: str
    install: str
    addresses: tuple[str, ...] = field(default=(), compare=False)
    version: str = field(default="", compare=False)  # jobsync's version there ("": before 0.4)


def account_name() -> str:
    """The account this process runs as, as Windows names it: DOMAIN, backslash, user."""
    domain = os.environ.get("USERDOMAIN")
    user = getpass.getuser()
    return f"{domain}\\{user}" if domain else user


def host_name() -> str:
    """The short host name of this machine, as Windows shows it (``COMPUTERNAME``)."""
    return socket.gethostname().split(".")[0]


def install_id(state_dir: Path, *, folder: Path, node: str, host: str) -> str:
    """The id of this installation: read from ``state_dir``, else made there once.

    A reinstall that emptied the state folder takes the id back from its own jobs folder's
    ``node.json`` when that names this node on this host, so it is not taken for another
    machine.
    """
    path = state_dir / INSTALL_FILE
    try:
        return _valid(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        pass
    recorded = read_folder_identity(folder)
    mine = (
        recorded is not None
        and name_key(recorded.node) == name_key(node)
        and recorded.host.casefold() == host.casefold()
    )
    import uuid

    made = uuid.uuid4().hex
    if mine and recorded is not None:
        with contextlib.suppress(ValueError):
            made = _valid(recorded.install)
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, one writes the id and both read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return _valid(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(made + "\n")
    return made


def local_identity(config: Config, *, addresses: tuple[str, ...] = ()) -> Identity:
    """Who this installation is, by the config's ``node``, this host and its install id."""
    host = host_name()
    try:
        install = install_id(config.state_dir, folder=config.source, node=config.node, host=host)
    except OSError as exc:
        raise ConfigError(
            f"cannot record this installation's id in {config.state_dir}: {exc.strerror or exc}"
        ) from exc
    return Identity(config.node, host, install, addresses)


def published_addresses(config: Config) -> tuple[str, ...]:
    """The addresses ``node.json`` shows: only ``mode = "dns"`` needs them (see role.py)."""
    if config.active.mode != "dns":
        return ()
    from jobsync.role import local_addresses

    return tuple(sorted(local_addresses()))


def _valid(text: str) -> str:
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):  # noqa: PLR2004 - uuid4().hex
        raise ValueError(text)
    return text


def identity_to_bytes(identity: Identity) -> bytes:
    """``node.json`` as written."""
    document = {
        "node": identity.node,
        "host": identity.host,
        "install": identity.install,
        "addresses": sorted(identity.addresses),
        "version": __version__,  # of the jobsync that writes it: the node itself
    }
    return json.dumps(document, sort_keys=True).encode("utf-8")


def identity_from_bytes(data: bytes) -> Identity | None:
    """A ``node.json``; ``None`` when it is not one (it is then ignored, never trusted)."""
    try:
        doc = json.loads(data.decode("utf-8"))
        node, host, install = doc["node"], doc["host"], doc["install"]
        addresses = doc.get("addresses", [])
        version = doc.get("version", "")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    texts = (node, host, install)
    if not all(isinstance(t, str) and t for t in texts) or not isinstance(addresses, list):
        return None
    kept = tuple(a for a in addresses if isinstance(a, str))
    return Identity(node, host, install, kept, version if isinstance(version, str) else "")


def read_folder_identity(folder: Path) -> Identity | None:
    """The identity recorded in a local jobs folder, if any."""
    try:
        return identity_from_bytes((folder / NODE_FILE).read_bytes())
    except OSError:
        return None


def publish(folder: Path, identity: Identity) -> str | None:
    """Record ``identity`` in the node's own jobs folder, unless it is there already.

    Another machine's record of the same name is left where it is, and the clash returned.
    """
    data = identity_to_bytes(identity)
    try:
        old = (folder / NODE_FILE).read_bytes()
    except OSError:
        old = None
    if old == data:
        return None
    if old is not None and (
        problem := clash(
            identity, identity_from_bytes(old), where="by node.json in its jobs folder"
        )
    ):
        return problem
    _state_dir_like(folder)
    replace_atomically(folder / NODE_FILE, data, mode=0o644)
    return None


def _state_dir_like(folder: Path) -> None:
    """Make ``.jobsync`` as its jobs folder is, so the peers that write there still can.

    On Windows a new folder inherits the jobs folder's access list by itself; on POSIX it
    takes the folder's mode, and its owner when jobsync may give it (running as root).
    """
    state = folder / STATE_DIR
    if state.is_dir():
        return
    state.mkdir(exist_ok=True)
    if os.name != "posix":
        return
    st = folder.stat()
    state.chmod(stat.S_IMODE(st.st_mode))
    with contextlib.suppress(PermissionError):
        os.chown(state, st.st_uid, st.st_gid)


def clash(mine: Identity, other: Identity | None, *, where: str) -> str | None:
    """Why ``mine`` must not write, when ``other`` (found ``where``) is the same name elsewhere.

    Two records clash when they name the same node (case-insensitively) with different
    install ids: two machines were given one node name.
    """
    if other is None or not other.install or name_key(other.node) != name_key(mine.node):
        return None
    if other.install == mine.install:
        return None
    return (
        f"two machines call themselves {mine.node}: {mine.host} (this one) and {other.host} "
        f"({where}); nothing was changed: give each node its own name (leave node out of "
        "jobsync.toml: it defaults to the host name) on one of them"
    )


LOCK_FILE = "jobsync.lock"
HOLDER_FILE = "jobsync.lock.holder"
DEFAULT_WAIT_SECONDS = 10.0


class WorkLock:
    """The node-wide lock, with a note of who holds it."""

    def __init__(self, state_dir: Path, *, who: str) -> None:
        """Prepare the lock in ``state_dir`` for ``who`` (for example "jobsync push")."""
        self._dir = state_dir
        self._who = who
        self._lock = FileLock(str(state_dir / LOCK_FILE))

    def acquire(self, *, wait: float | None = None, stop: threading.Event | None = None) -> bool:
        """Take the lock within ``wait`` seconds (``stop`` ends the wait early); True if taken."""
        self._dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + (DEFAULT_WAIT_SECONDS if wait is None else wait)
        while True:
            try:
                self._lock.acquire(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            except Timeout:
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    return False
                continue
            self._note_holder()
            return True

    def release(self) -> None:
        """Give the lock back."""
        if self._lock.is_locked:
            self._lock.release()

    def holder(self) -> str:
        """Who holds the lock, as well as it is known."""
        try:
            note = json.loads((self._dir / HOLDER_FILE).read_text(encoding="utf-8"))
            return f"{note['who']} (pid {note['pid']}, since {note['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another jobsync process"

    def _note_holder(self) -> None:
        note = {
            "who": self._who,
            "pid": os.getpid(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        temp = self._dir / f".{HOLDER_FILE}.{os.getpid()}"
        temp.write_text(json.dumps(note), encoding="utf-8")
        temp.replace(self._dir / HOLDER_FILE)
