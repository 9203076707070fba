"""jobsync failover: move the services, the jobs and the services name, and prove it.

The rooms: :mod:`.nodes` (who the nodes are, how each is reached, their healthcheck and
services), :mod:`.steps` (fence the services elsewhere, take the jobs over, start the services
here), :mod:`.repoint` with :mod:`.dns_update` and :mod:`.gss_tsig` (move the services name),
:mod:`.prove` (show that it all holds), and :mod:`.run`, which plays them in order.
"""
