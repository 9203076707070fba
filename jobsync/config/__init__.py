"""Loading and validating ``jobsync.toml``, and the ``--config`` option that names it.

Every problem is reported as one :class:`~jobsync.errors.ConfigError` line naming the file, the
key or peer, and what is wrong; nothing is guessed: a value that is empty, zero or incomplete
is refused, not replaced by a default. Secrets are read from the environment or the credential
store, never from the file, and are wrapped so that printing a config never prints a password.

The package: :mod:`.model` (the values), :mod:`.reader` (reading a table, and folder paths),
:mod:`.sections` (``[[peers]]``, ``[failover]`` and the optional tables), :mod:`.load` (the
file). A new table is a dataclass in ``model``, a parser in ``sections``, a line in ``load``.
The option lives here, not in ``load``, so that ``jobsync --help`` loads no more than typer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (else $JOBSYNC_CONFIG, else ./jobsync.toml).",
        dir_okay=False,
    ),
]
