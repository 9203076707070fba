"""``python -m jobsync.windows.probe --config FILE --result FILE``: check, and say how it went.

The task ``jobsync service check`` registers runs this as the service's account, where nobody
sees a console: it runs ``jobsync check`` in this process, and writes its exit code, what it
printed (secrets hidden, as always) and the account it ran as to the result file, in one step.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import json
import os
from pathlib import Path

from jobsync.cli import main as jobsync_main
from jobsync.redact import secrets_hidden
from jobsync.windows import write_atomically


def run_check(config: str) -> tuple[int, str]:
    """Run ``jobsync check --config CONFIG``; its exit code and everything it printed."""
    printed = io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            jobsync_main(["check", "--config", config])
        except SystemExit as exit_:
            code = exit_.code
    return (code if isinstance(code, int) else 1), printed.getvalue()


def account_name() -> str:
    """The account this process runs as, as Windows names it: DOMAIN, backslash, user."""
    domain = os.environ.get("USERDOMAIN")
    user = getpass.getuser()
    return f"{domain}\\{user}" if domain else user


def main(argv: list[str] | None = None) -> int:
    """Write the check's outcome to ``--result``; the exit code is the check's."""
    parser = argparse.ArgumentParser(prog="python -m jobsync.windows.probe")
    parser.add_argument("--config", required=True)
    parser.add_argument("--result", required=True, type=Path)
    args = parser.parse_args(argv)
    code, output = run_check(args.config)
    answer = {"exit_code": code, "output": secrets_hidden(output), "user": account_name()}
    write_atomically(args.result, json.dumps(answer, ensure_ascii=False) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
