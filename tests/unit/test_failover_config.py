"""``[failover]`` and the peers' ``address``: what the failover is told, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobsync.config.load import load_config
from jobsync.config.model import Config
from jobsync.errors import ConfigError
from jobsync.failover.nodes import fleet_nodes, healthcheck_url

BASE = r"""
node = "node1"
node_differs_from_host = true
source = '/srv/integrify/jobs'
[[peers]]
name = "node1"
path = '\\node1\integrify$\jobs'
address = "10.0.0.11"
[[peers]]
name = "node2"
path = '\\node2\integrify$\jobs'
address = "10.0.0.12"
admin_share = "D$"
"""
FAILOVER = """
[failover]
services = ["IntegrifyScheduler", "IntegrifyWorker"]
repoint = "hosts"
services_name = "integrify-services.example.com"
"""


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "jobsync.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def test_a_failover_table_gives_its_values_and_documented_defaults(tmp_path: Path) -> None:
    """Services in start order, the method, the name; timeouts and the URL by default."""
    config = _load(tmp_path, BASE + FAILOVER)
    failover = config.failover
    assert failover is not None
    assert failover.services == ("IntegrifyScheduler", "IntegrifyWorker")
    assert (failover.repoint, failover.services_name) == ("hosts", "integrify-services.example.com")
    assert failover.old_node_unreachable == "refuse"
    assert (failover.stop_timeout_seconds, failover.start_timeout_seconds) == (60.0, 120.0)
    assert healthcheck_url(failover, "10.0.0.12") == "http://10.0.0.12/healthcheck"
    assert healthcheck_url(failover, "fd00::12") == "http://[fd00::12]/healthcheck"


def test_without_the_table_there_is_no_failover(tmp_path: Path) -> None:
    """The table is optional: a site may keep the manual runbook."""
    assert _load(tmp_path, BASE).failover is None


def test_services_and_the_name_default_to_active(tmp_path: Path) -> None:
    """``[active]``'s services (services mode) are the ones that move."""
    text = BASE + '[active]\nmode = "services"\nservices = ["IntegrifyScheduler"]\n'
    text += '[failover]\nrepoint = "none"\n'
    failover = _load(tmp_path, text).failover
    assert failover is not None
    assert failover.services == ("IntegrifyScheduler",)
    assert failover.services_name is None


def test_a_dns_table_is_read_and_its_zone_must_hold_the_name(tmp_path: Path) -> None:
    """``repoint = "dns"`` needs a server and the zone the services name is in."""
    dns = '[failover.dns]\nserver = "dc1.example.com"\nzone = "example.com."\nttl_seconds = 60\n'
    text = BASE + FAILOVER.replace('"hosts"', '"dns"') + dns
    failover = _load(tmp_path, text).failover
    assert failover is not None
    assert failover.dns is not None
    assert (failover.dns.server, failover.dns.zone, failover.dns.port) == (
        "dc1.example.com",
        "example.com",
        53,
    )
    assert failover.dns.ttl_seconds == 60
    outside = text.replace('zone = "example.com."', 'zone = "corp.example.org"')
    assert "is not inside the zone" in _refused(tmp_path, outside)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('repoint = "hosts"\n', ""), "repoint is required"),
        (('"hosts"', '"carrier-pigeon"'), "repoint must be one of"),
        (("services = [", "services = [] #"), "services must be a list"),
        (('services_name = "integrify-services.example.com"\n', ""), "needs services_name"),
        (('"hosts"', '"dns"'), "needs a [failover.dns] table"),
        (("[failover]\n", '[failover]\nhealthcheck = "http://node/healthcheck"\n'), "{address}"),
        (("[failover]\n", '[failover]\nold_node_unreachable = "maybe"\n'), "old_node_unreachable"),
        (("[failover]\n", "[failover]\nstart_timeout_seconds = 0\n"), "positive"),
        (("[failover]\n", "[failover]\nfailback = true\n"), "unknown key: failback"),
    ],
)
def test_an_incomplete_or_wrong_table_is_refused_in_one_line(
    tmp_path: Path, change: tuple[str, str], words: str
) -> None:
    """Nothing about the move is guessed."""
    text = BASE + FAILOVER.replace(*change)
    message = _refused(tmp_path, text)
    assert words in message
    assert "[failover]" in message
    assert "\n" not in message


def test_a_peer_address_must_be_an_ip_address(tmp_path: Path) -> None:
    """The services name gets this address: a host name there is refused."""
    message = _refused(tmp_path, BASE.replace('"10.0.0.12"', '"node2.example.com"'))
    assert "address must be the node's IP address" in message


def test_the_nodes_this_one_first_reached_through_their_admin_shares(tmp_path: Path) -> None:
    """Every node by its SMB entry; the hosts file under the admin share the entry names."""
    nodes = fleet_nodes(_load(tmp_path, BASE + FAILOVER))
    assert [(n.name, n.here) for n in nodes] == [("node1", True), ("node2", False)]
    hosts = nodes[1].admin(r"Windows\System32\drivers\etc")
    assert hosts.path == r"\\node2\D$\Windows\System32\drivers\etc"
    assert nodes[1].address() == "10.0.0.12"


def test_a_local_folder_peer_cannot_be_failed_over(tmp_path: Path) -> None:
    """Service control needs SMB: a mounted-folder peer is named."""
    text = BASE + '[[peers]]\nname = "dr"\npath = "/mnt/dr/jobs"\n' + FAILOVER
    with pytest.raises(ConfigError, match="dr is a local folder"):
        fleet_nodes(_load(tmp_path, text))
