"""Docker-style networks described once: networks, containers, modes and published ports.

A :class:`Topology` is pure description (no process, no kernel state). It is
checked as a whole by :meth:`Topology.problems`, which names the table and the
key of every problem, all at once; :func:`netwrap.topology.files.load` adds the file.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections.abc import Iterator
from typing import Literal

import attrs

from netwrap import validate as v
from netwrap.errors import NetwrapError, TopologyError, ValidationError

Style = Literal["docker", "document"]
MODES = ("bridge", "host", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TOPOLOGY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")


@attrs.frozen
class Problem:
    """One thing wrong with a topology: where (table, key) and what."""

    table: str
    key: str
    message: str

    def render(self, source: str) -> str:
        return f"{source}: [{self.table}] {self.key}: {self.message}"


@attrs.frozen
class Network:
    """A bridge network: its bridge device, subnet and gateway, outbound NAT, inter-container traffic."""

    name: str
    subnet: ipaddress.IPv4Network
    bridge: str
    gateway: ipaddress.IPv4Address
    nat: bool = True
    icc: bool = True
    bridge_tool: Literal["brctl", "ip"] = "ip"

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen


@attrs.frozen
class Port:
    """A published port: ``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`` (``0.0.0.0``, or no address: every one)."""

    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: ipaddress.IPv4Address | None = None

    @classmethod
    def parse(cls, field: str, text: object) -> Port:
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str):
            raise ValidationError(field, text, "must be a string like '8080:80/tcp'")
        spec, _, proto = text.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise ValidationError(field, text, f"unknown protocol {proto!r}; use tcp or udp")
        parts = spec.split(":")
        if len(parts) > 3 or not all(parts):
            raise ValidationError(field, text, "must be [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]")
        host_ip = None
        if len(parts) == 3:
            address = v.ip_address(field, parts[0])
            if not isinstance(address, ipaddress.IPv4Address):
                raise ValidationError(field, text, "the host address must be IPv4")
            if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
                raise ValidationError(field, text, f"{address} is not an address of this host; use one, or 0.0.0.0")
            host_ip = None if address.is_unspecified else address  # 0.0.0.0: every address, as with Docker
            parts = parts[1:]
        numbers = []
        for part in parts:
            if not (part.isascii() and part.isdigit()):
                raise ValidationError(field, text, f"{part!r} is not a port number")
            if not 1 <= int(part) <= 65535:
                raise ValidationError(field, text, f"port {part} must be between 1 and 65535")
            numbers.append(int(part))
        host, container = numbers if len(numbers) == 2 else (numbers[0], numbers[0])
        return cls(host, container, "udp" if proto == "udp" else "tcp", host_ip)

    def __str__(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip is not None else ""
        return f"{ip}{self.host_port}:{self.container_port}/{self.protocol}"

    def overlaps(self, other: Port) -> bool:
        same = self.host_port == other.host_port and self.protocol == other.protocol
        return same and (self.host_ip is None or other.host_ip is None or self.host_ip == other.host_ip)


@attrs.frozen
class Attachment:
    """A container's place on a network: optionally a fixed address and the device names."""

    network: str
    address: ipaddress.IPv4Address | None = None
    interface: str | None = None
    host_interface: str | None = None


@attrs.frozen
class Container:
    """A container: a network namespace (or the host's, or another container's) and its networks."""

    name: str
    mode: str = "bridge"
    networks: tuple[Attachment, ...] = ()
    ports: tuple[Port, ...] = ()
    netns: str | None = None
    loopback: bool = True

    @property
    def namespace(self) -> str:
        """The network namespace this container owns (bridge and none modes)."""
        return self.netns or self.name

    @property
    def joins(self) -> str | None:
        """For ``container:NAME`` mode, NAME."""
        return self.mode.partition(":")[2] if self.mode.startswith("container:") else None

    @property
    def owns_namespace(self) -> bool:
        return self.mode in ("bridge", "none")


