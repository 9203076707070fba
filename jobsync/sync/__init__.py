"""Bringing peers in line with the source: a push once, or pass after pass for the agent.

``push`` fans out over the peers (:mod:`~jobsync.sync.peer_sync`); :class:`PeerSync` keeps one peer
in line and remembers its manifest (:mod:`~jobsync.sync.manifests`); a pass
(:mod:`~jobsync.sync.passes`) plans with :mod:`jobsync.plan` and changes the peer in steps
(:mod:`~jobsync.sync.passes`) whose outcomes one :class:`~jobsync.sync.passes.Tally` folds into the
peer's result, and whose records (:mod:`~jobsync.sync.manifests`) become its manifest.
"""
