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
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from netwrap import validate as v
from netwrap.errors import TopologyError, ValidationError
from netwrap.host.runner import RecordingRunner, Runner, SubprocessRunner
from netwrap.host.ssh import SshRunner, local_program_option
from netwrap.topology import multihost
from netwrap.topology.files import (
    Reader,
    container_name,
    decode,
    names_hosts,
    not_a_table,
    object_name,
    read_toml,
)
from netwrap.topology.model import Port, Problem, show, toml_key, topology_name
from netwrap.topology.multihost import VXLAN_OVERHEAD, Cluster, Machine

_TOP = {"name", "hosts", "cluster", "containers"}
_HOST = {"ssh", "ssh_command", "ssh_options", "sudo", "underlay", "device"}
_CLUSTER = {"network", "supernet", "method", "vni", "underlay_mtu"}
_CONTAINER = {"host", "ports"}
_MTU = (68 + VXLAN_OVERHEAD, 65535)  # a container's device gets the underlay's MTU less the VXLAN overhead
_PER_MACHINE = 253  # host-gw: a /24 per machine, less its network, gateway and broadcast addresses


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
    """Whether a topology file names hosts (a file that cannot be read or parsed is left to the reader that
    reports it)."""
    if not isinstance(path, str | os.PathLike):
        return False
    try:
        data = tomllib.loads(decode(Path(path).read_bytes(), str(path)))
    except (OSError, ValueError, RecursionError, TopologyError):  # (TOMLDecodeError is a ValueError)
        return False
    return names_hosts(data)


def load(path: Path | str) -> ClusterSpec:
    """Read a cluster file; errors name the file, the table and the key."""
    return from_dict(read_toml(path), str(path), Path(path).stem)


def _host(r: Reader, name: str, data: Any) -> HostSpec | None:
    table = toml_key("hosts", name)
    if r.table("hosts", name, data, _HOST) is None:
        return None
    named = r.check("hosts", toml_key(name), object_name, name)  # it names the record: cluster-NAME@HOST.json
    if "underlay" not in data:
        r.fail(table, "underlay", 'is required: the machine\'s address between machines, like underlay = "192.0.2.11"')
    if "device" not in data:
        r.fail(table, "device", 'is required: the machine\'s device between machines, like device = "eth0"')
    underlay = r.check(table, "underlay", v.ipv4_address, data["underlay"]) if "underlay" in data else None
    device = r.check(table, "device", v.interface_name, data["device"]) if "device" in data else None
    ssh = r.check(table, "ssh", _destination, data["ssh"]) if "ssh" in data else None
    options: list[Any] = r.get(table, data, "ssh_options", list, [])
    if not all(isinstance(o, str) and o.startswith("-") for o in options):
        r.fail(table, "ssh_options", "must be a list of ssh options, each one word like '-p2222'")
        options = []
    elif (found := local_program_option(options)) is not None:
        r.fail(table, "ssh_options", f"{show(found)} runs a local program: a file may not set it (--ssh-option may)")
        options = []
    command: list[Any] = r.get(table, data, "ssh_command", list, ["ssh"])
    if not command or not all(isinstance(w, str) and w for w in command):
        r.fail(table, "ssh_command", 'must be a non-empty list of words, like ["ssh", "-F", "lab.conf"]')
        command = ["ssh"]
    elif Path(command[0]).name != "ssh":
        r.fail(
            table, "ssh_command",
            f"{show(command[0])} is not an ssh client: a file may only name ssh (--ssh-command may)",
        )  # fmt: skip
        command = ["ssh"]
    elif (found := local_program_option(command[1:])) is not None:
        r.fail(table, "ssh_command", f"{show(found)} runs a local program: a file may not set it (--ssh-command may)")
        command = ["ssh"]
    sudo = r.get(table, data, "sudo", bool, False)
    if named is None or underlay is None or device is None or ("ssh" in data and ssh is None):
        return None
    return HostSpec(name, underlay, device, ssh, tuple(options), sudo, tuple(command))


