#!/usr/bin/env bash
# Installs jobsync into .venv, starts two throwaway Samba peers on loopback, and pushes a
# jobs folder to them, so a newcomer sees jobsync work. Needs root (smbd runs as root);
# installs Samba with apt-get when it is missing. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh

ensure_samba
ensure_venv
exec .venv/bin/python scripts/demo.py "$@"
