"""Bringing peers in line with the source: a push once, or pass after pass for the agent.

``push`` fans out over the peers (:mod:`~jobsync.sync.push`); :class:`PeerSync` keeps one peer
in line and remembers its manifest (:mod:`~jobsync.sync.manifest_cache`); a pass
(:mod:`~jobsync.sync.passes`) plans with :mod:`jobsync.plan` and changes the peer in steps
(:mod:`~jobsync.sync.steps`) whose outcomes one :class:`~jobsync.sync.tally.Tally` folds into the
peer's result, and whose records (:mod:`~jobsync.sync.records`) become its manifest.
"""

from jobsync.sync.context import Progress, PushOptions, utc_now
from jobsync.sync.peer_sync import PeerSync
from jobsync.sync.push import push

__all__ = ["PeerSync", "Progress", "PushOptions", "push", "utc_now"]