def _destination(field: str, value: Any) -> str:
    """``[USER@]HOST`` for ssh, as :class:`SshRunner` takes it, and nothing that does not print."""
    if not value.isprintable() or any(ch.isspace() for ch in value):
        raise ValidationError(field, value, "must be [USER@]HOST (no spaces, no leading '-')")
    try:
        SshRunner(value)
    except ValidationError as exc:
        raise ValidationError(field, value, exc.reason) from None
    return str(value)


def _network_name(field: str, value: Any) -> str:
    """The cluster network's name: its bridge ``nw-NAME`` and VXLAN device ``vx-NAME`` are made of it."""
    name = object_name(field, value)
    if "." in name:
        raise ValidationError(field, value, "contains '.': the bridge's kernel settings could not name it")
    return name


def _hosts(r: Reader, data: dict[str, Any]) -> list[HostSpec]:
    hosts_data = r.get("topology", data, "hosts", dict, {})
    if not hosts_data and isinstance(data.get("hosts", {}), dict):
        r.fail("topology", "hosts", "needs at least one host: a table like [hosts.a] with underlay and device")
    hosts = [h for key, item in hosts_data.items() if (h := _host(r, key, item)) is not None]
    underlays: dict[ipaddress.IPv4Address, str] = {}
    local: str | None = None
    for host in hosts:
        if host.underlay in underlays:
            r.fail(
                toml_key("hosts", host.name), "underlay", f"{host.underlay} is also host {underlays[host.underlay]!r}'s"
            )
        underlays.setdefault(host.underlay, host.name)
        if host.ssh is None:
            if local is not None:
                r.fail(
                    toml_key("hosts", host.name), "ssh",
                    f"is required: host {local!r} is already this machine (the one host without ssh)",
                )  # fmt: skip
            local = local or host.name
    return hosts


_Settings = tuple[str, ipaddress.IPv4Network, str, int, int]


def _cluster(r: Reader, data: dict[str, Any], hosts: list[HostSpec], placed: dict[str, list[str]]) -> _Settings | None:
    """``[cluster]``: (network, supernet, method, vni, underlay_mtu), None when it has a problem (reported)."""
    if "cluster" not in data:
        r.fail("topology", "cluster", 'is required: a file with [hosts] needs a [cluster] table, like '
               '[cluster] with supernet = "10.250.0.0/16"')  # fmt: skip
        return None
    cluster = r.get("topology", data, "cluster", dict, {})
    if not isinstance(data["cluster"], dict):
        return None
    r.unknown("cluster", cluster, _CLUSTER)
    failed = len(r.problems)
    network = r.check("cluster", "network", _network_name, cluster.get("network", "pods"))
    method = r.get("cluster", cluster, "method", str, "host-gw")
    if method not in ("host-gw", "vxlan"):
        r.fail("cluster", "method", f"{show(method)}: use host-gw or vxlan")
    vni = r.get("cluster", cluster, "vni", int, 4242)
    if not 0 < vni < 2**24:
        r.fail("cluster", "vni", f"{show(vni)}: must be a VXLAN id from 1 to {2**24 - 1}")
    mtu = r.get("cluster", cluster, "underlay_mtu", int, 1500)
    if not _MTU[0] <= mtu <= _MTU[1]:
        r.fail(
            "cluster", "underlay_mtu", f"{show(mtu)}: must be from {_MTU[0]} to {_MTU[1]} (with vxlan, containers get "
            f"{VXLAN_OVERHEAD} bytes less, and a device at least 68)",
        )  # fmt: skip
    supernet = None
    if "supernet" not in cluster:
        r.fail("cluster", "supernet", 'is required, like supernet = "10.250.0.0/16"')
    else:
        supernet = r.check("cluster", "supernet", v.ipv4_network, cluster["supernet"])
    if supernet is not None:
        machines = max(len(hosts), 1)
        if method == "host-gw" and not 8 <= supernet.prefixlen <= 24:
            r.fail(
                "cluster", "supernet", f"{show(str(supernet))}: host-gw gives each machine a /24 of it: use a /8 to /24"
            )
        elif method == "host-gw" and 2 ** (24 - supernet.prefixlen) < machines:
            r.fail("cluster", "supernet", f"{show(str(supernet))}: has fewer /24 subnets than machines ({len(hosts)})")
        total = sum(len(c) for c in placed.values())
        if method == "vxlan" and supernet.num_addresses < total + machines + 2:
            r.fail(
                "cluster", "supernet", f"{show(str(supernet))}: is too small for every machine and container "
                f"({len(hosts)} gateways and {total} containers)",
            )  # fmt: skip
        for host in hosts:
            if host.underlay in supernet:
                r.fail(
                    toml_key("hosts", host.name), "underlay",
                    f"{host.underlay} is inside the cluster's supernet {supernet}: use an address between machines",
                )  # fmt: skip
    if method == "host-gw":
        for machine, names in placed.items():
            if len(names) > _PER_MACHINE:
                r.fail(
                    toml_key("containers", names[_PER_MACHINE]), "host",
                    f"host {machine!r} has {len(names)} containers: host-gw gives each machine a /24, room for "
                    f"{_PER_MACHINE}",
                )  # fmt: skip
    if len(r.problems) > failed or network is None or supernet is None:
        return None
    return network, supernet, method, vni, mtu


