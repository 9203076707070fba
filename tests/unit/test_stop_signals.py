"""A stop signal reaches the agent even when it lands while the main thread holds a lock.

Each case runs in a process of its own: signals are per process, and a process that deadlocks
ignores every later SIGTERM, so a failing case is killed (SIGKILL) when its deadline passes.
The cases send POSIX signals (SIGTERM, SIGUSR1), as the suite runs on Linux; on Windows the
same class takes Ctrl+C and Ctrl+Break, which a test cannot send to its own console.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

DEADLINE_SECONDS = 20.0


def _run(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter; a hang is killed at the deadline."""
    code = textwrap.dedent(body)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process hung after the signal and was killed: {out}{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_signal_while_the_main_thread_holds_the_events_lock_still_stops() -> None:
    """The moment of the hang: the main thread inside ``Event.wait()`` holding its lock.

    A handler that called ``stop`` itself would wait there for its own thread's lock forever.
    """
    done = _run(
        """
        import os, signal, threading, time
        from jobsync.agent.runner import StopSignals

        stopping = threading.Event()
        callers = []

        def stop():
            callers.append(threading.current_thread().name)
            stopping.set()

        with StopSignals(stop):
            with stopping._cond:  # as inside Event.wait() or Event.clear()
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # bytecodes: the Python-level handler runs among them
                    time.sleep(0)
            assert stopping.wait(10), "stop was never called"
        print("stopped by", callers)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped by ['stop-signals']"


def test_every_stop_signal_stops_and_is_given_back_after() -> None:
    """SIGINT and SIGTERM each call ``stop``; after the block the old handlers are back."""
    done = _run(
        """
        import os, signal, threading
        from jobsync.agent.runner import StopSignals

        calls = threading.Semaphore(0)
        before = signal.getsignal(signal.SIGTERM)
        with StopSignals(calls.release):
            for number in (signal.SIGINT, signal.SIGTERM):
                os.kill(os.getpid(), number)
                assert calls.acquire(timeout=10), f"signal {number} did not stop"
        assert signal.getsignal(signal.SIGTERM) is before
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.set_wakeup_fd(-1) == -1, "the wake-up socket was left set"
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_signal_that_is_not_a_stop_does_not_stop() -> None:
    """Another handled signal writes to the same socket; it is told apart by its number.

    The block's end reads the socket to its end, so every byte has been judged by then.
    """
    done = _run(
        """
        import os, signal, threading
        from jobsync.agent.runner import StopSignals

        calls = []
        signal.signal(signal.SIGUSR1, lambda *_: None)
        with StopSignals(lambda: calls.append("stop")):
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGTERM)
        print(calls)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['stop']"
