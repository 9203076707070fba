#!/usr/bin/env bash
# Everything the tests need, then lint, type checks and the whole test suite.
# Installs Debian packages with apt-get when they are missing (Samba, a Samba AD domain
# controller, Chromium, promtool, a C compiler and the Kerberos headers; needs root, as CI has).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh

# What the suite needs from Debian (add an ensure_* call here for anything new).
ensure_samba
ensure_domain_controller
ensure_operator_tools
ensure_kerberos_build
ensure_venv test kerberos

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
