"""The agent hands memory freed after a large pass back to the system."""

from __future__ import annotations

import sys

import psutil
import pytest

from jobsync.agent.workers import release_freed_memory

MIB = 2**20


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim; a no-op elsewhere")
def test_freed_memory_goes_back_to_the_system() -> None:
    """Blocks freed between live ones stay resident until trimmed; then they are returned."""
    kept, dropped = [], []
    for i in range(100_000):  # 2 KB blocks come from malloc, not Python's small-object pools
        (kept if i % 10 == 0 else dropped).append(bytes(2048) + i.to_bytes(4, "little"))
    dropped.clear()
    before = psutil.Process().memory_info().rss
    release_freed_memory()
    after = psutil.Process().memory_info().rss
    assert before - after > 50 * MIB, (before // MIB, after // MIB)
    assert len(kept) == 10_000
