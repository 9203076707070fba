"""The ``jobsync`` entry point: run a command and exit with its documented code.

Errors end as one line on stderr, never a traceback: any :class:`JobsyncError` with its own
code, usage errors with 2. ``jobsync version`` and ``--version`` answer before anything else
is loaded; the commands themselves are in :mod:`jobsync.commands`.
"""

from __future__ import annotations

import sys

from jobsync import __version__


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with a documented code; errors are one line on stderr."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["version"], ["--version"]):
        print(f"jobsync {__version__}")  # noqa: T201 - the one line this command prints
        sys.exit(0)
    import typer

    from jobsync.commands import app
    from jobsync.errors import ExitCode, JobsyncError

    try:
        code = app(args=args, standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        typer.echo(f"jobsync: {exc.format_message()}", err=True)
        code = ExitCode.USAGE
    except typer.Abort:
        typer.echo("jobsync: interrupted", err=True)
        code = 130
    except JobsyncError as exc:
        from jobsync.logs import secrets_hidden

        typer.echo(f"jobsync: {secrets_hidden(str(exc))}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        typer.echo("jobsync: interrupted", err=True)
        code = 130
    sys.exit(int(code) if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
