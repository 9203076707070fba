"""jobsync: keeps Integrify's scheduled jobs folder identical on every node of a cluster."""

__version__ = "0.3.0"
