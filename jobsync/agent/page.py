"""The status page at ``GET /``: one HTML page an operator can read at a glance.

No JavaScript and no external assets (the servers are often offline): the style is inline and
the page refreshes itself with a ``<meta http-equiv="refresh">``. Everything shown comes from
an :class:`AgentView`, escaped, and passed through the secret filter on the way out.

"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from html import escape

from jobsync import __version__
from jobsync.agent.health import Verdict, duration, verdict_of
from jobsync.agent.view import AgentView, Event, FleetLast, PeerView
from jobsync.failover.steps import ServicesNodes
from jobsync.result import LastFailover

REFRESH_SECONDS = 5
EVENTS_SHOWN = 50

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:0;background:#f4f5f7;color:#1d2530}
header{padding:14px 24px;background:#1d2530;color:#fff;display:flex;align-items:center;gap:16px}
header h1{font-size:20px;margin:0;font-weight:600}
header .version{margin-left:auto;color:#c9d1db;font-size:13px}
main{padding:8px 24px 24px}
h2{font-size:16px;margin:22px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:700;font-size:13px}
.active{background:#1f8f4e;color:#fff}.standby{background:#6b7685;color:#fff}
.starting,.warn{background:#b7791f;color:#fff}.bad{background:#c53030;color:#fff}
.next{margin:0;padding:9px 24px;font-weight:600;border-bottom:1px solid #e3e6ea}
.next-ok{background:#eef7f1}.next-degraded{background:#fdf6e7}.next-failing{background:#fff5f5}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:14px 0}
dt{color:#5b6675}dd{margin:0}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-size:13px;color:#5b6675;font-weight:600;background:#fafbfc}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.loc{color:#5b6675;font-size:12px}
.state{font-weight:600;white-space:nowrap}
.s-ok{color:#1f8f4e}.s-failing{color:#c53030}.s-other{color:#b7791f}.s-idle{color:#5b6675}
tr.failing td{background:#fff5f5}
.error{color:#c53030}
.problem{background:#fff5f5;border-left:4px solid #c53030;padding:8px 12px;margin:12px 0}
.ev-problem td{color:#c53030}
.when{white-space:nowrap;color:#5b6675}
footer{color:#5b6675;font-size:12px;margin-top:18px}
"""

_STATE_CLASS = {"up to date": "s-ok", "failing": "s-failing", "not pushed (standby)": "s-idle"}


def render_page(
    view: AgentView,
    *,
    hide: Callable[[str], str],
    max_lag: float,
    refresh: int = REFRESH_SECONDS,
    services: ServicesNodes | None = None,
    failover: LastFailover | None = None,
    fleet: FleetLast | None = None,
) -> bytes:
    """The page for ``view``; ``hide`` replaces secrets in any text before it is shown.

    Its header says what ``/healthz`` says (``max_lag``: ``[health] max_lag_seconds``) and
    the next thing to do; ``services``, the last check of where Integrify's services run
    (with ``[failover]``), adds a line under it when they run on no node or several, and a
    section naming the nodes; ``failover``, the last ``jobsync failover`` run here, a section
    with its steps; ``fleet``, the last fleet check (with ``[fleet_check]``), a section with
    its counts and the lines that did not pass.
    """

    def text(value: object) -> str:
        return escape(hide(str(value)))

    now = view.at
    verdict = verdict_of(view, max_lag=max_lag, services=services)
    role_line = view.role + (f": {view.role_reason}" if view.role_reason else "")
    owner = (
        f"jobs owned by {text(view.owner)} (epoch {view.owner_epoch})"
        if view.owner
        else "no owner recorded yet (jobsync init on the services node claims the jobs)"
    )
    jobs = f"{view.source_files} job{'' if view.source_files == 1 else 's'}"
    source = (
        f"{text(view.source_folder)} (not read yet)"
        if view.role == "starting"
        else f"{jobs} in {text(view.source_folder)}"
    )
    agent = f"running since {_clock(view.started)} UTC ({_ago(now - view.started)}), pid {view.pid}"
    footer = (
        f"<footer>jobsync {escape(__version__)} &middot; shown at {_clock(now)} UTC &middot; "
        f"refreshes every {refresh} s &middot; "
        '<a href="/livez">/livez</a> &middot; <a href="/healthz">/healthz</a> &middot; '
        '<a href="/metrics">/metrics</a></footer>'
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{refresh}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>jobsync: {text(view.node)} ({view.role})</title>",
        f"<style>{STYLE}</style></head><body>",
        _header(view, verdict, text),
        "<main>",
    ]
    if view.source_error:
        parts.append(
            f'<p class="problem">Source folder problem: {text(view.source_error)} '
            "(nothing is deleted on any peer until it is back)</p>"
        )
    parts += [
        f'<p class="problem">{text(problem.reason)}</p>'
        for problem in verdict.problems
        if problem.reason != view.source_error
    ]
    if services is not None and services.wrong:
        parts.append(f'<p class="problem">{text(services.summary())}</p>')
    if view.role == "standby":
        parts.append(
            "<p>This node is on standby: it watches the jobs folder but pushes nothing while "
            "another node is the services node.</p>"
        )
    parts += [
        "<dl>",
        f"<dt>Role</dt><dd>{text(role_line)}</dd>",
        f"<dt>Epoch</dt><dd>{view.epoch} &middot; {owner}</dd>",
        f"<dt>Source</dt><dd>{source}</dd>",
        f"<dt>Agent</dt><dd>{agent}</dd>",
        "</dl>",
        *(() if services is None else ("<h2>Integrify services</h2>", _services(services, text))),
        *(() if failover is None else ("<h2>Last failover here</h2>", _failover(failover, text))),
        *(() if fleet is None else ("<h2>Fleet check</h2>", _fleet(fleet, text))),
        "<h2>Peers</h2>",
        _peer_table(view, text),
        "<h2>Recent events</h2>",
        _event_table(view.events[:EVENTS_SHOWN], now, text),
        footer,
        "</main></body></html>",
    ]
    return "\n".join(parts).encode("utf-8")


