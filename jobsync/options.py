"""Command-line options shared by the modules that define commands."""

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
