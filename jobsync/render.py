"""Turning results into text for people and JSON for programs; a long push's progress.

A progress bar on stderr for long pushes, shown only on a terminal (rich, loaded then).
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime, timezone
from typing import Any

from jobsync.agent.view import AgentView
from jobsync.plan import Kind
from jobsync.result import (
    LEFT_AS,
    CheckResult,
    FailoverResult,
    FleetReport,
    InitResult,
    PeerResult,
    PushResult,
    ReconcileResult,
    StepOutcome,
    TakeoverResult,
    iso,
)
from jobsync.versions import AFTER_EVERYTHING


def push_to_json(result: PushResult) -> dict[str, Any]:
    """The push result as one JSON-ready document."""
    return {
        "node": result.node,
        "dry_run": result.dry_run,
        "exit_code": int(result.exit_code),
        "seconds": round(result.seconds, 3),
        "source": {
            "files": result.source_files,
            "skipped": [
                {"file": s.name, "reason": s.reason, "case_collision": s.collision}
                for s in result.skipped
            ],
            "pruned": list(result.pruned_local),
        },
        "peers": [_peer_json(p) for p in result.peers],
    }


def _peer_json(peer: PeerResult) -> dict[str, Any]:
    return {
        "name": peer.peer,
        "status": peer.status,
        "copied": list(peer.copied),
        "deleted": list(peer.deleted),
        "backed_up": list(peer.backed_up),
        "unchanged": peer.unchanged,
        "failed": [{"file": f.file, "reason": f.reason} for f in peer.failed],
        "error": peer.error,
        "refused": peer.refused,
        "pruned": list(peer.pruned),
        "seconds": round(peer.seconds, 3),
    }


def push_to_text(result: PushResult) -> list[str]:
    """One summary line per peer, then one line per problem."""
    verb = "would copy" if result.dry_run else "copied"
    gone = "would delete" if result.dry_run else "deleted"
    lines = []
    if result.dry_run:
        lines.append("dry run: nothing was changed")
    if not result.peers:
        lines.append("no peers to push to (every peer in the config is this node)")
    width = max((len(p.peer) for p in result.peers), default=0)
    for peer in result.peers:
        if peer.error:
            lines.append(f"{peer.peer:<{width}}  FAILED   {peer.error}")
            continue
        counts = (
            f"{verb} {len(peer.copied)}, {gone} {len(peer.deleted)}, "
            f"unchanged {peer.unchanged}, failed {len(peer.failed)}"
        )
        if peer.backed_up:
            kept = "would keep" if result.dry_run else "kept"
            counts += f" ({kept} {len(peer.backed_up)} peer edit(s) in .jobsync/backup)"
        if peer.pruned:
            counts += f", {_pruned(len(peer.pruned), dry=result.dry_run)}"
        lines.append(
            f"{peer.peer:<{width}}  {peer.status.upper():<7}  {counts}  ({peer.seconds:.2f} s)"
        )
        lines.extend(_problems(peer, indent=" " * (width + 4)))
    lines.extend(f"skipped source file {s.name}: {s.reason}" for s in result.skipped)
    if result.pruned_local:
        lines.append(f"source folder: {_pruned(len(result.pruned_local), dry=result.dry_run)}")
    return lines


def _pruned(count: int, *, dry: bool) -> str:
    verb = "would remove" if dry else "removed"
    return f"{verb} {count} kept cop{'y' if count == 1 else 'ies'} past [retention]"


def check_to_json(results: list[CheckResult]) -> dict[str, Any]:
    """Check results as one JSON-ready document."""
    return {
        "ok": all(r.ok for r in results),
        "peers": [
            {
                "name": r.peer,
                "path": r.location,
                "ok": r.ok,
                "detail": r.detail,
                "seconds": round(r.seconds, 3),
            }
            for r in results
        ],
    }


def check_to_text(results: list[CheckResult]) -> list[str]:
    """One line per peer."""
    if not results:
        return ["no peers to check (every peer in the config is this node)"]
    width = max(len(r.peer) for r in results)
    return [f"{r.peer:<{width}}  {'OK    ' if r.ok else 'FAILED'}  {r.detail}" for r in results]


def fleet_to_text(report: FleetReport) -> list[str]:
    """One line per item and node: verdict, item, node, evidence; the next step below a FAIL."""
    width = max((len(line.node) for line in report.lines), default=4)
    counts = ", ".join(f"{report.count(v)} {v}" for v in ("PASS", "FAIL", "CANNOT CHECK"))
    lines = [f"{report.node} checked the fleet in {report.seconds:.1f} s: {counts}"]
    for line in report.lines:
        lines.append(f"{line.verdict:<12}  {line.item:<15}  {line.node:<{width}}  {line.evidence}")
        if line.next_step and line.verdict != "PASS":
            lines.append(f"{'':<12}  {'':<15}  {'':<{width}}  next: {line.next_step}")
    return lines


def status_to_text(view: AgentView | None, *, where: str, alive: bool) -> list[str]:
    """The agent's last state for people."""
    if view is None:
        return [f"no agent has run with this configuration (no state at {where})"]
    running = "running" if alive else "NOT RUNNING"
    head = (
        f"agent on {view.node}: {running} (pid {view.pid}), {view.role} "
        f"({view.role_reason}), state of {iso(view.at)}"
    )
    problem = f"; PROBLEM: {view.source_error}" if view.source_error else ""
    lines = [head, f"source: {view.source_files} jobs in {view.source_folder}{problem}"]
    if view.services_verdict is not None:
        lines.append(_services_line(view))
    width = max((len(p.name) for p in view.peers), default=0)
    for peer in view.peers:
        failing = bool(peer.last_error)
        line = (
            f"{peer.name:<{width}}  {'FAILING' if failing else 'ok':<7}  "
            f"last success {iso(peer.last_success) or 'never'}, pending {peer.pending}, "
            f"pushed {peer.pushed}, deleted {peer.deleted}"
        )
        if failing:
            line += f"; last error: {peer.last_error}"
        lines.append(line)
    return lines