def _header(view: AgentView, verdict: Verdict, text: Callable[[object], str]) -> str:
    """The node, its verdict as a badge and, under it, the next thing to do."""
    look = {"ok": view.role, "degraded": "warn", "failing": "bad"}[verdict.status]
    return (
        f"<header><h1>jobsync on {text(view.node)}</h1>"
        f'<span class="badge {look}">{text(verdict.headline)}</span>'
        f'<span class="version">jobsync {escape(__version__)}</span></header>'
        f'<p class="next next-{verdict.status}">{text(verdict.next_step)}</p>'
    )


def _peer_table(view: AgentView, text: Callable[[object], str]) -> str:
    if not view.peers:
        return "<p>No peers: every peer in the config is this node.</p>"
    head = (
        "<table><thead><tr><th>Peer</th><th>State</th><th>Last successful pass</th>"
        "<th>Pending</th><th>Copied</th><th>Deleted</th><th>Backed up</th>"
        "<th>Expired copies removed</th><th>Last error</th></tr></thead><tbody>"
    )
    rows = [head, *(_peer_row(peer, view, text) for peer in view.peers), "</tbody></table>"]
    return "".join(rows)


def _peer_row(peer: PeerView, view: AgentView, text: Callable[[object], str]) -> str:
    state = peer.state(standby=view.role == "standby")
    success = (
        f'{_ago(view.at - peer.last_success)}<div class="loc">{_clock(peer.last_success)} UTC</div>'
        if peer.last_success is not None
        else "never"
    )
    error = f'<span class="error">{text(peer.last_error)}</span>' if peer.last_error else "none"
    cells = [
        f'<td>{text(peer.name)}<div class="loc">{text(peer.location)}</div></td>',
        f'<td class="state {_STATE_CLASS.get(state, "s-other")}">{state}</td>',
        f"<td>{success}</td>",
        *(
            f'<td class="n">{n}</td>'
            for n in (peer.pending, peer.pushed, peer.deleted, peer.backed_up, peer.pruned)
        ),
        f"<td>{error}</td>",
    ]
    row_class = ' class="failing"' if state == "failing" else ""
    return f"<tr{row_class}>{''.join(cells)}</tr>"