def from_dict(data: dict[str, Any], source: str, default_name: str = "cluster") -> ClusterSpec:
    """A checked cluster from parsed TOML; every problem at once in a :class:`TopologyError`: what the file says,
    and then what each machine's part would be (as :func:`netwrap.topology.files.from_dict` checks a topology)."""
    if not isinstance(data, dict):
        raise TopologyError(source, [not_a_table(data)])
    r = Reader()
    r.unknown("topology", data, _TOP)
    name = r.get("topology", data, "name", str, default_name)
    r.check("topology", "name", topology_name, name)
    hosts = _hosts(r, data)
    known = {h.name for h in hosts}
    hosts_data: dict[str, Any] = data["hosts"] if isinstance(data.get("hosts"), dict) else {}
    containers: dict[str, list[str]] = {}
    ports: dict[str, tuple[str, ...]] = {}
    for key, item in r.get("topology", data, "containers", dict, {}).items():
        table = toml_key("containers", key)
        if r.table("containers", key, item, _CONTAINER) is None:
            continue
        container_name(r, key)
        specs = r.get(table, item, "ports", list, [])
        for index, port in enumerate(specs):
            r.check(table, f"ports[{index}]", Port.parse, port, text=False)
        host = item.get("host")
        if host is None:
            r.fail(table, "host", 'is required: the host it runs on, like host = "a"')
        elif not isinstance(host, str) or host not in hosts_data:
            r.fail(table, "host", f"{show(host)} is not one of the [hosts]")
        elif host in known:  # a host with problems is reported already
            containers.setdefault(host, []).append(key)
            ports[key] = tuple(specs)
    settings = _cluster(r, data, hosts, containers)
    if r.problems or settings is None:
        raise TopologyError(source, r.problems or [Problem("topology", "cluster", "is required")])
    network, supernet, method, vni, mtu = settings
    spec = ClusterSpec(
        name, tuple(hosts), network, supernet, method, vni, mtu,
        {h.name: tuple(containers[h.name]) for h in hosts if h.name in containers}, ports,
    )  # fmt: skip
    problems = _machine_problems(spec)
    if problems:
        raise TopologyError(source, problems)
    return spec


def _machine_problems(spec: ClusterSpec) -> list[Problem]:
    """What each machine's part of the cluster would have wrong (two containers of one machine publishing one
    host port, say), worked out with runners that run nothing."""
    try:
        cluster = spec.cluster(lambda name, runner: RecordingRunner())
    except ValidationError as exc:
        return [Problem("cluster", exc.field.split(".")[-1], f"{show(exc.value)}: {exc.reason}")]
    found: list[Problem] = []
    for index in range(len(cluster.machines)):
        try:
            multihost.objects(cluster, index)
        except TopologyError as exc:
            found += [p for p in exc.problems if isinstance(p, Problem) and p not in found]
        except ValidationError as exc:
            found.append(Problem("cluster", exc.field.split(".")[-1], f"{show(exc.value)}: {exc.reason}"))
    return found
