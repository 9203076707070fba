"""Real headless Chromium for tests, driven over the DevTools protocol on a pipe.

Chromium's ``--remote-debugging-pipe`` reads protocol messages (JSON, each ended by a NUL
byte) on fd 3 and writes its answers and events on fd 4: no WebSocket library, no driver
binary, no port. Everything runs on the calling thread, with a deadline on every wait.

As root Chromium needs ``--no-sandbox``; the other flags keep it off the network (the machine
has none) and away from any profile but a fresh one.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

DEADLINE = 30.0
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


# Runs in the child: fds 3 and 4 may be in use by the parent, so the pipe travels on fds >= 10.
_TRAMPOLINE = (
    "import os, sys\n"
    "os.dup2(int(sys.argv[1]), 3)\n"
    "os.dup2(int(sys.argv[2]), 4)\n"
    "os.close(int(sys.argv[1]))\n"
    "os.close(int(sys.argv[2]))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose two ends are fds 10 or above (clear of 3 and 4)."""
    read, write = os.pipe()
    high = (
        fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10),
        fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, 10),
    )
    os.close(read)
    os.close(write)
    return high


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer; the message says why."""


def chromium_binary() -> str:
    """Debian's ``chromium`` (installed by scripts/test.sh)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise BrowserError("chromium not found (scripts/test.sh installs Debian's chromium)")
    return found


class Browser:
    """One headless Chromium with a fresh profile; use as a context manager."""

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 900) -> None:
        """Prepare a browser whose profile lives in ``profile`` (a fresh folder)."""
        self._profile = profile
        self._size = (width, height)
        self._process: subprocess.Popen[bytes] | None = None
        self._to: int = -1
        self._from: int = -1
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self._log: IO[bytes] | None = None
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:  # noqa: PYI034 - typing.Self needs Python 3.11
        """Start Chromium and open one page."""
        to_read, to_write = _high_pipe()
        from_read, from_write = _high_pipe()
        width, height = self._size
        self._log = (self._profile.parent / "chromium.log").open("wb")
        # Chromium wants the pipe on fds 3 and 4: a small trampoline moves it there.
        command = [
            sys.executable,
            "-c",
            _TRAMPOLINE,
            str(to_read),
            str(from_write),
            chromium_binary(),
            *FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            command,
            pass_fds=(to_read, from_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_read)
        os.close(from_write)
        self._to, self._from = to_write, from_read
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Network.enable")
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close Chromium (killed if it does not go)."""
        process = self._process
        if process is None:
            return
        try:
            self._session = None
            self.send("Browser.close", timeout=5)
        except BrowserError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for fd in (self._to, self._from):
            os.close(fd)
        if self._log is not None:
            self._log.close()
        self._process = None

    # -- the protocol -----------------------------------------------------------------------

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = DEADLINE
    ) -> dict[str, Any]:
        """Call ``method`` (on the page once one is open) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline, waiting_for=method)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})  # type: ignore[no-any-return]
            self.events.append(answer)

    def wait_event(self, method: str, *, timeout: float = DEADLINE) -> dict[str, Any]:
        """The first event named ``method`` not yet taken (waiting for it if need be)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(self._read(deadline, waiting_for=method))

    def _read(self, deadline: float, *, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from Chromium for {waiting_for}")
            ready, _, _ = select.select([self._from], [], [], left)
            if ready:
                chunk = os.read(self._from, 1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium closed the pipe while waiting for {waiting_for}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)  # type: ignore[no-any-return]

    # -- what a test needs ------------------------------------------------------------------

    def load(self, url: str) -> None:
        """Open ``url`` and wait until it has loaded."""
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it, not the page)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return answer["result"].get("value")

    def visible_text(self) -> str:
        """The page's text as a person sees it (``innerText`` follows the CSS)."""
        return str(self.evaluate("document.body.innerText"))

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since it was loaded."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def screenshot(self, path: Path) -> None:
        """Save the whole page, not just the window, as a PNG."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
