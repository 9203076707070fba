"""What a run did, as plain values, one module per command; rendering them is the CLI's job.

Every result knows its exit code; :func:`worst` is the one roll-up of the codes of its parts.
"""

from jobsync.result.agent import (
    AgentView,
    Event,
    PeerView,
    iso,
    state_document,
    view_from_document,
)
from jobsync.result.check import CheckResult
from jobsync.result.codes import worst
from jobsync.result.failover import FailoverResult, StepOutcome
from jobsync.result.init import InitResult
from jobsync.result.push import FileFailure, PeerResult, PushResult
from jobsync.result.reconcile import Drift, Kind, PeerDrift, ReconcileResult
from jobsync.result.takeover import TakeoverResult

__all__ = [
    "AgentView",
    "CheckResult",
    "Drift",
    "Event",
    "FailoverResult",
    "FileFailure",
    "InitResult",
    "Kind",
    "PeerDrift",
    "PeerResult",
    "PeerView",
    "PushResult",
    "ReconcileResult",
    "StepOutcome",
    "TakeoverResult",
    "iso",
    "state_document",
    "view_from_document",
    "worst",
]