def short_name(prefix: str, name: str, salt: int = 0) -> str:
    """``PREFIX+NAME`` if it fits in 15 bytes, else shortened with a stable 4-hex hash of NAME (of NAME#SALT, to
    step aside from a name already taken)."""
    full = f"{prefix}{name}"
    if len(full.encode()) <= 15 and not salt:
        return full
    digest = hashlib.sha256((f"{name}#{salt}" if salt else name).encode()).hexdigest()[:4]
    return f"{prefix}{name[: 15 - len(prefix) - 4]}{digest}"


@attrs.frozen
class Topology:
    """Networks and containers, in the order they were declared."""

    name: str
    networks: tuple[Network, ...] = ()
    containers: tuple[Container, ...] = ()
    style: Style = "docker"

    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    def container(self, name: str) -> Container:
        return next(c for c in self.containers if c.name == name)

    def namespace_of(self, name: str) -> str | None:
        """The namespace a container's processes run in (None: the host's)."""
        seen: set[str] = set()
        container = self.container(name)
        while container.joins is not None:
            if container.name in seen:
                raise NetwrapError(f"containers {sorted(seen)} join each other in a circle")
            seen.add(container.name)
            container = self.container(container.joins)
        return None if container.mode == "host" else container.namespace

    @functools.cached_property
    def host_interfaces(self) -> dict[tuple[str, int], str]:
        """The host-side device of each attachment (container, index): as given, else ``vINDEX-CONTAINER``,
        shortened with a hash past 15 bytes. Given names and bridges are taken first; a derived name that
        clashes with one, or with another derived name, steps aside (another hash), containers taken in the
        order of their names, so the result does not depend on the order of the file."""
        taken = {n.bridge for n in self.networks}
        taken |= {a.host_interface for c in self.containers for a in c.networks if a.host_interface is not None}
        taken |= {a.interface for c in self.containers for a in c.networks if a.interface is not None}
        found: dict[tuple[str, int], str] = {}
        for container in sorted(self.containers, key=lambda c: c.name):
            for index, att in enumerate(container.networks):
                if att.host_interface is not None:
                    found[(container.name, index)] = att.host_interface
                    continue
                salt = 0
                name = short_name(f"v{index}-", container.name)
                while name in taken:
                    salt += 1
                    name = short_name(f"v{index}-", container.name, salt)
                taken.add(name)
                found[(container.name, index)] = name
        return found

    def problems(self) -> list[Problem]:
        return list(_problems(self))

    def check(self, source: str = "<topology>") -> Topology:
        found = self.problems()
        if found:
            raise TopologyError(source, found)
        return self


def _problems(topo: Topology) -> Iterator[Problem]:
    if not _TOPOLOGY_NAME.match(topo.name):
        yield Problem("topology", "name", f"{topo.name!r}: use 1-20 letters, digits, '_' or '-'")
    networks: dict[str, Network] = {}
    bridges: dict[str, str] = {}
    for net in topo.networks:
        table = f"networks.{net.name}"
        if net.name in networks:
            yield Problem(table, "name", "is declared twice")
        networks[net.name] = net
        if net.bridge in bridges:
            yield Problem(table, "bridge", f"{net.bridge!r} is also the bridge of network {bridges[net.bridge]!r}")
        bridges[net.bridge] = net.name
        if net.gateway not in net.subnet or net.gateway in (net.subnet[0], net.subnet[-1]):
            yield Problem(table, "gateway", f"{net.gateway} is not a host address of {net.subnet}")
        if net.subnet.num_addresses < 4:
            yield Problem(table, "subnet", f"{net.subnet} is too small for a gateway and a container")
        for peer in topo.networks:
            if peer is not net and peer.name != net.name and net.subnet.overlaps(peer.subnet):
                yield Problem(table, "subnet", f"{net.subnet} overlaps {peer.subnet} of network {peer.name!r}")
    names: dict[str, str] = {}
    published: list[tuple[Port, str]] = []
    host_devices: dict[str, str] = {}
    for container in topo.containers:
        table = f"containers.{container.name}"
        if container.name in names:
            yield Problem(table, "name", "is declared twice")
        names[container.name] = container.name
        yield from _container_problems(topo, container, table, networks)
        for index, port in enumerate(container.ports):
            for other, owner in published:
                if port.overlaps(other):
                    yield Problem(
                        table, f"ports[{index}]", f"host port {port.host_port}/{port.protocol} is also published "
                        f"by container {owner!r} ({other})"
                    )  # fmt: skip
            published.append((port, container.name))
        inside: dict[str, int] = {}
        for index, att in enumerate(container.networks):
            interface = att.interface or f"eth{index}"
            if interface in inside:
                yield Problem(
                    table, f"networks[{index}]", f"interface {interface!r} is also networks[{inside[interface]}]'s"
                )
            inside[interface] = index
        for index, att in enumerate(container.networks):
            for device in (att.host_interface, att.interface if att.interface is not None else None):
                if device is None:
                    continue
                if device in host_devices or device in bridges:
                    owner = host_devices.get(device) or f"network {bridges[device]!r}"
                    yield Problem(table, f"networks[{index}]", f"device name {device!r} is also used by {owner}")
                host_devices[device] = f"container {container.name!r}"
    namespaces: dict[str, str] = {}
    for container in topo.containers:
        if container.owns_namespace:
            if container.namespace in namespaces:
                yield Problem(
                    f"containers.{container.name}", "netns",
                    f"namespace {container.namespace!r} is also container {namespaces[container.namespace]!r}'s",
                )  # fmt: skip
            namespaces[container.namespace] = container.name
    yield from _address_problems(topo, networks)


