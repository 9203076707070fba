"""Loading and validating ``jobsync.toml``.

Every problem is reported as one :class:`~jobsync.errors.ConfigError` line naming the file, the
key or peer, and what is wrong; nothing is guessed: a value that is empty, zero or incomplete
is refused, not replaced by a default. Secrets are read from the environment or the credential
store, never from the file, and are wrapped so that printing a config never prints a password.

The package: :mod:`.model` (the values), :mod:`.reader` (reading a table), :mod:`.sections`
(the optional tables), :mod:`.failover` (``[failover]``), :mod:`.peers` and :mod:`.paths`
(peers and folders), :mod:`.load` (the file). A new table is a dataclass in ``model``, a
parser in ``sections``, a line in ``load``.
"""

from __future__ import annotations

from jobsync.config.load import CONFIG_ENV, CONFIG_NAME, find_config_path, load_config
from jobsync.config.model import (
    ACTIVE_MODES,
    DEFAULT_KEEP_DAYS,
    DEFAULT_MAX_DELETE_RATIO,
    DEFAULT_PATTERN,
    DEFAULT_SMB_PORT,
    DEFAULT_TIMEOUT_SECONDS,
    ActiveConfig,
    Config,
    DnsConfig,
    FailoverConfig,
    HealthConfig,
    PeerConfig,
    RetentionConfig,
    ScheduleConfig,
    ServiceConfig,
    UncPath,
    WatchConfig,
)
from jobsync.config.paths import parse_unc

__all__ = [
    "ACTIVE_MODES",
    "CONFIG_ENV",
    "CONFIG_NAME",
    "DEFAULT_KEEP_DAYS",
    "DEFAULT_MAX_DELETE_RATIO",
    "DEFAULT_PATTERN",
    "DEFAULT_SMB_PORT",
    "DEFAULT_TIMEOUT_SECONDS",
    "ActiveConfig",
    "Config",
    "DnsConfig",
    "FailoverConfig",
    "HealthConfig",
    "PeerConfig",
    "RetentionConfig",
    "ScheduleConfig",
    "ServiceConfig",
    "UncPath",
    "WatchConfig",
    "find_config_path",
    "load_config",
    "parse_unc",
]
