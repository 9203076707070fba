"""Run jobsync as it runs on one machine of a test fleet: ``python as_machine.py FILE ARGS...``.

Every node of a test fleet runs on this one host, so they all carry the same interface
addresses; a real site's nodes do not. ``FILE`` holds the addresses this node's machine
carries, one per line, read at each role check: a test moves the services name's address to
another node by rewriting two of these files, as a DNS change or a hosts-file edit would.
Everything else (the config, the locks, SMB to the peers) is jobsync as installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jobsync.role


def _machine_addresses() -> set[str]:
    return set(Path(sys.argv[1]).read_text(encoding="ascii").split())


if __name__ == "__main__":
    jobsync.role.local_addresses = _machine_addresses
    from jobsync.__main__ import main

    main(sys.argv[2:])