def _services_line(view: AgentView) -> str:
    """Where the Integrify services run, by the agent's last check."""
    on = ", ".join(view.services_on) or "no node"
    unknown = f"; could not ask {', '.join(view.services_unknown)}" if view.services_unknown else ""
    flag = {"none": "PROBLEM: ", "several": "PROBLEM: "}.get(view.services_verdict or "", "")
    return f"Integrify services: {flag}{view.services_verdict}: running on {on}{unknown}"


def reconcile_to_json(result: ReconcileResult) -> dict[str, Any]:
    """The drift report as one JSON-ready document."""
    peers = []
    for peer in result.peers:
        doc: dict[str, Any] = {
            "name": peer.peer,
            "reachable": peer.reachable,
            "error": peer.error,
            "drift": [
                {
                    "file": d.file,
                    "kind": d.kind.value,
                    "source_sha256": d.source_sha256,
                    "peer_sha256": d.peer_sha256,
                    "edited_on_peer": d.edited_on_peer,
                    "newer": d.newer.value,
                }
                for d in peer.drift
            ],
        }
        if peer.manifest_problem:
            doc["manifest_problem"] = peer.manifest_problem
        if result.applied:
            doc["applied"] = _peer_json(peer.applied) if peer.applied else None
        peers.append(doc)
    return {
        "in_sync": result.in_sync,
        "exit_code": int(result.exit_code),
        "source": {"node": result.node, "files": result.source_files},
        "peers": peers,
    }


def reconcile_to_text(result: ReconcileResult) -> list[str]:
    """One line when everything matches; else a short table per peer."""
    if result.in_sync:
        names = ", ".join(p.peer for p in result.peers) or "no peers"
        return [f"in sync: {names} match the source ({result.source_files} jobs)"]
    lines: list[str] = []
    for peer in result.peers:
        if not peer.reachable:
            lines.append(f"{peer.peer}: UNREACHABLE: {peer.error}")
            continue
        if not peer.drift:
            lines.append(f"{peer.peer}: in sync")
            continue
        lines.append(f"{peer.peer}: {len(peer.drift)} difference(s)")
        width = max(len(d.file) for d in peer.drift)
        lines.append(f"  {'FILE':<{width}}  KIND       NEWER    EDITED ON PEER")
        for d in peer.drift:
            edited = {True: "yes", False: "no", None: "-"}[d.edited_on_peer]
            lines.append(f"  {d.file:<{width}}  {d.kind.value:<9}  {d.newer.value:<7}  {edited}")
        if any(d.kind is Kind.COLLISION for d in peer.drift):
            lines.append(
                "  collision: names that differ only in case are never pushed; rename or "
                "remove one of them"
            )
        if peer.manifest_problem:
            lines.append(f"  manifest not trusted: {peer.manifest_problem}")
        if peer.applied is not None:
            lines.extend("  " + line for line in push_to_text_peer(peer.applied))
    return lines


