# Shared by demo.sh, test.sh and bench.sh: make sure Samba and a virtual environment exist.
# Sourced, not run. Installs Debian packages with apt-get only when something is missing.

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "jobsync: missing $*; run as root or: sudo apt-get install -y $*" >&2
    exit 1
  fi
  echo "installing $* with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_samba() {
  local missing=()
  [ -x /usr/sbin/smbd ] || command -v smbd >/dev/null 2>&1 || missing+=(samba)
  command -v smbclient >/dev/null 2>&1 || missing+=(smbclient)
  # acl_xattr and the other VFS modules the tests give some peers, as Windows-like servers
  dpkg -s samba-vfs-modules >/dev/null 2>&1 || missing+=(samba-vfs-modules)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

ensure_venv() {
  # $1: the extra to install ("" or "test")
  local python=${PYTHON:-python3}
  if ! command -v "$python" >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv >/dev/null 2>&1; then
      rm -rf .venv
      apt_install python3-venv
      "$python" -m venv .venv
    fi
  fi
  local spec=.
  [ -n "${1:-}" ] && spec=".[$1]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c "import jobsync" || { echo "jobsync: install into .venv failed" >&2; exit 1; }
}

ensure_kerberos() {
  # The Kerberos tests' domain controller (a throwaway Samba AD DC) and the Kerberos libraries
  # that jobsync's "kerberos" extra builds against.
  local missing=()
  command -v samba >/dev/null 2>&1 || missing+=(samba-ad-dc)
  dpkg -s samba-ad-provision >/dev/null 2>&1 || missing+=(samba-ad-provision)
  dpkg -s winbind >/dev/null 2>&1 || missing+=(winbind)
  command -v kinit >/dev/null 2>&1 || missing+=(krb5-user)
  dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  python3 -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    || missing+=(python3-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

ensure_operator_tools() {
  # Debian's chromium (the status page's browser test) and prometheus (its promtool tests the
  # alert rules); neither daemon is started.
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}
