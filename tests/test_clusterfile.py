"""Cluster files: hosts, one network over them, containers placed on hosts; errors name file, table, key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from netwrap.errors import TopologyError
from netwrap.host.ssh import SshRunner
from netwrap.topology import clusterfile, multihost

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


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('method = "vxlan"', 'method = "vxlan"\nvni = "abc"'), "[cluster] vni: must be an integer, not string 'abc'"),
        (('method = "vxlan"', 'method = "vxlan"\nvni = 16777216'), "[cluster] vni: 16777216: must be a VXLAN id"),
        (('supernet = "10.250.0.0/16"\nmethod = "vxlan"', 'supernet = "10.250.0.0/30"\nmethod = "host-gw"'),
         "[cluster] supernet: '10.250.0.0/30': host-gw gives each machine a /24 of it: use a /8 to /24"),
        (('supernet = "10.250.0.0/16"\nmethod = "vxlan"', 'supernet = "10.0.0.0/7"\nmethod = "host-gw"'),
         "[cluster] supernet: '10.0.0.0/7': host-gw gives each machine a /24 of it"),
        (('supernet = "10.250.0.0/16"', ""), "[cluster] supernet: is required, like supernet = \"10.250.0.0/16\""),
        (('method = "vxlan"', 'method = "vxlan"\nunderlay_mtu = 1.5e400'),
         "[cluster] underlay_mtu: must be an integer, not float inf"),
        (('method = "vxlan"', 'method = "vxlan"\nunderlay_mtu = 100'), "[cluster] underlay_mtu: 100: must be from 118"),
        (('network = "pods"', 'network = ["x"]'), "[cluster] network: must be a string, not array ['x']"),
        (('network = "pods"', 'network = "my.pods"'), "[cluster] network: 'my.pods': contains '.'"),
        (("[containers.b1]", '[containers."a b"]'), "[containers] \"a b\": 'a b': use 1-63 letters"),
        (("[containers.b1]", "[containers.all]"), "[containers] all: 'all': `ip netns` reads 'all'"),
        (('name = "lab"', "name = 5"), "[topology] name: must be a string, not integer 5"),
        (('name = "lab"', 'name = "a b"'), "[topology] name: 'a b': use 1-20 letters, digits, '_' or '-'"),
        (('ports = ["8080:80"]', 'ports = "8080:80"'), "[containers.a1] ports: must be an array, not string '8080:80'"),
        (('ports = ["8080:80"]', 'ports = ["8084"]'), "[containers.a1] ports[0]: '8084': a lone port is not published"),
        (('underlay = "192.0.2.12"', 'underlay = "192.0.2.11"'), "[hosts.b] underlay: 192.0.2.11 is also host 'a''s"),
        (('ssh = "root@192.0.2.11"\n', ""), "[hosts.b] ssh: is required: host 'a' is already this machine"),
        (('ssh = "root@192.0.2.11"', 'ssh = "root@lab\\n"'), "[hosts.a] ssh: 'root@lab\\n': must be [USER@]HOST"),
        (('ssh = "root@192.0.2.11"', "ssh = 5"), "[hosts.a] ssh: must be a string, not integer 5"),
        (('[hosts.b]\nunderlay = "192.0.2.12"\ndevice = "eth0"\n', '[hosts.b]\nunderlay = "192.0.2.12"\n'),
         "[hosts.b] device: is required"),
        (('host = "b"', "host = 5"), "[containers.b1] host: 5 is not one of the [hosts]"),
        (('[containers.b1]\nhost = "b"', '[containers.b1]\nhost = "a"\nports = ["8080:81"]'),
         "[containers.b1] ports[0]: host port 8080/tcp is also published by container 'a1' (8080:80/tcp)"),
    ],
)  # fmt: skip
def test_a_cluster_file_is_read_with_the_topology_files_checks(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    """Issue "Hardening II", item 10: each of these was a traceback, or accepted to fail late or never."""
    path = tmp_path / "lab.toml"
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    path.write_text(text)
    with pytest.raises(TopologyError) as caught:
        clusterfile.load(path)
    lines = [p.render(str(path)) for p in caught.value.problems]
    assert f"{path}: {expected}" in "\n".join(lines), lines
    assert len(lines) == 1, lines  # one problem, one message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('hosts = 5\n[cluster]\nsupernet = "10.250.0.0/16"\n', "[topology] hosts: must be a table, not integer 5"),
        ("[hosts]\n", "[topology] hosts: needs at least one host"),
        ('[hosts.a]\nunderlay = "192.0.2.11"\ndevice = "eth0"\n', "[topology] cluster: is required"),
        ('[hosts.a]\nunderlay = "192.0.2.11"\ndevice = "eth0"\n[cluster]\nsupernet = "10.250.0.0/16"\nmethod = 1\n',
         "[cluster] method: must be a string, not integer 1"),
        ('cluster = 5\n[hosts.a]\nunderlay = "192.0.2.11"\ndevice = "eth0"\n', "[topology] cluster: must be a table"),
        ('[hosts."../a"]\nunderlay = "192.0.2.11"\ndevice = "eth0"\n[cluster]\nsupernet = "10.250.0.0/16"\n',
         "[hosts] \"../a\": '../a': use 1-63 letters"),
        ('[hosts.a]\nunderlay = "192.0.2.11"\ndevice = "eth0"\n[cluster]\nsupernet = "192.0.2.0/24"\n',
         "[hosts.a] underlay: 192.0.2.11 is inside the cluster's supernet 192.0.2.0/24: use an address between "
         "machines"),
        ('[hosts.a]\nunderlay = "192.0.2.11"\ndevice = "eth0"\nsudo = "no"\n[cluster]\nsupernet = "10.250.0.0/16"\n',
         "[hosts.a] sudo: must be a boolean, not string 'no'"),
        ('[hosts.a]\nunderlay = "192.0.2.11"\ndevice = "eth0"\n[cluster]\nsupernet = "10.250.0.0/16"\n'
         + "".join(f'[containers.c{i}]\nhost = "a"\n' for i in range(254)),
         "[containers.c253] host: host 'a' has 254 containers: host-gw gives each machine a /24, room for 253"),
    ],
)  # fmt: skip
def test_a_cluster_file_s_shape_is_checked(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    with pytest.raises(TopologyError) as caught:
        clusterfile.load(path)
    assert f"{path}: {expected}" in str(caught.value)


def test_a_cluster_that_is_read_builds_on_every_machine() -> None:
    """What the reader accepts, each machine's objects accept too (253 containers on one host-gw machine fit)."""
    text = GOOD.replace('method = "vxlan"', 'method = "host-gw"') + "".join(
        f'[containers.c{i}]\nhost = "b"\n' for i in range(252)
    )
    spec = clusterfile.from_dict(tomllib.loads(text), "lab.toml")
    cluster = spec.cluster()
    assert len(cluster.containers["b"]) == 253
    assert multihost.objects(cluster, 1)
