"""A DFS namespace in a peer's path: refused in words, never written to by guesswork.

jobsync does not follow DFS referrals (the jobs folder lives on each Integrify node's own
disk, so a namespace in front of it only adds a hop); it says to name the target share.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.cluster import Cluster

pytestmark = pytest.mark.smb


@pytest.mark.parametrize("through_link", [True, False], ids=["dfs-link", "dfs-root-folder"])
def test_a_dfs_namespace_is_refused_with_what_to_configure(
    one_peer_cluster: Callable[..., Cluster], through_link: bool
) -> None:
    """A share that is a DFS root (``msdfs root = yes``) is refused by check and push alike.

    Whether the path goes through an ``msdfs:`` link or names a real folder in the root,
    nothing is written, and the message says to name the target server's share.
    """
    parts = ("link", "jobs") if through_link else ("plain", "jobs")
    cluster = one_peer_cluster(
        *parts,
        create=False,
        options=("host msdfs = yes",),
        share_options=("msdfs root = yes",),
    )
    samba = cluster.smb["node2"]
    target = samba.mkdir("target", "jobs")
    samba.mkdir("plain", "jobs")
    (samba.share_path / "link").symlink_to("msdfs:127.0.0.1\\jobs\\target")
    cluster.write_job("a.jobs", b"a")

    checked = cluster.run("check")
    pushed = cluster.run("push")

    for run in (checked, pushed):
        assert run.code == 3, run
        assert "is a DFS namespace, which jobsync does not follow" in run.out
        assert "name the share of the server that holds the jobs folder" in run.out
    assert not any(target.iterdir())
    assert not any((samba.share_path / "plain" / "jobs").iterdir())
