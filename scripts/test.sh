#!/usr/bin/env bash
# Everything the tests need, then lint, type checks and the whole test suite.
# Installs Samba (a domain controller too), Kerberos, Chromium and promtool with apt-get when
# missing (needs root, as CI has).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh

ensure_samba
ensure_kerberos
ensure_operator_tools
ensure_venv test,kerberos

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
