"""A job that lands carries the permissions of a file created in the jobs folder.

On NTFS, and on Samba with ``vfs objects = acl_xattr``, a renamed file keeps the security
descriptor it was created with. If ``.jobsync``'s permissions differ from the jobs folder's (an
administrator tightened them, or inheritance is blocked), a job written there and renamed into
the jobs folder would lack the folder's inheritable entries, and Integrify's service account
might not read it. Here a second account may read the jobs folder through an inheritable entry
that ``.jobsync`` does not have.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from jobsync.config.load import load_config
from jobsync.epoch import LocalFence
from jobsync.scan import scan_source
from jobsync.sync.passes import PushOptions
from jobsync.sync.peer_sync import PeerSync
from jobsync.transport import default_opener
from jobsync.transport.base import FileWrite, Peer, WriteOutcome

from support.cluster import Cluster
from support.smbd import HOST, SHARE_NAME, TEST_USER, SambaPeer

pytestmark = pytest.mark.smb

READER, READER_PASSWORD = "jobsyncread", "Re4der-pw!"
# POSIX ACL entries (tag, permissions, id): Samba's acl_xattr turns a folder's default ACL into
# the inheritable entries of its NT security descriptor.
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def _posix_acl(entries: list[tuple[int, int, int]]) -> bytes:
    """The ``system.posix_acl_*`` xattr value (version 2, entries sorted by tag and id)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in sorted(entries))


def _set_acl(folder: Path, acl: bytes) -> None:
    os.setxattr(folder, "system.posix_acl_access", acl)
    os.setxattr(folder, "system.posix_acl_default", acl)


