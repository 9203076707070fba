"""The ``jobsync`` commands: parse, call, render. Nothing else lives here.

Every command returns an exit code. A command that reads the config is declared with
:func:`configured`, which adds the options every such command takes (``-c``, ``-v``,
``--log-json``, ``--log-file``) once, reads the config and sets up logging, and hands the
command its :class:`~jobsync.config.model.Config`. A command imports what its work needs when it
runs, so ``--help`` and ``status`` never load the SMB stack.
"""

import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobsync import __version__
from jobsync.config import ConfigOption
from jobsync.errors import ConfigError, ExitCode, SafetyRefusalError
from jobsync.windows.commands import deploy_app, schedule_app, secret_app, service_app

if TYPE_CHECKING:
    from jobsync.config.model import Config, PeerConfig
    from jobsync.result import StepOutcome


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"jobsync {__version__}")
        raise typer.Exit


app = typer.Typer(
    name="jobsync",
    help="Keep Integrify's scheduled jobs folder identical on every node.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Keep Integrify's scheduled jobs folder identical on every node."""


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
AsServicesNodeOption = Annotated[
    bool,
    typer.Option(
        "--as-services-node",
        help="Act as the services node even where [active] says standby (logged).",
    ),
]
PeerOption = Annotated[
    list[str] | None,
    typer.Option("--peer", help="Only this peer (repeatable).", metavar="NAME"),
]
_COMMON = (
    inspect.Parameter(
        "config_path", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOption
    ),
    inspect.Parameter(
        "verbose",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option("--verbose", "-v", help="Log debug events.")],
    ),
    inspect.Parameter(
        "log_json",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option("--log-json", help="Log JSON lines.")],
    ),
    inspect.Parameter(
        "log_file",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Path | None,
            typer.Option("--log-file", help="Also append logs to this file.", dir_okay=False),
        ],
    ),
)


def configured(
    *, console: int = logging.WARNING, logs: bool = True
) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """A command that reads the config: ``fn(config, **its own options)``.

    The common options are added to its signature for typer, and taken off before ``fn`` is
    called with the config they name. ``console`` is the least level logged on stderr; a
    command that logs nothing itself (``logs=False``) sets logging up only when asked to.
    """

    def decorate(fn: Callable[..., int]) -> Callable[..., int]:
        # This module does not postpone annotations, so typer's Annotated options are real here.
        own = inspect.signature(fn).parameters
        parameters = [p for name, p in own.items() if name != "config"]

        @functools.wraps(fn)
        def command(**options: Any) -> int:  # noqa: ANN401 - whatever typer parsed
            common = {p.name: options.pop(p.name) for p in _COMMON}
            asked = common["verbose"] or common["log_json"] or common["log_file"] is not None
            config = _setup(
                common["config_path"],
                verbose=common["verbose"],
                log_json=common["log_json"],
                log_file=common["log_file"],
                console=console,
                logs=logs or asked,
            )
            return fn(config, **options)

        command.__signature__ = inspect.Signature([*parameters, *_COMMON])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*parameters, *_COMMON]}
        return command

    return decorate


def _setup(
    config_path: Path | None,
    *,
    verbose: bool,
    log_json: bool,
    log_file: Path | None,
    console: int = logging.WARNING,
    logs: bool = True,
) -> "Config":
    from jobsync.config.load import find_config_path, load_config

    if not logs:
        return load_config(find_config_path(config_path))
    from jobsync.logs import configure_logging

    def logging_with(secrets: tuple[str, ...]) -> None:
        configure_logging(
            verbose=verbose,
            json_lines=log_json,
            log_file=log_file,
            console=console,
            secrets=secrets,
        )

    logging_with(())  # before the config is read, so its errors are reported
    config = load_config(find_config_path(config_path))
    logging_with(config.secrets())  # again, now that the secrets to hide are known
    return config


def _select(config: "Config", names: list[str] | None) -> tuple["PeerConfig", ...]:
    targets = config.target_peers
    if not names:
        return targets
    by_key = {p.name.casefold(): p for p in targets}
    chosen = []
    for name in names:
        peer = by_key.get(name.casefold())
        if peer is None:
            known = ", ".join(p.name for p in targets) or "none"
            raise ConfigError(f"--peer {name}: no such peer in {config.path} (peers: {known})")
        chosen.append(peer)
    return tuple(dict.fromkeys(chosen))


