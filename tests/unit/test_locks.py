"""The lock files: each satisfies pyproject.toml, and the venv holds what the Linux lock pins.

(The Windows bundle built from them is tested in tests/integration/test_bundle.py.)
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.locks import PYTHONS, read_pins

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _windows(python: str) -> dict[str, str]:
    """The marker environment of 64-bit CPython ``python`` on Windows."""
    return {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": python,
        "python_full_version": f"{python}.0",
    }


def test_the_locks_pin_every_dependency_pyproject_asks_for() -> None:
    """Each lock satisfies pyproject.toml, for each Python version it serves.

    Linux with the test and kerberos extras, Windows without extras.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    locks = {f"windows-py{p.replace('.', '')}.txt": (_windows(p), wanted) for p in PYTHONS}
    linux_wanted = wanted + [Requirement(r) for r in extras["test"] + extras["kerberos"]]
    for python in PYTHONS:
        linux = {
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": "x86_64",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "python_version": python,
            "python_full_version": f"{python}.0",
        }
        locks[f"linux.txt {python}"] = (linux, linux_wanted)
    for name, (environment, requirements) in locks.items():
        text = (ROOT / "requirements" / name.split()[0]).read_text()
        pins = read_pins(text, environment)
        for requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            pinned = pins.get(canonicalize_name(requirement.name))
            assert pinned is not None, f"{name}: {requirement.name} is not pinned"
            assert requirement.specifier.contains(pinned), f"{name}: {requirement} vs {pinned}"


def test_the_venv_holds_the_versions_the_linux_lock_pins() -> None:
    """scripts/_setup.sh installs from the lock: whatever it installed has the pinned version."""
    environment = {
        "sys_platform": sys.platform,
        "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "python_full_version": ".".join(str(n) for n in sys.version_info[:3]),
        "platform_python_implementation": "CPython",
        "implementation_name": sys.implementation.name,
    }
    pins = read_pins((ROOT / "requirements" / "linux.txt").read_text(), environment)
    checked = 0
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        assert installed == pinned, f"{name} {installed} installed, {pinned} locked"
        checked += 1
    assert checked > 20  # jobsync's own dependencies and the test tools at least
