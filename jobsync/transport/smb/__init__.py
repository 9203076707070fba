"""The SMB transport: the only part of jobsync that imports smbprotocol."""
