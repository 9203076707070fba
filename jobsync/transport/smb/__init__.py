"""The SMB transport: the only part of jobsync that imports smbprotocol."""

from jobsync.transport.smb.peer import SmbPeer

__all__ = ["SmbPeer"]
