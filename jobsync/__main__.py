"""Allows ``python -m jobsync``."""

from jobsync.cli import main

main()
