"""The ``jobsync`` command line: parse, call, render. Nothing else lives here.

Every command returns an exit code; :func:`main` maps any :class:`JobsyncError` to its code
with one line on stderr, so bad input never shows a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from jobsync import __version__
from jobsync.config import Config, PeerConfig, find_config_path, load_config
from jobsync.errors import ConfigError, ExitCode, JobsyncError, SafetyRefusalError
from jobsync.logs import configure_logging, secrets_hidden
from jobsync.options import ConfigOption
from jobsync.windows.commands import deploy_app, schedule_app, service_app

app = typer.Typer(
    name="jobsync",
    help="Keep Integrify's scheduled jobs folder identical on every node.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log debug events.")]
LogJsonOption = Annotated[bool, typer.Option("--log-json", help="Log JSON lines.")]
LogFileOption = Annotated[
    Path | None, typer.Option("--log-file", help="Also append logs to this file.", dir_okay=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
PeerOption = Annotated[
    list[str] | None,
    typer.Option("--peer", help="Only this peer (repeatable).", metavar="NAME"),
]


def _setup(
    config_path: Path | None,
    *,
    verbose: bool,
    log_json: bool,
    log_file: Path | None,
    console: int = logging.WARNING,
) -> Config:
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


def _select(config: Config, names: list[str] | None) -> tuple[PeerConfig, ...]:
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
def _exclusive(config: Config, who: str, *, needed: bool = True) -> Iterator[str | None]:
    """Hold the node's work lock; yields None when held, else who is at work instead."""
    from jobsync.lock import WorkLock  # noqa: PLC0415

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
def push(
    config_path: ConfigOption = None,
    peer: PeerOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option("--allow-mass-delete", help="Delete even beyond max_delete_ratio."),
    ] = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    log_json: LogJsonOption = False,
    log_file: LogFileOption = None,
) -> int:
    """Copy every changed job to the peers, atomically and verified."""
    from jobsync.render import push_to_json, push_to_text  # noqa: PLC0415
    from jobsync.sync import PushOptions  # noqa: PLC0415 - keeps `--help` fast
    from jobsync.sync import push as run_push  # noqa: PLC0415

    config = _setup(config_path, verbose=verbose, log_json=log_json, log_file=log_file)
    peers = _select(config, peer)
    options = PushOptions(dry_run=dry_run, allow_mass_delete=allow_mass_delete)
    with _exclusive(config, "jobsync push", needed=not dry_run) as busy:
        if busy:
            # The other one (usually the agent) is doing this very job: nothing is lost.
            typer.echo(f"jobsync: {busy} is at work on this node; no push needed now", err=True)
            return int(ExitCode.OK)
        progress = None if as_json else _progress_bar()
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
def check(
    config_path: ConfigOption = None,
    peer: PeerOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    log_json: LogJsonOption = False,
    log_file: LogFileOption = None,
) -> int:
    """Validate the config and prove each peer can take a push."""
    from jobsync.check import check as run_check  # noqa: PLC0415
    from jobsync.render import check_to_json, check_to_text  # noqa: PLC0415
    from jobsync.result import worst  # noqa: PLC0415

    config = _setup(config_path, verbose=verbose, log_json=log_json, log_file=log_file)
    results = run_check(config, peers=_select(config, peer))
    _emit(
        as_json=as_json,
        document=lambda: check_to_json(results),
        lines=lambda: check_to_text(results),
    )
    return int(worst(r.exit_code for r in results))


