"""The agent behind ``jobsync watch``: live replication from the services node."""
