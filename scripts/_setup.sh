# Shared by demo.sh, test.sh, bench.sh, bundle.sh and lock.sh: make sure what they need exists.
# Sourced, not run. Installs Debian packages with apt-get only when something is missing, and
# jobsync into .venv with the versions pinned in requirements/linux.txt.
#
# One function per need (ensure_*); a script calls those it needs. To need another Debian
# package, add an ensure_* function built on ensure_packages and call it from the script.

WINDOWS_PYTHONS="3.10 3.11 3.12 3.13" # the Python versions the Windows bundle serves

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "jobsync: missing $*; run as root or: sudo apt-get install -y $*" >&2
    exit 1
  fi
  echo "installing $* with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold dpkg's lock: wait for it rather than fail.
  local wait=(-o DPkg::Lock::Timeout=600)
  local try
  for try in 1 2 3; do
    if apt-get "${wait[@]}" update -qq >/dev/null &&
      apt-get "${wait[@]}" install -y -qq --no-install-recommends "$@" >/dev/null; then
      return 0
    fi
    echo "apt-get failed (try $try of 3); retrying in 20 s ..." >&2
    sleep 20
  done
  echo "jobsync: could not install $* with apt-get" >&2
  exit 1
}

ensure_packages() {
  # Arguments: COMMAND=PACKAGE pairs; installs each PACKAGE whose COMMAND is missing (a
  # COMMAND with a slash is a path that must exist).
  local missing=() pair command package
  for pair in "$@"; do
    command=${pair%%=*}
    package=${pair#*=}
    if [[ $command == */* ]]; then
      [ -e "$command" ] && continue
    elif command -v "$command" >/dev/null 2>&1; then
      continue
    fi
    [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

ensure_debs() {
  # Installs each Debian PACKAGE not installed: for packages that add no command of their own
  # (libraries, modules), or whose command another package also provides.
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

ensure_samba() {
  if [ -x /usr/sbin/smbd ]; then
    ensure_packages smbclient=smbclient
  else
    ensure_packages smbd=samba smbclient=smbclient
  fi
  # acl_xattr and the other VFS modules the tests give some peers, as Windows-like servers
  ensure_debs samba-vfs-modules
}

ensure_operator_tools() {
  # Debian's chromium (the status page's browser test) and prometheus (its promtool tests the
  # alert rules); neither daemon is started.
  ensure_packages chromium=chromium promtool=prometheus
}

ensure_domain_controller() {
  # The Kerberos tests' throwaway Samba AD domain controller, and kinit for its tickets.
  # The samba command comes with the file server's package too, so the DC's own parts are
  # checked by package: without samba-dsdb-modules, provisioning fails ("Module
  # [samba_secrets] not found").
  ensure_packages kinit=krb5-user wbinfo=winbind
  ensure_debs samba-dsdb-modules samba-ad-provision
}

ensure_kerberos_build() {
  # gssapi and krb5 (the kerberos extra) are built from source on Linux: they need a C
  # compiler, MIT Kerberos' headers and krb5-config, and the headers of the venv's Python.
  ensure_packages gcc=gcc krb5-config=libkrb5-dev
  local python=${PYTHON:-python3}
  if ! "$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    apt_install python3-dev
  fi
}

ensure_python() {
  local python=${PYTHON:-python3}
  if ! command -v "$python" >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
}

ensure_venv() {
  # Arguments: the extras to install (none, or e.g. test kerberos), pinned by the lock.
  local python=${PYTHON:-python3}
  ensure_python
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv >/dev/null 2>&1; then
      rm -rf .venv
      apt_install python3-venv
      "$python" -m venv .venv
    fi
  fi
  local spec=.
  if [ $# -gt 0 ]; then
    spec=".[$(
      IFS=,
      echo "$*"
    )]"
  fi
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install --disable-pip-version-check -q \
    --constraint requirements/linux.txt --editable "$spec" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    rm -f "$log"
    echo "jobsync: installing $spec into .venv failed: pip's error is above" >&2
    exit 1
  fi
  rm -f "$log"
  # From outside the checkout: inside it, "import jobsync" finds the source even when the
  # install failed.
  local venv_python=$PWD/.venv/bin/python
  if ! (cd / && "$venv_python" -c "import jobsync") >&2; then
    echo "jobsync: .venv cannot import jobsync although pip succeeded" >&2
    exit 1
  fi
}