def push_to_text_peer(peer: PeerResult) -> list[str]:
    """What an apply did on one peer."""
    summary = (
        f"applied: copied {len(peer.copied)}, deleted {len(peer.deleted)}, "
        f"kept {len(peer.backed_up)} replaced file(s) in .jobsync/backup, "
        f"failed {len(peer.failed)}"
    )
    lines = [summary]
    if peer.error:
        lines.append(f"apply failed: {peer.error}")
    lines.extend(_problems(peer, indent="  ", refused_indent=""))
    return lines


def _problems(peer: PeerResult, *, indent: str, refused_indent: str | None = None) -> list[str]:
    """A peer's failed files, one line each, then what it refused."""
    lines = [f"{indent}{f.file}: {f.reason}" for f in peer.failed]
    if peer.refused:
        lines.append(
            f"{indent if refused_indent is None else refused_indent}refused: {peer.refused}"
        )
    return lines


def _when(ns: int) -> str:
    if ns >= AFTER_EVERYTHING:
        return "time unknown"
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="seconds")


def takeover_to_json(result: TakeoverResult) -> dict[str, Any]:
    """The takeover as one JSON-ready document."""
    return {
        "node": result.node,
        "dry_run": result.dry_run,
        "exit_code": int(result.exit_code),
        "epoch": result.epoch,
        "previous": {"owner": result.previous_owner, "epoch": result.previous_epoch},
        "changes": [
            {
                "file": a.file,
                "action": a.kind,
                "from": a.choice.where,
                "origin": a.choice.version.origin,
                "version_epoch": a.choice.version.epoch,
            }
            for a in result.actions
        ],
        "failed": [{"file": f.file, "reason": f.reason} for f in result.failed],
        "unreachable": [{"name": n, "error": e} for n, e in result.unreachable],
        "recorded_on": list(result.recorded_on),
        "reached": {
            "nodes": list(result.reached),
            "cluster": result.cluster,
            "majority": result.majority,
        },
        "refused": result.refused,
    }


def _majority_line(result: TakeoverResult) -> str:
    seen = f"{len(result.reached)} of {result.cluster} nodes (this one included)"
    if result.majority:
        return f"  reached {seen}: a majority"
    return (
        f"  WARNING: reached only {seen}, not a majority: a node that cannot see this one may "
        "take over in the same epoch, and the node whose name sorts first then owns the jobs "
        "(see docs/failover.md)"
    )


def takeover_to_text(result: TakeoverResult) -> list[str]:
    """What takeover found and did, then whether the services may start."""
    owner = result.previous_owner or "nobody yet"
    verb = "would take" if result.dry_run else "took"
    head = (
        f"{result.node} {verb} over in epoch {result.epoch} "
        f"(the jobs folder was owned by {owner} in epoch {result.previous_epoch})"
    )
    lines = [head]
    for action in result.actions:
        v = action.choice.version
        if action.kind == "pull":
            verb = "would pull" if result.dry_run else "pulled"
            lines.append(
                f"  {verb} {action.file} from {action.choice.where} "
                f"({v.origin}'s version of {_when(v.time_ns)}, epoch {v.epoch})"
            )
        else:
            lines.append(
                f"  {'would delete' if result.dry_run else 'deleted'} {action.file} "
                f"({v.origin} deleted it in epoch {v.epoch}); kept in .jobsync/trash"
            )
    if not result.actions:
        lines.append("  every job here already is the newest version")
    lines.extend(f"  UNREACHABLE {name}: {error}" for name, error in result.unreachable)
    lines.extend(f"  FAILED {f.file}: {f.reason}" for f in result.failed)
    lines.append(_majority_line(result))
    if result.recorded_on:
        lines.append(f"  epoch {result.epoch} recorded on: {', '.join(result.recorded_on)}")
    if result.refused:
        lines.append(f"REFUSED: {result.refused}")
    elif result.dry_run:
        lines.append("dry run: nothing was changed")
    elif result.exit_code == 0:
        lines.append("safe to start the Integrify services on this node")
    else:
        lines.append(
            "done with what could be seen: check the unreachable peers or failures above "
            "before starting the services"
        )
    return lines


