#!/usr/bin/env bash
# Builds the Windows bundle, dist/jobsync-<version>-windows.zip: the jobsync wheel and every
# dependency as wheels for 64-bit CPython 3.10 to 3.13 on Windows (the versions pinned in
# requirements/windows-py3XX.txt), install.ps1, the docs and the example config. Reaches only
# the package index. Options (see scripts/bundle.py --help):
#   --out DIR                          where the zip goes (default: dist)
#   --winsw FILE --winsw-sha256 HASH   also ship WinSW, checked against its release's SHA-256
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh

[ -x .venv/bin/uv ] || ensure_venv test
exec .venv/bin/python scripts/bundle.py "$@"