def _services(found: ServicesNodes, text: Callable[[object], str]) -> str:
    """Which node runs which of the services, by the last check."""
    names = ", ".join(found.services)
    if found.at is None:
        return f"<p>Not checked yet where {text(names)} run.</p>"
    look = "s-ok" if found.verdict == "one" else "s-failing" if found.wrong else "s-other"
    checked = f"checked at {_clock(found.at)} UTC"
    head = (
        f'<p><span class="state {look}">{text(found.summary())}</span> '
        f'<span class="loc">({text(names)}; {checked})</span></p>'
    )
    if found.error is not None:
        return head
    rows = ["<table><thead><tr><th>Node</th><th>Running</th></tr></thead><tbody>"]
    for answer in found.answers:
        if answer.error is not None:
            cell = f'<span class="error">could not be asked: {text(answer.error)}</span>'
        else:
            cell = text(", ".join(answer.running)) if answer.running else "none"
        rows.append(f"<tr><td>{text(answer.node)}</td><td>{cell}</td></tr>")
    rows.append("</tbody></table>")
    return head + "".join(rows)


def _failover(last: LastFailover, text: Callable[[object], str]) -> str:
    """When the last failover here ended, how, and each of its steps."""
    look = "s-ok" if last.exit_code == 0 else "s-failing"
    outcome = "moved and proven" if last.exit_code == 0 else f"stopped, exit {last.exit_code}"
    rows = [
        (
            f'<p><span class="state {look}">{outcome}</span> '
            f'<span class="loc">(ended {_clock(last.finished)} UTC)</span></p>'
        ),
        (
            "<table><thead><tr><th>Step</th><th>Status</th><th>Summary</th><th>Seconds</th>"
            "</tr></thead><tbody>"
        ),
    ]
    for step in last.steps:
        status = text(step.status) if step.ok else f'<span class="error">{text(step.status)}</span>'
        rows.append(
            f"<tr><td>{text(step.step)}</td><td>{status}</td><td>{text(step.summary)}</td>"
            f"<td>{step.seconds:.2f}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _fleet(last: FleetLast, text: Callable[[object], str]) -> str:
    """The last fleet check: its counts, when it ran, and every line that did not pass."""
    parts = []
    if last.error is not None and last.at is not None:
        parts.append(
            f'<p class="problem">The fleet check could not run at {_clock(last.at)} UTC: '
            f"{text(last.error)}</p>"
        )
    report = last.report
    if report is None:
        if last.error is None:
            every = f"every {last.every_minutes:g} min"
            parts.append(f"<p>Not run yet: the services node runs it {every}.</p>")
        return "".join(parts)
    failed, unknown = report.count("FAIL"), report.count("CANNOT CHECK")
    look = "s-failing" if failed else "s-other" if unknown else "s-ok"
    parts.append(
        f'<p><span class="state {look}">{failed} FAIL, {unknown} CANNOT CHECK, '
        f'{report.count("PASS")} PASS</span> <span class="loc">(ended '
        f"{_clock(report.at)} UTC, took {report.seconds:.1f} s)</span></p>"
    )
    lines = [line for line in report.lines if line.verdict != "PASS"]
    if lines:
        parts.append(
            "<table><thead><tr><th>Item</th><th>Node</th><th>Verdict</th><th>Evidence</th>"
            "</tr></thead><tbody>"
        )
        for line in lines:
            verdict = "error" if line.verdict == "FAIL" else "s-other"
            step = f'<div class="loc">{text(line.next_step)}</div>' if line.next_step else ""
            parts.append(
                f"<tr><td>{text(line.item)}</td><td>{text(line.node)}</td>"
                f'<td class="state {verdict}">{text(line.verdict)}</td>'
                f"<td>{text(line.evidence)}{step}</td></tr>"
            )
        parts.append("</tbody></table>")
    return "".join(parts)


def _event_table(events: tuple[Event, ...], now: float, text: Callable[[object], str]) -> str:
    if not events:
        return "<p>Nothing yet.</p>"
    rows = ["<table><thead><tr><th>When (UTC)</th><th>Peer</th><th>Event</th></tr></thead><tbody>"]
    for event in events:
        repeat = f" (&times;{event.count} since {_clock(event.first)})" if event.count > 1 else ""
        row_class = ' class="ev-problem"' if event.problem else ""
        rows.append(
            f'<tr{row_class}><td class="when">{_clock(event.at)} &middot; '
            f"{_ago(now - event.at)}</td><td>{text(event.peer or '')}</td>"
            f"<td>{text(event.text)}{repeat}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _clock(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _ago(seconds: float) -> str:
    return f"{duration(seconds)} ago"
