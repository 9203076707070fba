"""The command line as a separate process: exit codes and one-line errors, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _jobsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JOBSYNC_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "jobsync", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "args", "expected"),
    [
        ("node = [", ["push"], "malformed TOML"),
        ('source = "/x"\nbogus = 1\n[[peers]]\nname="a"\npath="/y"\n', ["push"], "unknown key"),
        (
            'source = "/x"\n[[peers]]\nname="a"\npath="/y"\npassword="hunter22"\n',
            ["check"],
            "password is not allowed",
        ),
        (None, ["push"], "no configuration file"),
        (
            'source = "/x"\n[[peers]]\nname="a"\npath="/y"\n',
            ["push", "--no-such-flag"],
            "No such option",
        ),
        (
            'source = "/nowhere/at/all"\n[[peers]]\nname="a"\npath="/y"\n',
            ["push"],
            "does not exist",
        ),
        (
            'source = "/x"\n[[peers]]\nname="a"\npath="/y"\n',
            ["check", "--fleet"],
            "no [fleet_check] table: add one with install",
        ),
        (
            "source = '/x'\n[[peers]]\nname='a'\npath='/y'\n[fleet_check]\ninstall='C:\\i'\n",
            ["check", "--fleet"],
            "need every node reached over SMB",
        ),
        (
            "source = '/x'\n[[peers]]\nname='a'\npath='/y'\n[fleet_check]\ninstall='C:\\i'\n",
            ["check", "--fleet", "--peer", "a"],
            "--peer does not apply to --fleet",
        ),
    ],
    ids=[
        "malformed",
        "unknown-key",
        "password-in-file",
        "no-config",
        "bad-flag",
        "no-source",
        "fleet-without-table",
        "fleet-with-a-local-peer",
        "fleet-with-peer",
    ],
)
def test_bad_input_is_exit_2_with_one_line(
    tmp_path: Path, config: str | None, args: list[str], expected: str
) -> None:
    """Each bad input exits 2 with a single stderr line that says what is wrong."""
    if config is not None:
        (tmp_path / "jobsync.toml").write_text(config)
    done = _jobsync(*args, cwd=tmp_path)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("jobsync:")]
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert "hunter22" not in done.stderr + done.stdout


def test_module_and_help_run(tmp_path: Path) -> None:
    """`python -m jobsync --help` lists the commands and exits 0."""
    done = _jobsync("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "push" in done.stdout
    assert "check" in done.stdout
