"""Writing a small file of jobsync's own on this machine so that a reader never sees half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