@contextmanager
def _exclusive(config: "Config", who: str, *, needed: bool = True) -> Iterator[str | None]:
    """Hold the node's work lock; yields None when held, else who is at work instead."""
    from jobsync.node import WorkLock

    if not needed:
        yield None
        return
    lock = WorkLock(config.state_dir, who=who)
    if not lock.acquire():
        yield lock.holder()
        return
    try:
        yield None
    finally:
        lock.release()


def _out(text: str) -> None:
    from jobsync.logs import secrets_hidden  # with structlog: not for --help

    typer.echo(secrets_hidden(text))


def _emit(
    *, as_json: bool, document: Callable[[], dict[str, Any]], lines: Callable[[], list[str]]
) -> None:
    """Print one JSON document, or the human lines."""
    if as_json:
        _out(json.dumps(document(), indent=2, ensure_ascii=False))
    else:
        for line in lines():
            _out(line)


@app.command()
@configured()
def push(
    config: "Config",
    peer: PeerOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option("--allow-mass-delete", help="Delete even beyond max_delete_ratio."),
    ] = False,
    as_services_node: AsServicesNodeOption = False,
    as_json: JsonOption = False,
) -> int:
    """Copy every changed job to the peers, atomically and verified (services node only)."""
    from jobsync.render import push_to_json, push_to_text
    from jobsync.sync.passes import PushOptions
    from jobsync.sync.peer_sync import push as run_push

    peers = _select(config, peer)
    options = PushOptions(dry_run=dry_run, allow_mass_delete=allow_mass_delete)
    if _standby(config, override=as_services_node, as_json=as_json, what="nothing pushed"):
        return int(ExitCode.OK)
    with _exclusive(config, "jobsync push", needed=not dry_run) as busy:
        if busy:
            # The other one (usually the agent) is doing this very job: nothing is lost.
            typer.echo(f"jobsync: {busy} is at work on this node; no push needed now", err=True)
            return int(ExitCode.OK)
        from jobsync.render import progress_bar

        progress = None if as_json else progress_bar()
        try:
            result = run_push(config, peers=peers, options=options, progress=progress)
        finally:
            if progress is not None:
                progress.close()
    _emit(
        as_json=as_json, document=lambda: push_to_json(result), lines=lambda: push_to_text(result)
    )
    return int(result.exit_code)


@app.command()
@configured()
def check(
    config: "Config",
    peer: PeerOption = None,
    as_json: JsonOption = False,
    fleet: Annotated[
        bool,
        typer.Option("--fleet", help="Check Integrify's load-balancing checklist on every node."),
    ] = False,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover", help="With --fleet: list the folder paths Integrify's files hold."
        ),
    ] = False,
) -> int:
    """Validate the config and prove each peer can take a push; judge the fleet too."""
    if fleet or discover:
        if peer:
            raise ConfigError("--peer does not apply to --fleet: the fleet check reads every node")
        return _fleet_check(config, as_json=as_json, discover=discover)
    from jobsync.errors import worst
    from jobsync.node import local_identity, publish, published_addresses
    from jobsync.node_setup import check as run_check
    from jobsync.node_setup import fleet_problems
    from jobsync.render import check_to_json, check_to_text
    from jobsync.role import decide

    decision = decide(config)
    me = local_identity(config, addresses=published_addresses(config))
    clash = publish(config.source, me) if config.source.is_dir() else None
    results = run_check(config, peers=_select(config, peer))
    problems = ([clash] if clash else []) + fleet_problems(config, me, results)
    head = f"{config.node} (host {me.host}) is {decision.name}: {decision.reason}"
    _emit(
        as_json=as_json,
        document=lambda: {
            "node": config.node,
            "role": decision.name,
            "role_reason": decision.reason,
            **check_to_json(results),
            "fleet_problems": problems,
        },
        lines=lambda: [head, *check_to_text(results), *(f"FLEET  {p}" for p in problems)],
    )
    codes = [r.exit_code for r in results] + ([ExitCode.USAGE] if problems else [])
    return int(worst(codes))