def _container_problems(
    topo: Topology, container: Container, table: str, networks: dict[str, Network]
) -> Iterator[Problem]:
    mode = container.mode
    joins = container.joins
    if mode not in MODES and joins is None:
        yield Problem(table, "network_mode", f"{mode!r}: use bridge, host, none or container:NAME")
        return
    if joins is not None:
        if joins == container.name:
            yield Problem(table, "network_mode", "a container cannot join its own namespace")
        elif joins not in {c.name for c in topo.containers}:
            yield Problem(table, "network_mode", f"joins container {joins!r}, which is not declared")
        else:
            try:
                topo.namespace_of(container.name)
            except NetwrapError as exc:
                yield Problem(table, "network_mode", str(exc))
    if mode != "bridge":
        if container.networks:
            yield Problem(table, "networks", f"a container in {mode} mode joins no networks")
        if container.ports:
            yield Problem(table, "ports", f"a container in {mode} mode publishes no ports")
        return
    if not container.networks:
        yield Problem(table, "networks", "a container in bridge mode needs at least one network")
    seen: set[str] = set()
    for index, att in enumerate(container.networks):
        key = f"networks[{index}]"
        if att.network not in networks:
            yield Problem(table, key, f"network {att.network!r} is not declared")
            continue
        if att.network in seen:
            yield Problem(table, key, f"joins network {att.network!r} twice")
        seen.add(att.network)
    interfaces = [att.interface for att in container.networks if att.interface is not None]
    if len(interfaces) != len(set(interfaces)):
        yield Problem(table, "networks", "two attachments have the same interface name")


def _address_problems(topo: Topology, networks: dict[str, Network]) -> Iterator[Problem]:
    used: dict[tuple[str, ipaddress.IPv4Address], str] = {}
    for container in topo.containers:
        for index, att in enumerate(container.networks):
            net = networks.get(att.network)
            if net is None or att.address is None:
                continue
            key = f"networks[{index}]"
            table = f"containers.{container.name}"
            edges = (net.subnet.network_address, net.subnet.broadcast_address)
            if att.address not in net.subnet or att.address in edges:
                yield Problem(table, key, f"address {att.address} is not a host address of {net.subnet}")
            elif att.address == net.gateway:
                yield Problem(table, key, f"address {att.address} is the gateway of network {net.name!r}")
            elif (net.name, att.address) in used:
                owner = used[(net.name, att.address)]
                yield Problem(table, key, f"address {att.address} is also container {owner!r}'s")
            used[(net.name, att.address)] = container.name
