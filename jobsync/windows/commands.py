"""The Windows commands: ``jobsync service``, ``jobsync schedule`` and ``jobsync deploy``.

Each parses, calls the module that does the work, and prints; ``install.ps1`` in the Windows
bundle calls them. They change this machine only, never a peer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from jobsync.config import ConfigOption
from jobsync.errors import ExitCode

if TYPE_CHECKING:
    from jobsync import windows
    from jobsync.config.model import Config

service_app = typer.Typer(help="The Windows service that runs the agent (WinSW).")
schedule_app = typer.Typer(help="The scheduled task that runs the fallback push.")
deploy_app = typer.Typer(help="Hold jobsync still during an upgrade (install.ps1 -Upgrade).")
secret_app = typer.Typer(help="A peer's password, sealed for this machine (DPAPI).")


def _out(text: str) -> None:
    from jobsync.logs import secrets_hidden  # with structlog: not for --help

    typer.echo(secrets_hidden(text))


def _config(config_path: Path | None) -> Config:
    from jobsync.config.load import find_config_path, load_config

    return load_config(find_config_path(config_path))


def _windows(config_path: Path | None) -> tuple[Config, windows.Tools]:
    """The config and the real Windows tools (the runner looked up now, for tests)."""
    from jobsync import windows

    return _config(config_path), windows.Tools(run=windows.run_command, say=_out)


@service_app.command("xml")
def service_xml(config_path: ConfigOption = None) -> int:
    """Print the WinSW service definition for this config."""
    from jobsync.windows.install import service_xml as render

    typer.echo(render(_config(config_path)), nl=False)
    return int(ExitCode.OK)


@service_app.command("install")
def service_install(
    config_path: ConfigOption = None,
    winsw: Annotated[
        Path | None, typer.Option("--winsw", help="WinSW-x64.exe to install.", dir_okay=False)
    ] = None,
    winsw_sha256: Annotated[
        str | None, typer.Option("--winsw-sha256", help="Its SHA-256, from its release page.")
    ] = None,
    no_start: Annotated[bool, typer.Option("--no-start", help="Do not start it.")] = False,
) -> int:
    """Install the agent as a service (or refresh its definition), then start it."""
    from jobsync.windows.install import install_service
    from jobsync.windows.tasks import require_ready

    config, tools = _windows(config_path)
    require_ready(config, what="service")
    install_service(config, tools, winsw=winsw, winsw_sha256=winsw_sha256, start=not no_start)
    return int(ExitCode.OK)


@service_app.command("uninstall")
def service_uninstall(config_path: ConfigOption = None) -> int:
    """Stop and remove the service; the config, state and logs stay."""
    from jobsync.windows.install import uninstall_service

    uninstall_service(*_windows(config_path))
    return int(ExitCode.OK)


@service_app.command("check")
def service_check(config_path: ConfigOption = None) -> int:
    """Run `jobsync check` as the service's account (through a one-off scheduled task)."""
    from jobsync.windows.tasks import check_as_service

    code, output = check_as_service(*_windows(config_path))
    _out(output.rstrip("\n"))
    return code


@schedule_app.command("xml")
def schedule_xml(config_path: ConfigOption = None) -> int:
    """Print the Task Scheduler definition of the fallback push."""
    from jobsync.windows.tasks import task_xml

    typer.echo(task_xml(_config(config_path)), nl=False)
    return int(ExitCode.OK)


@schedule_app.command("install")
def schedule_install(config_path: ConfigOption = None) -> int:
    """Register (or replace) the fallback push task."""
    from jobsync.windows.tasks import install_task, require_ready

    config, tools = _windows(config_path)
    require_ready(config, what="task")
    install_task(config, tools)
    return int(ExitCode.OK)


@schedule_app.command("uninstall")
def schedule_uninstall(config_path: ConfigOption = None) -> int:
    """Remove the fallback push task."""
    from jobsync.windows.tasks import uninstall_task

    uninstall_task(*_windows(config_path))
    return int(ExitCode.OK)


@deploy_app.command("stop")
def deploy_stop(config_path: ConfigOption = None) -> int:
    """Stop the service and disable the task for an upgrade, noting what was running."""
    from jobsync.windows.upgrade import stop_for_upgrade

    stop_for_upgrade(*_windows(config_path))
    return int(ExitCode.OK)


@deploy_app.command("start")
def deploy_start(config_path: ConfigOption = None) -> int:
    """Start again what `deploy stop` stopped, with the new version's service definition."""
    from jobsync.windows.upgrade import start_after_upgrade

    start_after_upgrade(*_windows(config_path))
    return int(ExitCode.OK)


@secret_app.command("set")
def secret_set(
    peer: Annotated[str, typer.Argument(help="The peer whose user's password to store.")],
    config_path: ConfigOption = None,
) -> int:
    """Type a peer's password; it is sealed for this machine into the peer's password_file."""
    import getpass

    from jobsync import windows
    from jobsync.config.load import find_config_path, load_config
    from jobsync.credentials import platform_seal
    from jobsync.errors import ConfigError
    from jobsync.windows.install import secret_peer, store_secret

    seal = platform_seal()
    if seal is None:
        raise ConfigError("jobsync secret set needs Windows: the password is sealed with DPAPI")
    config = load_config(find_config_path(config_path), secrets=False)
    target = secret_peer(config, peer)
    prompt = f"Password of {target.username} for {target.name}: "
    typed = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != typed:
        raise ConfigError("the two passwords typed differ: nothing was stored")
    store_secret(config, target, typed, windows.Tools(say=_out), seal=seal[0])
    return int(ExitCode.OK)
