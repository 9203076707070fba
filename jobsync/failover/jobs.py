"""Step 2: take over the jobs (``jobsync takeover``'s rules, unchanged), once.

A takeover already recorded on every folder that can be reached is not repeated (a rerun after
an interrupted failover would only start a needless epoch). Right after it, the claims are read
again: when two nodes fail over at once, the ownership rule picks one, and the other steps back.
"""

from __future__ import annotations

from jobsync.failover.move import Move
from jobsync.failover.ownership import read_ownership
from jobsync.render import takeover_to_text
from jobsync.result.failover import StepOutcome
from jobsync.takeover import takeover


def takeover_step(move: Move) -> StepOutcome:
    """Take over unless this node already owns every folder; then check nobody outranks it."""
    before = read_ownership(move.config, opener=move.opener)
    if before.settled(down=frozenset(move.down)):
        return StepOutcome(
            "takeover", "already", f"this node owns the jobs at epoch {before.mine.epoch}"
        )
    result = takeover(move.config, dry_run=move.dry_run, opener=move.opener)
    # takeover's own report, less its head line and its advice about starting the services
    details = [line.strip() for line in takeover_to_text(result)[1:-1]]
    if result.refused:
        return StepOutcome("takeover", "failed", f"refused: {result.refused}", tuple(details))
    unseen = [n for n, _ in result.unreachable if n not in move.down]
    if result.failed or unseen:
        what = f"could not see {', '.join(unseen)}" if unseen else "some files failed"
        return StepOutcome(
            "takeover", "failed", f"{what}; run jobsync failover again", tuple(details)
        )
    if move.dry_run:
        return StepOutcome(
            "takeover", "planned", f"would take over in epoch {result.epoch}", tuple(details)
        )
    after = read_ownership(move.config, opener=move.opener)
    if after.outranked:
        return StepOutcome(
            "takeover",
            "outranked",
            after.stepping_back(),
            tuple(details),
        )
    return StepOutcome("takeover", "done", f"took over in epoch {result.epoch}", tuple(details))