@app.command()
def reconcile(
    config_path: ConfigOption = None,
    peer: PeerOption = None,
    deep: Annotated[bool, typer.Option("--deep", help="Hash every file on every peer.")] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the peers match the source.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --apply: replace newer versions on peers too.")
    ] = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    log_json: LogJsonOption = False,
    log_file: LogFileOption = None,
) -> int:
    """Report drift between the source and each peer (exit 1 when found); --apply repairs it."""
    from jobsync.reconcile import ReconcileOptions  # noqa: PLC0415
    from jobsync.reconcile import reconcile as run_reconcile  # noqa: PLC0415
    from jobsync.render import reconcile_to_json, reconcile_to_text  # noqa: PLC0415

    if force and not apply:
        raise ConfigError("--force only makes sense with --apply")
    config = _setup(config_path, verbose=verbose, log_json=log_json, log_file=log_file)
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
def takeover(
    config_path: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan only.")] = False,
    require_all: Annotated[
        bool, typer.Option("--require-all", help="Refuse unless every peer can be seen.")
    ] = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    log_json: LogJsonOption = False,
    log_file: LogFileOption = None,
) -> int:
    """Make this node the services node: adopt the newest jobs, start a new epoch."""
    from jobsync.render import takeover_to_json, takeover_to_text  # noqa: PLC0415
    from jobsync.takeover import takeover as run_takeover  # noqa: PLC0415

    config = _setup(config_path, verbose=verbose, log_json=log_json, log_file=log_file)
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
def watch(
    config_path: ConfigOption = None,
    verbose: VerboseOption = False,
    log_json: LogJsonOption = False,
    log_file: LogFileOption = None,
) -> int:
    """Run the agent: push every change as it happens, until stopped (Ctrl+C, SIGTERM)."""
    from jobsync.agent.runner import Agent  # noqa: PLC0415

    config = _setup(
        config_path, verbose=verbose, log_json=log_json, log_file=log_file, console=logging.INFO
    )
    agent = Agent(config)

    def on_signal(_signum: int, _frame: object) -> None:
        agent.stop()

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):  # SIGBREAK: Ctrl+Break on Windows
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    agent.run()
    return int(ExitCode.OK)


@app.command()
def status(
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> int:
    """Show what the agent last reported: role, peers, pending changes, last errors."""
    from jobsync.agent.state import read_state, state_path  # noqa: PLC0415
    from jobsync.render import status_to_text  # noqa: PLC0415
    from jobsync.result import state_document, view_from_document  # noqa: PLC0415

    config = _setup(config_path, verbose=verbose, log_json=False, log_file=None)
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


def _pid_alive(pid: object) -> bool:
    import psutil  # noqa: PLC0415

    return isinstance(pid, int) and psutil.pid_exists(pid)


app.add_typer(service_app, name="service")
app.add_typer(schedule_app, name="schedule")
app.add_typer(deploy_app, name="deploy")


@app.command()
def version() -> int:
    """Print the version."""
    _out(f"jobsync {__version__}")
    return 0


class _ProgressBar:
    """A progress bar on stderr for long pushes, shown only on a terminal."""

    THRESHOLD = 200  # files; shorter pushes finish before a bar helps

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, peer: str, done: int, total: int) -> None:
        if total < self.THRESHOLD:
            return
        with self._lock:
            if self._bar is None:
                from rich.console import Console  # noqa: PLC0415
                from rich.progress import Progress  # noqa: PLC0415

                self._bar = Progress(console=Console(stderr=True), transient=True)
                self._bar.start()
            if peer not in self._tasks:
                self._tasks[peer] = self._bar.add_task(peer, total=total)
            self._bar.update(self._tasks[peer], completed=done)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()


def _progress_bar() -> _ProgressBar | None:
    return _ProgressBar() if sys.stderr.isatty() else None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with a documented code; errors are one line on stderr."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        typer.echo(f"jobsync: {exc.format_message()}", err=True)
        code = ExitCode.USAGE
    except typer.Abort:
        typer.echo("jobsync: interrupted", err=True)
        code = 130
    except JobsyncError as exc:
        typer.echo(f"jobsync: {secrets_hidden(str(exc))}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        typer.echo("jobsync: interrupted", err=True)
        code = 130
    sys.exit(int(code) if isinstance(code, int) else 0)
