"""jobsync clusters for tests: a source folder, a config file and peers, and jobsync run on them.

A :class:`Cluster`'s peers are Samba shares (``smb``) or local folders; the fixtures that make
one are in ``tests/conftest.py``. :func:`run_jobsync` runs the command line in this process
and captures what it printed; :meth:`Cluster.run_process` runs it as a separate process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobsync.__main__ import main
from jobsync.config.model import PeerConfig
from jobsync.config.reader import parse_unc
from jobsync.credentials import Secret
from jobsync.jobs_folder import is_job_temp_name

from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer


@dataclass(frozen=True)
class Run:
    """What one jobsync invocation returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Stdout parsed as the one JSON document it must be."""
        return json.loads(self.out)


def run_jobsync(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Run:
    """Run ``jobsync ARGV`` in this process and capture its exit code and output."""
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = 0
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@dataclass
class Cluster:
    """A source folder, a config file and its peers (Samba shares or local folders)."""

    root: Path
    source: Path
    peers: list[tuple[str, str, Path]]  # (name, path in the config, folder on disk)
    capsys: pytest.CaptureFixture[str]
    smb: dict[str, SambaPeer] = field(default_factory=dict)
    timeout: float = 5.0
    extra: str = ""
    ports: dict[str, int] = field(default_factory=dict)  # peer name -> port to use instead
    plain: set[str] = field(default_factory=set)  # peers configured with encrypt = false

    @property
    def config(self) -> Path:
        """The config file, written from the current settings."""
        path = self.root / "jobsync.toml"
        lines = [
            'node = "node1"',
            "node_differs_from_host = true",
            f"source = '{self.source}'",
            f"timeout_seconds = {self.timeout}",
            self.extra,
        ]
        for name, location, _ in self.peers:
            samba = self.smb.get(name)
            if samba is None:  # a local folder, or a peer logging on as the current account
                lines += ["[[peers]]", f'name = "{name}"', f"path = '{location}'"]
                if name in self.ports:
                    lines.append(f"port = {self.ports[name]}")
                continue
            lines += samba.peer_toml(
                name, password_env=PASSWORD_ENV, port=self.ports.get(name), path=location
            )
            if name in self.plain:
                lines.append("encrypt = false")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def disk(self, name: str) -> Path:
        """The folder on disk behind peer ``name``."""
        return next(d for n, _, d in self.peers if n == name)

    def write_job(self, name: str, content: bytes, *, mtime_ns: int | None = None) -> Path:
        """Create or change a job in the source folder."""
        path = self.source / name
        path.write_bytes(content)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))
        return path

    def variant(self, name: str, old: str, new: str) -> Path:
        """A copy of the config with ``old`` replaced by ``new`` (once), for one test."""
        text = self.config.read_text(encoding="utf-8")
        assert old in text, old
        path = self.root / name
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return path

    def run(self, *args: str, config: Path | None = None) -> Run:
        """Run ``jobsync ARGS -c CONFIG`` in this process and capture what it printed."""
        return run_jobsync(self.capsys, [*args, "-c", str(config or self.config)])

    def run_process(
        self, *args: str, config: Path | None = None, env: dict[str, str] | None = None
    ) -> Run:
        """Run ``python -m jobsync ARGS -c CONFIG`` as a separate process."""
        env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD, "NO_COLOR": "1", **(env or {})}
        done = subprocess.run(
            [sys.executable, "-m", "jobsync", *args, "-c", str(config or self.config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)


def peer_config(samba: SambaPeer, *parts: str, encrypt: bool = True) -> PeerConfig:
    """The configuration of ``samba`` as peer node2, its jobs folder ``parts`` (``jobs``)."""
    unc = samba.unc(*(parts or ("jobs",)))
    return PeerConfig(
        name="node2",
        path=unc,
        target=parse_unc(unc),
        port=samba.port,
        username=samba.user,
        password=Secret(samba.password),
        encrypt=encrypt,
    )


def leftover_temps(folder: Path) -> list[str]:
    """Jobsync's temp files in a jobs folder: jobs being written, and files under .jobsync/tmp."""
    found = [p.name for p in folder.iterdir() if is_job_temp_name(p.name)]
    tmp = folder / ".jobsync" / "tmp"
    if tmp.is_dir():
        found += [f".jobsync/tmp/{p.name}" for p in tmp.iterdir()]
    return found


def jobs_on(folder: Path) -> dict[str, bytes]:
    """The job files in a peer folder (reads that race a rename are retried by the caller)."""
    found = {}
    for path in folder.iterdir():
        if path.is_file() and path.name.lower().endswith(".jobs"):
            try:
                found[path.name] = path.read_bytes()
            except FileNotFoundError:
                continue
    return found
