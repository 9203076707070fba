"""The Windows Application log: which events reach it, with which IDs, and nothing else.

The handler is fed by jobsync's real logging pipeline (structlog, redaction); only the call
into the Windows API is replaced by a list, as this system has no Event Log.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from jobsync.logs import (
    ERROR,
    EVENTS,
    INFORMATION,
    WARNING,
    EventLogHandler,
    configure_logging,
    get_logger,
    register_commands,
    windows_report,
)

from support.windows_fake import FakeWindows, fake_winsw, node_config

ROOT = Path(__file__).resolve().parents[2]
Reported = list[tuple[int, int, str]]


@pytest.fixture
def reported() -> Reported:
    """What reached the Application log, as (event ID, type, text)."""
    found: Reported = []
    configure_logging(
        console=logging.INFO,
        secrets=["s3cret-password"],
        event_log=EventLogHandler(lambda *entry: found.append(entry)),
    )
    return found


def test_failures_role_changes_fencing_takeovers_and_restarts_are_reported(
    reported: Reported,
) -> None:
    """Each event of the table arrives with its ID and a type that follows its level."""
    log = get_logger("jobsync.test")
    log.error("peer_failed", peer="node3", error="logon failed for s3cret-password")
    log.warning("role_changed", role="active", reason="services run here")
    log.warning("push_fenced", reason="node2 took over at epoch 3")
    log.warning("took_over", node="node2", epoch=3)
    log.error("worker_restarted", peer="node3")
    assert [(event_id, kind) for event_id, kind, _ in reported] == [
        (2001, ERROR),
        (3001, WARNING),
        (4001, WARNING),
        (5001, WARNING),
        (6001, ERROR),
    ]
    text = reported[0][2]
    assert text.startswith("peer_failed: peer=node3 error=logon failed for ")
    assert "s3cret-password" not in text


def test_routine_events_and_library_lines_are_not_reported(reported: Reported) -> None:
    """A pass that copied a job, the agent starting, a library's own line: none of them."""
    get_logger("jobsync.test").info("peer_pushed", peer="node2", copied=1)
    get_logger("jobsync.test").info("agent_started", node="node1")
    logging.getLogger("smbprotocol").warning("a library's own warning")
    assert reported == []


def test_an_information_event_is_reported_as_information() -> None:
    """The type follows the record's level: INFO is information."""
    found: Reported = []
    handler = EventLogHandler(lambda *entry: found.append(entry))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, {"event": "took_over"}, None, None)
    handler.emit(record)
    assert found == [(5001, INFORMATION, "took_over")]


def test_the_agents_routine_lines_go_to_stdout_and_its_problems_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """So the service's err.log holds what went wrong, and out.log the routine."""
    configure_logging(console=logging.INFO, event_log=EventLogHandler(lambda *_: None))
    log = get_logger("jobsync.test")
    log.info("peer_pushed", peer="node2")
    log.warning("peer_failed", peer="node3")
    out, err = capsys.readouterr()
    assert "peer_pushed" in out
    assert "peer_pushed" not in err
    assert "peer_failed" in err
    assert "peer_failed" not in out


def test_the_event_ids_are_those_docs_windows_md_lists() -> None:
    """docs/windows.md's table of event IDs is the table in the code, row by row."""
    text = (ROOT / "docs" / "windows.md").read_text(encoding="utf-8")
    rows = re.findall(r"^ *\| (\d{4}) \| `([a-z_]+)` \|", text, re.MULTILINE)
    assert [(int(i), name) for i, name in rows] == [(i, name) for name, (i, _) in EVENTS.items()]
    assert len({i for i, _ in EVENTS.values()}) == len(EVENTS)


def test_the_source_is_registered_at_install_and_removed_at_uninstall(tmp_path: Path) -> None:
    """Service install registers the jobsync source (once); uninstall removes it."""
    from jobsync.windows.install import install_service, uninstall_service

    config = node_config(tmp_path)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    assert windows.event_sources == {"jobsync"}
    assert register_commands() in windows.commands
    uninstall_service(config, windows.tools())
    assert windows.event_sources == set()


def test_no_event_log_off_windows() -> None:
    """Elsewhere there is no Application log to write to."""
    assert windows_report() is None
