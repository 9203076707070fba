"""jobsync failover: move the services, the jobs and the services name, and prove it.

The stages, each its own room: :mod:`.nodes` (who the nodes are and how each is reached),
:mod:`.fence` (stop the services everywhere else), the takeover (:mod:`jobsync.takeover`),
:mod:`.start` (start them here), :mod:`.repoint` with :mod:`.hosts_file` and
:mod:`.dns_update` (move the services name), :mod:`.healthcheck` and :mod:`.prove` (show that
it all holds), and :mod:`.run`, which plays them in order.
"""