def init_to_json(result: InitResult) -> dict[str, Any]:
    """The install step as one JSON-ready document."""
    return {
        "node": result.node,
        "host": result.host,
        "install": result.install,
        "role": result.role,
        "role_reason": result.role_reason,
        "overridden": result.overridden,
        "dry_run": result.dry_run,
        "exit_code": int(result.exit_code),
        "clash": result.clash,
        "owned_since_epoch": result.owned_since,
        "refused": result.refused,
        "claimed": None if result.claimed is None else takeover_to_json(result.claimed),
    }


def init_to_text(result: InitResult) -> list[str]:
    """Who this node is, its role, and whether it owns the jobs now."""
    recorded = "would be recorded" if result.dry_run else "recorded"
    where = "the jobs folder's .jobsync/node.json"
    lines = [
        f"{result.node}: host {result.host}, install {result.install[:8]} ({recorded} in {where})"
    ]
    if result.clash is not None:
        return [*lines, f"REFUSED: {result.clash}"]
    override = " (--as-services-node)" if result.overridden else ""
    lines.append(f"role: {result.role}{override}: {result.role_reason}")
    if result.role == "standby":
        lines.append(
            "a standby does not claim the jobs: run jobsync init on the services node; "
            "this node's scheduled push will change nothing while it is standby"
        )
    elif result.refused is not None:
        lines.append(f"REFUSED: {result.refused}")
    elif result.owned_since is not None:
        lines.append(f"{result.node} already owns the jobs (epoch {result.owned_since}): done")
    elif result.claimed is not None:
        lines.extend(takeover_to_text(result.claimed))
    return lines


def failover_step_to_text(outcome: StepOutcome) -> list[str]:
    """One step as it ends: its status and summary, then its details, indented."""
    head = f"{outcome.step:<9} {outcome.status.upper():<9} {outcome.summary}"
    return [f"{head}  ({outcome.seconds:.2f} s)", *(f"    {d}" for d in outcome.details)]


def failover_verdict(result: FailoverResult) -> str:
    """The last line: where the move stands and what to do."""
    failed = result.failed
    if result.dry_run:
        return "dry run: nothing was changed"
    if failed is None:
        return f"failover done: {result.node} is the services node ({result.seconds:.2f} s)"
    code = int(result.exit_code)
    if failed.status == "outranked":
        return f"failover stopped (exit {code}): another node owns the jobs; services here stopped"
    return (
        f"failover stopped at {failed.step} (exit {code}): {LEFT_AS[failed.step]}; fix the "
        "cause above and run jobsync failover again (it finishes the move)"
    )


def failover_to_json(result: FailoverResult, plan: list[str]) -> dict[str, Any]:
    """The plan, every step that ran, and the verdict, for a cluster manager or a script."""
    failed = result.failed
    return {
        "node": result.node,
        "dry_run": result.dry_run,
        "plan": [line.strip() for line in plan],
        "steps": [
            {
                "step": s.step,
                "status": s.status,
                "summary": s.summary,
                "details": list(s.details),
                "seconds": s.seconds,
            }
            for s in result.steps
        ],
        "seconds": round(result.seconds, 3),
        "notes": list(result.notes),
        "failed_step": failed.step if failed else None,
        "left_as": LEFT_AS[failed.step] if failed and failed.status != "outranked" else None,
        "exit_code": int(result.exit_code),
        "message": failover_verdict(result),
    }


class ProgressBar:
    """A progress bar on stderr for long pushes, shown only on a terminal."""

    THRESHOLD = 200  # files; shorter pushes finish before a bar helps

    def __init__(self) -> None:
        """Nothing shown until a peer reports a long push."""
        self._lock = threading.Lock()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, peer: str, done: int, total: int) -> None:
        """``done`` of ``total`` jobs sent to ``peer``."""
        if total < self.THRESHOLD:
            return
        with self._lock:
            if self._bar is None:
                from rich.console import Console
                from rich.progress import Progress

                self._bar = Progress(console=Console(stderr=True), transient=True)
                self._bar.start()
            if peer not in self._tasks:
                self._tasks[peer] = self._bar.add_task(peer, total=total)
            self._bar.update(self._tasks[peer], completed=done)

    def close(self) -> None:
        """Take the bar off the terminal."""
        with self._lock:
            if self._bar is not None:
                self._bar.stop()


def progress_bar() -> ProgressBar | None:
    """A progress bar for a push, when a person watches stderr."""
    return ProgressBar() if sys.stderr.isatty() else None
