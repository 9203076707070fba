#!/usr/bin/env bash
# The benchmark: jobsync against Samba's own smbclient on throwaway Samba peers on loopback.
# Installs what it needs (Samba with apt-get when missing, needs root), then runs
# benchmarks/bench.py; extra arguments go to it (see --help). Takes about ten minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh

ensure_samba
ensure_venv
exec .venv/bin/python benchmarks/bench.py "$@"