def _read_as_reader(samba: SambaPeer, path: str) -> subprocess.CompletedProcess[str]:
    command = ["smbclient", f"//{HOST}/{SHARE_NAME}", "-p", str(samba.port)]
    return subprocess.run(
        [*command, "-U", f"{READER}%{READER_PASSWORD}", "-c", f"get {path} /dev/null"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _acl_cluster(cluster_of: Callable[..., Cluster], *, tightened: bool) -> Cluster:
    """A peer with ``acl_xattr`` whose jobs folder a second account may read.

    ``tightened``: ``.jobsync`` and ``.jobsync/tmp`` do not pass that account's entry on.
    """
    cluster = cluster_of(
        options=("map acl inherit = yes",),
        share_options=(
            "vfs objects = acl_xattr",
            f"valid users = {TEST_USER} {READER}",
            "create mask = 0600",
            "force create mode = 0600",
        ),
    )
    samba = cluster.smb["node2"]
    reader = samba.add_user(READER, READER_PASSWORD)
    jobs = cluster.disk("node2")
    state = samba.mkdir("jobs", ".jobsync")
    tmp = samba.mkdir("jobs", ".jobsync", "tmp")
    readable = _posix_acl(
        [
            (_USER_OBJ, 7, _NO_ID),
            (_USER, 5, reader.pw_uid),
            (_GROUP_OBJ, 5, _NO_ID),
            (_MASK, 7, _NO_ID),
            (_OTHER, 0, _NO_ID),
        ]
    )
    owner_only = _posix_acl([(_USER_OBJ, 7, _NO_ID), (_GROUP_OBJ, 0, _NO_ID), (_OTHER, 0, _NO_ID)])
    for folder in (jobs, state, tmp):
        _set_acl(folder, owner_only if tightened and folder != jobs else readable)
    return cluster


def _push_twice(cluster: Cluster) -> str:
    """Push a new job, then a changed one and another new one; the second push's log."""
    cluster.write_job("a.jobs", b"<job/>")
    assert cluster.run("push").code == 0
    cluster.write_job("a.jobs", b"<job changed/>")  # a replaced job too
    cluster.write_job("b.jobs", b"<job b/>")
    second = cluster.run("push", "-v")
    assert second.code == 0, second.err
    return second.err


def test_a_landed_job_is_readable_by_whoever_may_read_the_jobs_folder(
    one_peer_cluster: Callable[..., Cluster],
) -> None:
    """A reader allowed in the jobs folder, but not in ``.jobsync``, can read every pushed job.

    A file created in ``.jobsync/tmp`` would not carry the reader's entry, so jobs are written
    beside the jobs here; ``jobsync check`` says so and does the same.
    """
    cluster = _acl_cluster(one_peer_cluster, tightened=True)
    samba = cluster.smb["node2"]

    checked = cluster.run("check")
    assert checked.code == 0, checked.err
    assert "jobs are written beside the jobs" in checked.out
    log = _push_twice(cluster)
    assert "folder=.jobsync/tmp" not in log

    for name in ("a.jobs", "b.jobs"):
        read = _read_as_reader(samba, f"jobs\\{name}")
        assert read.returncode == 0, read.stdout + read.stderr
    # The reader's access really depends on the folder's entry: .jobsync stays closed to it.
    assert _read_as_reader(samba, "jobs\\.jobsync\\manifest.json").returncode != 0


def test_jobs_are_written_in_jobsync_tmp_when_it_gives_the_same_permissions(
    one_peer_cluster: Callable[..., Cluster],
) -> None:
    """Where ``.jobsync/tmp`` passes on the jobs folder's entries, jobs are written there.

    Samba looks each new name up in the whole jobs folder, so a temp created beside the jobs
    doubles that cost in a large folder; the landed jobs are as readable either way.
    """
    cluster = _acl_cluster(one_peer_cluster, tightened=False)
    samba = cluster.smb["node2"]

    checked = cluster.run("check")
    assert checked.code == 0, checked.err
    assert "jobs are written in .jobsync/tmp" in checked.out
    log = _push_twice(cluster)
    assert "job_temps" in log
    assert "folder=.jobsync/tmp" in log

    for name in ("a.jobs", "b.jobs"):
        read = _read_as_reader(samba, f"jobs\\{name}")
        assert read.returncode == 0, read.stdout + read.stderr
    assert _read_as_reader(samba, "jobs\\.jobsync\\manifest.json").returncode == 0


def test_a_default_samba_share_gives_jobsync_tmp_the_same_permissions(
    one_peer_cluster: Callable[..., Cluster],
) -> None:
    """Without ``acl_xattr`` permissions come from the create mask: the same in both places."""
    cluster = one_peer_cluster()
    checked = cluster.run("check")
    assert checked.code == 0, checked.err
    assert "jobs are written in .jobsync/tmp" in checked.out


class TempRecorder:
    """Wraps a real peer; notes the temp name of every write and every permissions probe."""

    def __init__(self, inner: Peer) -> None:
        """Pass everything on to ``inner``."""
        self.name = inner.name
        self._inner = inner
        self.temps: list[str] = []
        self.probes = 0

    def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
        """Note each job's temp name (not the manifest's), then write through the real peer."""
        self.temps += [w.temp for w in writes if w.path.endswith(".jobs")]
        return self._inner.write_files(writes)

    def new_file_permissions(self, paths: Sequence[str]) -> Mapping[str, bytes | None]:
        """Count the probe, then make it on the real peer."""
        self.probes += 1
        return self._inner.new_file_permissions(paths)

    def __getattr__(self, name: str) -> object:
        """Everything else goes to the real peer."""
        return getattr(self._inner, name)


def test_a_pass_probes_once_when_it_copies_and_a_pass_over_names_reuses_it(
    one_peer_cluster: Callable[..., Cluster],
) -> None:
    """A full pass probes before its first copy (none without one); passes over names reuse it."""
    cluster = one_peer_cluster()
    config = load_config(cluster.config)
    target = config.target_peers[0]
    sync = PeerSync(
        target, config=config, options=PushOptions(), fence=LocalFence(config.source, config.node)
    )
    peer = TempRecorder(default_opener(target, 5))
    fake: Peer = peer  # type: ignore[assignment]

    def pass_over(names: set[str] | None = None) -> tuple[str, ...]:
        scan = scan_source(config.source, config.pattern)
        result = sync.sync(fake, scan, names=names)
        assert result.status == "ok", result
        return result.copied

    try:
        cluster.write_job("a.jobs", b"a1")
        cluster.write_job("b.jobs", b"b1")
        assert pass_over() == ("a.jobs", "b.jobs")
        assert peer.probes == 1
        cluster.write_job("a.jobs", b"a2")
        assert pass_over({"a.jobs"}) == ("a.jobs",)
        assert peer.probes == 1
        assert pass_over() == ()
        assert peer.probes == 1
        cluster.write_job("b.jobs", b"b2")
        assert pass_over() == ("b.jobs",)
        assert peer.probes == 2
    finally:
        peer.close()

    assert len(peer.temps) == 4
    assert all(t.startswith(".jobsync/tmp/") for t in peer.temps), peer.temps
    assert (cluster.disk("node2") / "a.jobs").read_bytes() == b"a2"
