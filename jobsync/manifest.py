"""The record each peer keeps of what jobsync wrote there: ``.jobsync/manifest.json``.

Per file it holds the SHA-256, size and write time of the version jobsync wrote, the node it
came from and when. A peer file whose size and write time still match its record is known
without reading it; anything else is read and hashed. A manifest that does not parse is never
trusted: the caller sets it aside and treats the peer as unknown, which only costs reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from jobsync.names import name_key, windows_name_problem

FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestCorruptError(ValueError):
    """The manifest does not parse or names something that cannot be a job file."""


@dataclass(frozen=True)
class ManifestEntry:
    """What jobsync wrote for one file."""

    name: str
    sha256: str
    size: int
    mtime_ns: int
    origin: str
    written: str


@dataclass(frozen=True)
class Manifest:
    """Every file jobsync wrote to one peer, keyed case-insensitively."""

    node: str = ""
    updated: str = ""
    entries: Mapping[str, ManifestEntry] = field(default_factory=dict)

    def get(self, name: str) -> ManifestEntry | None:
        """The record for ``name``, compared as Windows compares names."""
        return self.entries.get(name_key(name))

    def with_entries(
        self, *, node: str, updated: str, entries: Mapping[str, ManifestEntry]
    ) -> Manifest:
        """A new manifest holding exactly ``entries``."""
        return Manifest(node=node, updated=updated, entries=dict(entries))


def manifest_to_bytes(manifest: Manifest) -> bytes:
    """Serialise a manifest as stable, readable JSON."""
    files = {
        e.name: {
            "sha256": e.sha256,
            "size": e.size,
            "mtime_ns": e.mtime_ns,
            "origin": e.origin,
            "written": e.written,
        }
        for e in sorted(manifest.entries.values(), key=lambda e: name_key(e.name))
    }
    doc = {"format": FORMAT, "node": manifest.node, "updated": manifest.updated, "files": files}
    # Compact on purpose: with indent, json falls back to its pure-Python encoder (10x slower).
    return (json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def manifest_from_bytes(data: bytes) -> Manifest:
    """Parse a manifest, refusing anything that is not exactly what jobsync writes."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestCorruptError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestCorruptError("not a jobsync manifest of a known format")
    files = doc.get("files")
    node, updated = doc.get("node", ""), doc.get("updated", "")
    if not isinstance(files, dict) or not isinstance(node, str) or not isinstance(updated, str):
        raise ManifestCorruptError("missing or malformed keys")
    entries: dict[str, ManifestEntry] = {}
    for name, raw in files.items():
        entry = _entry(name, raw)
        entries[name_key(name)] = entry
    return Manifest(node=node, updated=updated, entries=entries)


def _entry(name: str, raw: Any) -> ManifestEntry:  # noqa: ANN401 - untrusted JSON
    # A name with a separator or '..' could steer a write or delete outside the jobs folder.
    if windows_name_problem(name) is not None or name in (".", ".."):
        raise ManifestCorruptError(f"names an impossible file {name!r}")
    if not isinstance(raw, dict):
        raise ManifestCorruptError(f"entry for {name!r} is not an object")
    sha, size, mtime = raw.get("sha256"), raw.get("size"), raw.get("mtime_ns")
    origin, written = raw.get("origin", ""), raw.get("written", "")
    if not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise ManifestCorruptError(f"entry for {name!r} has no valid sha256")
    if not (_is_count(size) and _is_count(mtime)):
        raise ManifestCorruptError(f"entry for {name!r} has an invalid size or time")
    if not isinstance(origin, str) or not isinstance(written, str):
        raise ManifestCorruptError(f"entry for {name!r} has an invalid origin")
    return ManifestEntry(
        name=name, sha256=sha, size=size, mtime_ns=mtime, origin=origin, written=written
    )


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
