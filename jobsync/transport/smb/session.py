"""What the channel knows of a logged-on session and its share, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobsync.transport.smb import statuses
from jobsync.transport.smb.security import Sealer, Signer


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one request: its NT status and its body (after the 64-byte header)."""

    status: int
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the server carried the request out."""
        return self.status == statuses.STATUS_SUCCESS


@dataclass(frozen=True)
class Limits:
    """The largest payloads the server accepts (its NEGOTIATE response, MS-SMB2 2.2.4)."""

    max_transact: int = 8 << 20
    max_read: int = 8 << 20
    max_write: int = 8 << 20


@dataclass(frozen=True)
class Session:
    """What the channel needs to know about a logged-on session and its share."""

    session_id: int
    tree_id: int
    dialect: int
    sealer: Sealer | None
    signer: Signer | None
    dfs: bool
    multi_credit: bool
    limits: Limits = field(default_factory=Limits)

    def describe(self) -> str:
        """The dialect and protection, e.g. "SMB 3.1.1, encrypted with AES-128-GCM"."""
        dialect = f"SMB {self.dialect >> 8}.{(self.dialect >> 4) & 0xF}.{self.dialect & 0xF}"
        dialect = dialect.removesuffix(".0")
        if self.sealer is not None:
            return f"{dialect}, encrypted with {self.sealer.name}"
        if self.signer is not None:
            return f"{dialect}, signed with {self.signer.name}"
        return f"{dialect}, neither signed nor encrypted"