def _fleet_check(config: "Config", *, as_json: bool, discover: bool) -> int:
    """``check --fleet``: the report; ``--discover``: the path-like values, per node."""
    if discover:
        from jobsync.fleet_facts import discover_folders

        found = discover_folders(config)
        _emit(
            as_json=as_json,
            document=lambda: {"folders": [list(row) for row in found]},
            lines=lambda: (
                [f"{node}  {item}  {value}" for node, item, value in found]
                or ["no value in Integrify's files looks like a folder path"]
            ),
        )
        return int(ExitCode.OK)
    from jobsync.fleet_check import run_fleet_check
    from jobsync.render import fleet_to_text

    report = run_fleet_check(config)
    _emit(as_json=as_json, document=report.document, lines=lambda: fleet_to_text(report))
    return int(report.exit_code)


@app.command()
@configured()
def reconcile(
    config: "Config",
    peer: PeerOption = None,
    deep: Annotated[bool, typer.Option("--deep", help="Hash every file on every peer.")] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the peers match the source.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --apply: replace newer versions on peers too.")
    ] = False,
    as_services_node: AsServicesNodeOption = False,
    as_json: JsonOption = False,
) -> int:
    """Report drift between the source and each peer (exit 1 when found); --apply repairs it."""
    from jobsync.reconcile import ReconcileOptions
    from jobsync.reconcile import reconcile as run_reconcile
    from jobsync.render import reconcile_to_json, reconcile_to_text
    from jobsync.role import decide, standby_line

    if force and not apply:
        raise ConfigError("--force only makes sense with --apply")
    if as_services_node and not apply:
        raise ConfigError("--as-services-node only makes sense with --apply")
    if apply and not (decision := decide(config, override=as_services_node)).active:
        raise SafetyRefusalError(
            "reconcile --apply refused: " + standby_line(decision, what="nothing was changed")
        )
    options = ReconcileOptions(deep=deep, apply=apply, force=force)
    with _exclusive(config, "jobsync reconcile --apply", needed=apply) as busy:
        if busy:
            raise SafetyRefusalError(
                f"not applied: {busy} is at work on this node (the agent repairs drift itself "
                "at its next rescan)"
            )
        result = run_reconcile(config, peers=_select(config, peer), options=options)
    _emit(
        as_json=as_json,
        document=lambda: reconcile_to_json(result),
        lines=lambda: reconcile_to_text(result),
    )
    return int(result.exit_code)


@app.command()
@configured()
def takeover(
    config: "Config",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan only.")] = False,
    require_all: Annotated[
        bool, typer.Option("--require-all", help="Refuse unless every peer can be seen.")
    ] = False,
    as_json: JsonOption = False,
) -> int:
    """Make this node the services node: adopt the newest jobs, start a new epoch."""
    from jobsync.render import takeover_to_json, takeover_to_text
    from jobsync.takeover import takeover as run_takeover

    with _exclusive(config, "jobsync takeover", needed=not dry_run) as busy:
        if busy:
            raise SafetyRefusalError(
                f"takeover refused: {busy} is at work on this node; stop the jobsync agent "
                "service here first, take over, then start it again"
            )
        result = run_takeover(config, dry_run=dry_run, require_all=require_all)
    _emit(
        as_json=as_json,
        document=lambda: takeover_to_json(result),
        lines=lambda: takeover_to_text(result),
    )
    return int(result.exit_code)


