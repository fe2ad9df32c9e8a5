"""Read a cluster (several machines, one network) from TOML.

::

    name = "lab"

    [hosts.a]
    ssh = "root@192.0.2.11"       # leave out for this machine
    ssh_options = ["-p2222"]      # each one word, as with --ssh-option
    ssh_command = ["ssh"]         # the client to start
    sudo = false                  # sudo -n on the far side
    underlay = "192.0.2.11"       # the machine's address on the network between machines
    device = "eth0"               # and its device there

    [cluster]
    network = "pods"
    supernet = "10.250.0.0/16"
    method = "host-gw"            # or "vxlan"
    vni = 4242
    underlay_mtu = 1500

    [containers.a1]
    host = "a"
    ports = ["8080:80"]

A topology file with a ``[hosts]`` table is a cluster file; every problem is
reported at once, each naming the file, the table and the key.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from netwrap import validate as v
from netwrap.errors import TopologyError, ValidationError
from netwrap.host.runner import Runner, SubprocessRunner
from netwrap.host.ssh import SshRunner, local_program_option
from netwrap.topology.files import Reader, read_toml
from netwrap.topology.model import Port, Problem
from netwrap.topology.multihost import Cluster, Machine

_TOP = {"name", "hosts", "cluster", "containers"}
_HOST = {"ssh", "ssh_command", "ssh_options", "sudo", "underlay", "device"}
_CLUSTER = {"network", "supernet", "method", "vni", "underlay_mtu"}
_CONTAINER = {"host", "ports"}


@attrs.frozen
class HostSpec:
    """A machine as the file names it (the runner is made from it)."""

    name: str
    underlay: ipaddress.IPv4Address
    device: str
    ssh: str | None = None
    ssh_options: tuple[str, ...] = ()
    sudo: bool = False
    ssh_command: tuple[str, ...] = ("ssh",)

    def runner(self) -> Runner:
        if self.ssh is None:
            return SubprocessRunner()
        return SshRunner(self.ssh, self.ssh_options, ssh=self.ssh_command, sudo=self.sudo)


@attrs.frozen
class ClusterSpec:
    """Everything a cluster file says; :meth:`cluster` adds the runners."""

    name: str
    hosts: tuple[HostSpec, ...]
    network: str
    supernet: ipaddress.IPv4Network
    method: str
    vni: int
    underlay_mtu: int
    containers: dict[str, tuple[str, ...]]
    ports: dict[str, tuple[str, ...]]

    def cluster(self, wrap: Callable[[str, Runner], Runner] = lambda name, runner: runner) -> Cluster:
        machines = tuple(Machine(h.name, h.underlay, h.device, wrap(h.name, h.runner())) for h in self.hosts)
        return Cluster(
            self.name, self.network, self.supernet, self.method,  # type: ignore[arg-type]
            machines, self.containers, self.ports, self.vni, self.underlay_mtu,
        )  # fmt: skip


def is_cluster_file(path: Path | str) -> bool:
    """Whether a topology file names hosts (a syntax error is left to the reader that reports it)."""
    try:
        return "hosts" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False


def load(path: Path | str) -> ClusterSpec:
    return from_dict(read_toml(path), str(path), Path(path).stem)


def _host(r: Reader, name: str, data: Any) -> HostSpec | None:
    table = f"hosts.{name}"
    if r.table("hosts", name, data, _HOST) is None:
        return None
    underlay = r.check(table, "underlay", v.ipv4_address, data.get("underlay"))
    device = r.check(table, "device", v.interface_name, data.get("device"))
    ssh = data.get("ssh")
    if ssh is not None:
        try:
            SshRunner(ssh)
        except ValidationError as exc:
            r.fail(table, "ssh", f"{ssh!r}: {exc.reason}")
    options = data.get("ssh_options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) and o.startswith("-") for o in options):
        r.fail(table, "ssh_options", "must be a list of ssh options, each one word like '-p2222'")
        options = []
    elif (found := local_program_option(options)) is not None:
        r.fail(table, "ssh_options", f"{found!r} runs a local program: a file may not set it (--ssh-option may)")
        options = []
    command = data.get("ssh_command", ["ssh"])
    if not isinstance(command, list) or not command or not all(isinstance(w, str) and w for w in command):
        r.fail(table, "ssh_command", 'must be a non-empty list of words, like ["ssh", "-F", "lab.conf"]')
        command = ["ssh"]
    elif Path(command[0]).name != "ssh":
        r.fail(
            table, "ssh_command", f"{command[0]!r} is not an ssh client: a file may only name ssh (--ssh-command may)"
        )
        command = ["ssh"]
    elif (found := local_program_option(command[1:])) is not None:
        r.fail(table, "ssh_command", f"{found!r} runs a local program: a file may not set it (--ssh-command may)")
        command = ["ssh"]
    sudo = data.get("sudo", False)
    if not isinstance(sudo, bool):
        r.fail(table, "sudo", "must be true or false")
    if underlay is None or device is None:
        return None
    return HostSpec(name, underlay, device, ssh, tuple(options), sudo is True, tuple(command))


def from_dict(data: dict[str, Any], source: str, default_name: str = "cluster") -> ClusterSpec:
    r = Reader()
    r.unknown("topology", data, _TOP)
    name = data.get("name", default_name)
    hosts_data = data.get("hosts", {})
    hosts = [h for key, item in hosts_data.items() if (h := _host(r, key, item))]
    cluster = data.get("cluster")
    if not isinstance(cluster, dict):
        r.fail("cluster", "network", "a file with hosts needs a [cluster] table")
        cluster = {}
    r.unknown("cluster", cluster, _CLUSTER)
    supernet = r.check("cluster", "supernet", v.ipv4_network, cluster.get("supernet"))
    method = cluster.get("method", "host-gw")
    if method not in ("host-gw", "vxlan"):
        r.fail("cluster", "method", f"{method!r}: use host-gw or vxlan")
    containers: dict[str, list[str]] = {}
    ports: dict[str, tuple[str, ...]] = {}
    for key, item in data.get("containers", {}).items():
        table = f"containers.{key}"
        if r.table("containers", key, item, _CONTAINER) is None:
            continue
        host = item.get("host")
        if not isinstance(host, str) or host not in hosts_data:
            r.fail(table, "host", f"{host!r} is not one of the [hosts]")
            continue
        containers.setdefault(host, []).append(key)
        specs = item.get("ports", [])
        for index, port in enumerate(specs if isinstance(specs, list) else []):
            r.check(table, f"ports[{index}]", Port.parse, port)
        ports[key] = tuple(str(s) for s in specs) if isinstance(specs, list) else ()
    result: ClusterSpec | None = None
    if not r.problems and supernet is not None:
        result = ClusterSpec(
            name, tuple(hosts), str(cluster.get("network", "pods")), supernet, method,
            int(cluster.get("vni", 4242)), int(cluster.get("underlay_mtu", 1500)),
            {h: tuple(c) for h, c in containers.items()}, ports,
        )  # fmt: skip
        try:
            result.cluster()
        except ValidationError as exc:
            r.fail("cluster", exc.field.split(".")[-1], f"{exc.value!r}: {exc.reason}")
    if r.problems or result is None:
        raise TopologyError(source, r.problems or [Problem("cluster", "supernet", "is required")])
    return result
