"""Whether a config is ready to be installed as a service or a task: ``jobsync check`` passes.

``install.ps1`` writes the example config on a node's first run, and an administrator who goes
straight on to ``-Service -Task`` would install a service for the example's peers, its gMSA and
``integrify-services.example.com``: a service that fails at every pass, as an account that
does not exist. So installing the service or the task first refuses the example as shipped,
then runs the check (the role's mode, every peer's create-read-rename, the fleet) and refuses
unless it passes.
"""

from __future__ import annotations

import hashlib

from jobsync.config import Config
from jobsync.errors import ConfigError, SafetyRefusalError

# SHA-256 of docs/jobsync.example.toml with "\n" line ends (tests/unit/test_windows_ops.py keeps it
# in step with the file).
EXAMPLE_SHA256 = "edb8a8cf9a761705ae19b928f311e00b8ac0ef10f8a307cf4c92d6fa7895e147"


def example_digest(text: bytes) -> str:
    """The digest compared with :data:`EXAMPLE_SHA256`, whatever the line ends."""
    return hashlib.sha256(text.replace(b"\r\n", b"\n")).hexdigest()


def require_ready(config: Config, *, what: str) -> None:
    """Refuse (exit 2 or 4, nothing installed) unless ``jobsync check`` passes with ``config``."""
    from jobsync.check import check, fleet_problems  # noqa: PLC0415 - the SMB stack, on demand
    from jobsync.identity import local_identity, published_addresses  # noqa: PLC0415
    from jobsync.role_gate import decide  # noqa: PLC0415

    if example_digest(config.path.read_bytes()) == EXAMPLE_SHA256:
        raise ConfigError(
            f"{config.path} is the example as shipped: set source, the [[peers]], [active] and "
            f"[service] account for this site (docs\\windows.md, step 2), run jobsync check, "
            f"then install the {what} again"
        )
    decide(config)  # a role mode that cannot work here is a ConfigError
    results = check(config, peers=config.target_peers)
    me = local_identity(config, addresses=published_addresses(config))
    problems = [f"{r.peer}: {r.detail}" for r in results if not r.ok]
    problems += fleet_problems(config, me, results)
    if problems:
        raise SafetyRefusalError(
            f"the {what} was not installed: jobsync check fails ({'; '.join(problems)}); fix "
            "that, run jobsync check until it passes, then install again"
        )