@app.command()
@configured()
def failover(
    config: "Config",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Ask every node; change nothing; show the plan.")
    ] = False,
    old_node_down: Annotated[
        bool,
        typer.Option(
            "--old-node-down",
            help="Go on past a node whose services cannot be stopped (it is down).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> int:
    """Make this node the services node: fence, take over, start, repoint, prove."""
    from jobsync.failover.nodes import agent_set_aside
    from jobsync.failover.run import plan_lines, prepare
    from jobsync.failover.run import run as run_failover
    from jobsync.render import (
        failover_step_to_text,
        failover_to_json,
        failover_verdict,
    )

    def show(outcome: "StepOutcome") -> None:
        for line in failover_step_to_text(outcome):
            _out(line)

    move = prepare(
        config,
        dry_run=dry_run,
        old_node_down=old_node_down,
        on_step=(lambda _outcome: None) if as_json else show,
    )
    plan = plan_lines(move)
    if not as_json:
        for line in plan:
            _out(line)
    if dry_run:
        result = run_failover(move)
    else:
        with agent_set_aside(move) as notes:
            result = run_failover(move)
        result = replace(result, notes=tuple(notes))
    if as_json:
        _out(json.dumps(failover_to_json(result, plan), indent=2, ensure_ascii=False))
    else:
        for line in result.notes:
            _out(line)
        _out(failover_verdict(result))
    return int(result.exit_code)


@app.command()
@configured()
def init(
    config: "Config",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what it would do.")] = False,
    as_services_node: AsServicesNodeOption = False,
    as_json: JsonOption = False,
) -> int:
    """Install step of every node: record who it is; the services node claims the jobs."""
    from jobsync.node_setup import init as run_init
    from jobsync.render import init_to_json, init_to_text

    with _exclusive(config, "jobsync init", needed=not dry_run) as busy:
        # A running agent leaves init the identity and the owner's answer, not a claim.
        result = run_init(config, dry_run=dry_run, override=as_services_node, busy=busy)
    _emit(
        as_json=as_json,
        document=lambda: init_to_json(result),
        lines=lambda: init_to_text(result),
    )
    return int(result.exit_code)


@app.command()
@configured(console=logging.INFO)
def watch(config: "Config") -> int:
    """Run the agent: push every change as it happens, until stopped (Ctrl+C, SIGTERM)."""
    from jobsync.agent.runner import Agent, StopSignals

    agent = Agent(config)
    with StopSignals(agent.stop):
        agent.run()
    return int(ExitCode.OK)


@app.command()
@configured(logs=False)
def status(config: "Config", as_json: JsonOption = False) -> int:
    """Show what the agent last reported: role, peers, pending changes, last errors."""
    from jobsync.agent.view import read_state, state_document, state_path, view_from_document
    from jobsync.render import status_to_text

    where = state_path(config.state_dir)
    view = view_from_document(read_state(where))
    alive = view is not None and view.running and _pid_alive(view.pid)
    _emit(
        as_json=as_json,
        document=lambda: {
            "state_file": str(where),
            "agent_running": alive,
            "agent": None if view is None else state_document(view),
        },
        lines=lambda: status_to_text(view, where=str(where), alive=alive),
    )
    if not alive:
        return int(ExitCode.AGENT_NOT_RUNNING)
    failing = view is not None and any(p.last_error for p in view.peers)
    return int(ExitCode.PEER_FAILED if failing else ExitCode.OK)


def _standby(config: "Config", *, override: bool, as_json: bool, what: str) -> bool:
    """Whether this node is standby, which then changes nothing and says so in one line.

    A standby that finds another machine going by its name refuses instead (exit 4).
    """
    from jobsync.epoch import local_clash
    from jobsync.node import local_identity
    from jobsync.role import decide, standby_line

    decision = decide(config, override=override)
    if decision.active:
        return False
    if problem := local_clash(config.source, local_identity(config)):
        raise SafetyRefusalError(problem)
    line = standby_line(decision, what=what)
    _emit(
        as_json=as_json,
        document=lambda: {
            "node": config.node,
            "role": decision.name,
            "reason": decision.reason,
            "exit_code": int(ExitCode.OK),
            "message": line,
        },
        lines=lambda: [line],
    )
    return True


def _pid_alive(pid: object) -> bool:
    import psutil

    return isinstance(pid, int) and psutil.pid_exists(pid)


app.add_typer(service_app, name="service")
app.add_typer(schedule_app, name="schedule")
app.add_typer(deploy_app, name="deploy")
app.add_typer(secret_app, name="secret")


@app.command()
def version() -> int:
    """Print the version."""
    _out(f"jobsync {__version__}")
    return 0
