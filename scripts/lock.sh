#!/usr/bin/env bash
# Refreshes the lock files in requirements/ from pyproject.toml with uv (reaches the package
# index). Run it after changing a dependency, commit the result, and every install (CI, the demo,
# the Windows bundle) takes exactly those versions:
#   requirements/linux.txt          constraints for .venv on Linux: jobsync[test,kerberos] on
#                                   Python 3.10 and newer, markers kept
#   requirements/windows-py3XX.txt  what the Windows bundle ships and installs, one file per
#                                   Python version, resolved for 64-bit Windows, with hashes
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh

[ -x .venv/bin/uv ] || ensure_venv test
uv=.venv/bin/uv
# The venv's Python runs the resolver (else uv may download one); targets are named below.
export UV_PYTHON=.venv/bin/python UV_PYTHON_DOWNLOADS=never
"$uv" pip compile pyproject.toml --quiet --universal --python-version 3.10 \
  --extra test --extra kerberos --custom-compile-command "scripts/lock.sh" \
  --output-file requirements/linux.txt
for version in $WINDOWS_PYTHONS; do
  "$uv" pip compile pyproject.toml --quiet --python-platform x86_64-pc-windows-msvc \
    --python-version "$version" --generate-hashes --custom-compile-command "scripts/lock.sh" \
    --output-file "requirements/windows-py${version/./}.txt"
done
echo "requirements/ refreshed; commit it with the change that needed it" >&2
