"""A second SMB client that holds a file on a test peer open, for tests; run as a process.

It logs on with smbprotocol, opens one file the way another program on a real site would
(a lease or a batch oplock, as Office, Explorer or a backup agent take them; or no sharing at
all), prints ``held`` and then stops itself with SIGSTOP: like a laptop that went to sleep, it
keeps its connection but never answers the server's break. The test kills it to let go.

    cd tests && JOBSYNC_HOLDER_PASSWORD=... python -m support.holder PORT USER SHARE PATH MODE

MODE is ``lease`` (read, write and handle caching), ``batch`` (a batch oplock) or
``exclusive`` (no oplock, no sharing: every other open gets a sharing violation).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from support.polling import poll_until

HOST = "127.0.0.1"
TESTS = Path(__file__).resolve().parents[1]  # where ``support`` is a package to run
PASSWORD_ENV = "JOBSYNC_HOLDER_PASSWORD"  # noqa: S105 - the name of a variable
_MODES = ("lease", "batch", "exclusive")
_HELD_TIMEOUT = 20.0


def _hold(port: int, user: str, share: str, path: str, mode: str) -> None:
    # Imported here: the test process only starts this script, it never imports smbprotocol
    # through it.
    from smbprotocol.connection import Connection
    from smbprotocol.create_contexts import (
        CreateContextName,
        LeaseState,
        SMB2CreateContextRequest,
        SMB2CreateRequestLease,
    )
    from smbprotocol.open import (
        CreateDisposition,
        CreateOptions,
        FilePipePrinterAccessMask,
        ImpersonationLevel,
        Open,
        RequestedOplockLevel,
        ShareAccess,
    )
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    conn = Connection(uuid.uuid4(), HOST, port, require_signing=True)
    conn.connect(timeout=10)
    session = Session(conn, username=user, password=os.environ[PASSWORD_ENV])
    session.connect()
    tree = TreeConnect(session, f"\\\\{HOST}\\{share}")
    tree.connect()
    contexts = None
    oplock = RequestedOplockLevel.SMB2_OPLOCK_LEVEL_NONE
    share_access = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
    share_access |= ShareAccess.FILE_SHARE_DELETE
    if mode == "lease":
        lease = SMB2CreateRequestLease()
        lease["lease_key"] = uuid.uuid4().bytes
        lease["lease_state"] = (
            LeaseState.SMB2_LEASE_READ_CACHING
            | LeaseState.SMB2_LEASE_WRITE_CACHING
            | LeaseState.SMB2_LEASE_HANDLE_CACHING
        )
        context = SMB2CreateContextRequest()
        context["buffer_name"] = CreateContextName.SMB2_CREATE_REQUEST_LEASE
        context["buffer_data"] = lease
        contexts = [context]
        oplock = RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE
    elif mode == "batch":
        oplock = RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH
    else:
        share_access = 0
    handle = Open(tree, path)
    handle.create(
        ImpersonationLevel.Impersonation,
        FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
        0,
        share_access,
        CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
        create_contexts=contexts,
        oplock_level=oplock,
    )
    granted = handle.oplock_level
    if mode != "exclusive" and granted != oplock:
        sys.exit(f"asked for {mode} but the server granted oplock level {granted:#x}")
    print("held", flush=True)  # noqa: T201 - the parent waits for this line
    # Go to sleep with the connection open: nothing reads it, nothing answers a break.
    os.kill(os.getpid(), signal.SIGSTOP)


@dataclass
class Holder:
    """A running holder process; :meth:`release` kills it, which closes its connection."""

    process: subprocess.Popen[str]

    def release(self) -> None:
        """Kill the holder (its connection closes, the server lets go of the file)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def hold(port: int, user: str, password: str, share: str, path: str, mode: str) -> Holder:
    """Start a holder and return once it holds ``path`` and has gone to sleep."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}")
    process = subprocess.Popen(
        [sys.executable, "-m", "support.holder", str(port), user, share, path, mode],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, PASSWORD_ENV: password},
    )
    holder = Holder(process)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "held":
        holder.release()
        error = process.stderr.read() if process.stderr else ""
        raise RuntimeError(f"the holder could not open {path}: {line} {error.strip()[-800:]}")
    # Stopped ("T"): from now on it answers nothing, a break included.
    if not poll_until(lambda: _state(process.pid) == "T", timeout=_HELD_TIMEOUT):
        holder.release()
        raise RuntimeError("the holder did not go to sleep")
    return holder


def _state(pid: int) -> str:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rfind(")") + 2 :].split()[0]


if __name__ == "__main__":
    port_text, user_name, share_name, file_path, hold_mode = sys.argv[1:6]
    _hold(int(port_text), user_name, share_name, file_path, hold_mode)
