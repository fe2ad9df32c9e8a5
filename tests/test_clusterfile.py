"""Cluster files: hosts, one network over them, containers placed on hosts; errors name file, table, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwrap.errors import TopologyError
from netwrap.host.ssh import SshRunner
from netwrap.topology import clusterfile

GOOD = """
name = "lab"
[hosts.a]
ssh = "root@192.0.2.11"
ssh_options = ["-p2222"]
underlay = "192.0.2.11"
device = "eth0"
[hosts.b]
underlay = "192.0.2.12"
device = "eth0"
[cluster]
network = "pods"
supernet = "10.250.0.0/16"
method = "vxlan"
[containers.a1]
host = "a"
ports = ["8080:80"]
[containers.b1]
host = "b"
"""


def test_a_cluster_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(GOOD)
    assert clusterfile.is_cluster_file(path)
    spec = clusterfile.load(path)
    cluster = spec.cluster()
    assert [m.name for m in cluster.machines] == ["a", "b"]
    assert isinstance(cluster.machines[0].runner, SshRunner)
    assert cluster.machines[0].runner.options == ("-p2222",)
    assert cluster.containers == {"a": ("a1",), "b": ("b1",)}
    assert cluster.method == "vxlan"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('ssh = "root@192.0.2.11"', 'ssh = "-oProxyCommand=x"'), "[hosts.a] ssh: '-oProxyCommand=x'"),
        (('ssh_options = ["-p2222"]', 'ssh_options = ["p2222"]'), "[hosts.a] ssh_options: must be a list"),
        (('underlay = "192.0.2.11"', 'underlay = "lab-a"'), "[hosts.a] underlay: 'lab-a': is not an IP address"),
        (('method = "vxlan"', 'method = "gre"'), "[cluster] method: 'gre': use host-gw or vxlan"),
        (('host = "b"', 'host = "z"'), "[containers.b1] host: 'z' is not one of the [hosts]"),
        (('ports = ["8080:80"]', 'ports = ["8080:80/sctp"]'), "[containers.a1] ports[0]: '8080:80/sctp'"),
        (('supernet = "10.250.0.0/16"', 'supernet = "10.250.0.0/30"'), "[cluster] supernet: '10.250.0.0/30'"),
        (('device = "eth0"', 'device = "a"'), "[hosts.a] device: 'a': `ip` would read it"),
    ],
)
def test_errors_name_the_file_the_table_and_the_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(GOOD.replace(*change, 1))
    with pytest.raises(TopologyError) as caught:
        clusterfile.load(path)
    assert f"{path}: {expected}" in str(caught.value)


def test_a_file_without_hosts_is_a_topology(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[networks.a]\nsubnet = "10.0.0.0/24"\n')
    assert not clusterfile.is_cluster_file(path)


def test_the_example_loads() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "cluster" / "three-machines.toml"
    cluster = clusterfile.load(example).cluster()
    assert [str(m.underlay) for m in cluster.machines] == ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
    assert isinstance(cluster.machines[1].runner, SshRunner) and cluster.machines[1].runner.sudo
