"""Docker-style networks described once: networks, containers, modes and published ports.

A :class:`Topology` is pure description (no process, no kernel state). It is
checked as a whole by :meth:`Topology.problems`, which names the table and the
key of every problem, all at once; :func:`netwrap.topology.files.load` adds the file.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import math
import re
from collections.abc import Iterator
from typing import Literal

import attrs

from netwrap import validate as v
from netwrap.errors import NetwrapError, TopologyError, ValidationError

Style = Literal["docker", "document"]
MODES = ("bridge", "host", "none")
_TOPOLOGY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
_SHOWN = 80  # the longest value a message shows whole


def quote(text: str) -> str:
    """``text`` as a TOML basic string: in double quotes, with every character that does not print escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}")
    return '"' + "".join(out) + '"'


def toml_key(*parts: object) -> str:
    """A dotted key as TOML writes it: each part bare when it can be, else quoted (``containers."a b"``), so a
    message never prints a key's new line or control character raw, and ``a.b`` and ``"a.b"`` differ."""
    return ".".join(p if isinstance(p, str) and _BARE_KEY.fullmatch(p) else quote(str(p)) for p in parts)


def toml_type(value: object) -> str:
    """The TOML name of a value's type (``table``, ``string``, ...); a value TOML has no type for: Python's."""
    for kind, name in (
        (bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"), (dict, "table"),
        (datetime.datetime, "datetime"), (datetime.date, "date"), (datetime.time, "time"),
    ):  # fmt: skip
        if isinstance(value, kind):
            return name
    return type(value).__name__


def described(value: object) -> str:
    """A value and its TOML type, for a message: ``string 'x'``, ``integer 5``, ``table { a = 1 }``."""
    return "None" if value is None else f"{toml_type(value)} {show(value)}"


def show(value: object) -> str:
    """A value as a message shows it: escaped, as TOML would write it (a string in quotes, ``true``, ``inf``,
    arrays and tables inline), cut short past 80 characters."""
    text = _show(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."


def _show(value: object, depth: int = 0) -> str:
    if depth > 3:
        return "..."
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = int(value.bit_length() * math.log10(2)) + 1  # about; Python prints no integer past 4300 digits
        return f"{'-' if value < 0 else ''}<{digits} digits>"
    if isinstance(value, str):
        return repr(value)  # escaped; without special characters, also TOML's literal string
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(item, depth + 1) for item in value[:10]) + (", ...]" if len(value) > 10 else "]")
    if isinstance(value, dict):
        items = [f"{toml_key(k)} = {_show(v, depth + 1)}" for k, v in list(value.items())[:10]]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return repr(value)


@attrs.frozen
class Problem:
    """One thing wrong with a topology: where (table, key, each as TOML writes it) and what."""

    table: str
    key: str
    message: str

    def render(self, source: str) -> str:
        return f"{source}: [{self.table}] {self.key}: {self.message}"


def topology_name(field: str, value: object) -> str:
    """A topology's (or cluster's) name: it names its record, chains and default bridges."""
    if not isinstance(value, str) or not _TOPOLOGY_NAME.fullmatch(value):
        raise ValidationError(field, value, "use 1-20 letters, digits, '_' or '-'")
    return value


@attrs.frozen(cache_hash=True)  # a key of the composition's caches: hashed once
class Network:
    """A bridge network: its bridge device, subnet and gateway, outbound NAT, inter-container traffic.

    ``internal`` (Docker's ``--internal``): nothing passes between the bridge
    and anything outside it; the host still reaches it through the gateway.
    """

    name: str
    subnet: ipaddress.IPv4Network | None  # None: an IPv6-only network (it has a subnet6)
    bridge: str
    gateway: ipaddress.IPv4Address | None
    nat: bool = True
    icc: bool = True
    bridge_tool: Literal["brctl", "ip"] = "ip"
    internal: bool = False
    mtu: int | None = None  # of the containers' veths (the bridge takes its ports' least); None: the kernel's
    subnet6: ipaddress.IPv6Network | None = None  # an IPv6 subnet beside the IPv4 one (dual stack)
    gateway6: ipaddress.IPv6Address | None = None  # the bridge's IPv6 address (default: the subnet's ::1)

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen if self.subnet is not None else 0

    @property
    def families(self) -> tuple[int, ...]:
        return (*((4,) if self.subnet is not None else ()), *((6,) if self.subnet6 is not None else ()))

    @property
    def prefix6(self) -> int:
        return self.subnet6.prefixlen if self.subnet6 is not None else 0


@attrs.frozen(cache_hash=True)  # a key of the composition's caches: hashed once
class Port:
    """A published port: ``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`` (``0.0.0.0``, or no address: every one)."""

    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None  # None: every address; "::" every IPv6

    @classmethod
    def parse(cls, field: str, text: object) -> Port:
        """``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]``. A lone port is refused: Docker reads ``"80"`` as the
        container's port 80 on a random port of the host, which netwrap does not pick; ``"80:80"`` says it."""
        given = text
        if isinstance(text, int) and not isinstance(text, bool):
            if not 1 <= text <= 65535:  # (and a number thousands of digits long has no text)
                shown = text if text.bit_length() <= 128 else show(text)
                raise ValidationError(field, shown, "is not a port from 1 to 65535")
            text = str(text)  # refused below as a lone port, with how to write it
        if not isinstance(text, str):
            raise ValidationError(field, text, f'must be a string like "8080:80/tcp", not {toml_type(text)}')
        spec, slash, proto = text.partition("/")
        if slash and not proto:
            raise ValidationError(field, text, "ends with '/': name the protocol (tcp or udp) or leave out the '/'")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise ValidationError(field, text, f"unknown protocol {proto!r}; use tcp or udp")
        bracketed = None
        if spec.startswith("["):  # [IPV6]:HOST_PORT:CONTAINER_PORT
            inside, close, rest = spec[1:].partition("]")
            if not close or not rest.startswith(":"):
                raise ValidationError(field, text, "must be [IPV6]:HOST_PORT:CONTAINER_PORT[/PROTO]")
            bracketed, spec = inside, rest[1:]
        parts = spec.split(":")
        if bracketed is not None:
            parts = [bracketed, *parts]
        elif len(parts) > 3:
            raise ValidationError(field, text, "write an IPv6 host address in brackets: [IPV6]:HOST:CONTAINER")
        if len(parts) == 1 and _port_number(field, given, spec) is not None:
            raise ValidationError(
                field, given, f'a lone port is not published (Docker would give it a random host port): write '
                f'"{spec}:{spec}{slash}{proto if slash else ""}" to publish it on the same port of the host',
            )  # fmt: skip
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise ValidationError(field, text, "must be [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]")
        host_ip = None
        if len(parts) == 3:
            address = v.ip_address(field, parts[0])
            if isinstance(address, ipaddress.IPv6Address) and bracketed is None:
                raise ValidationError(field, text, "write an IPv6 host address in brackets: [IPV6]:HOST:CONTAINER")
            if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
                raise ValidationError(field, text, f"{address} is not an address of this host; use one, or 0.0.0.0")
            if isinstance(address, ipaddress.IPv6Address) and address.is_link_local:
                raise ValidationError(field, text, f"{address} is link-local: publish on a global address, or [::]")
            # 0.0.0.0: every address, of both families, as with Docker; [::]: every IPv6 address
            host_ip = None if isinstance(address, ipaddress.IPv4Address) and address.is_unspecified else address
            parts = parts[1:]
        numbers = []
        for part in parts:
            number = _port_number(field, text, part)
            if number is None:
                raise ValidationError(field, text, f"{part!r} is not a port number")
            numbers.append(number)
        host, container = numbers
        return cls(host, container, "udp" if proto == "udp" else "tcp", host_ip)

    def __str__(self) -> str:
        ip = self.host_ip
        shown = "" if ip is None else f"[{ip}]:" if isinstance(ip, ipaddress.IPv6Address) else f"{ip}:"
        return f"{shown}{self.host_port}:{self.container_port}/{self.protocol}"

    def families(self) -> tuple[int, ...]:
        """The families it is published in: both for every address, else its address's."""
        return (4, 6) if self.host_ip is None else (self.host_ip.version,)

    def overlaps(self, other: Port) -> bool:
        same = self.host_port == other.host_port and self.protocol == other.protocol
        if not same or not set(self.families()) & set(other.families()):
            return False
        mine, theirs = self.host_ip, other.host_ip
        if mine is None or theirs is None or mine == theirs:
            return True
        return any(ip.version == 6 and ip.is_unspecified for ip in (mine, theirs))  # [::] is every IPv6 address


def _port_number(field: str, text: object, part: str) -> int | None:
    """``part`` as a port number; None when it is no number; refused when it is one out of range."""
    if not (part.isascii() and part.isdigit()):
        return None
    if len(part) > 5 or not 1 <= int(part) <= 65535:  # (a number thousands of digits long is no int)
        raise ValidationError(field, text, f"port {part[:8]}{'...' * (len(part) > 8)} must be between 1 and 65535")
    return int(part)


@attrs.frozen(cache_hash=True)  # a key of the composition's caches: hashed once
class Attachment:
    """A container's place on a network: optionally a fixed address and the device names."""

    network: str
    address: ipaddress.IPv4Address | None = None
    interface: str | None = None
    host_interface: str | None = None
    address6: ipaddress.IPv6Address | None = None  # a fixed IPv6 address (the network needs a subnet6)


@attrs.frozen(cache_hash=True)  # a key of the composition's caches: hashed once
class Container:
    """A container: a network namespace (or the host's, or another container's) and its networks."""

    name: str
    mode: str = "bridge"
    networks: tuple[Attachment, ...] = ()
    ports: tuple[Port, ...] = ()
    netns: str | None = None
    loopback: bool = True
    source: str | None = None  # a running container's namespace file (/proc/PID/ns/net, ...): attached, not made
    default_route: bool = True  # through its first network that leads outside (a CNI attachment past eth0: no)

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
        found = next((c for c in self.containers if c.name == name), None)
        if found is None:  # (a container joined by another, say, that the file does not declare)
            raise NetwrapError(f"container {name!r} is not declared")
        return found

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
    try:
        topology_name("name", topo.name)
    except ValidationError as exc:
        yield Problem("topology", "name", f"{show(exc.value)}: {exc.reason}")
    networks: dict[str, Network] = {}
    bridges: dict[str, str] = {}
    yield from _network_problems(topo, networks, bridges)
    names: dict[str, str] = {}
    published: dict[tuple[int, str], list[tuple[Port, str]]] = {}  # by host port and protocol: what may overlap
    host_devices: dict[str, str] = {}
    sharing: dict[str, list[Container]] = {}  # containers by the namespace file they attach
    for container in topo.containers:
        if container.source is not None:
            sharing.setdefault(container.source, []).append(container)
    for container in topo.containers:
        table = toml_key("containers", container.name)
        if container.name in names:
            yield Problem(table, "name", "is declared twice")
        names[container.name] = container.name
        yield from _container_problems(topo, container, table, networks, sharing)
        for index, port in enumerate(container.ports):
            if isinstance(port.host_ip, ipaddress.IPv6Address):
                first = networks.get(container.networks[0].network) if container.networks else None
                if first is None or first.subnet6 is None:
                    yield Problem(
                        table, f"ports[{index}]", f"{port} is published on IPv6, but the container's first network "
                        "has no subnet6 (ports go to a container's first network)",
                    )  # fmt: skip
            same = published.setdefault((port.host_port, port.protocol), [])
            for other, owner in same:
                if port.overlaps(other):
                    yield Problem(
                        table, f"ports[{index}]", f"host port {port.host_port}/{port.protocol} is also published "
                        f"by container {owner!r} ({other})"
                    )  # fmt: skip
            same.append((port, container.name))
        inside: dict[str, int] = {}
        for index, att in enumerate(container.networks):
            interface = att.interface or f"eth{index}"
            if interface in inside:
                yield Problem(
                    table, f"networks[{index}]", f"interface {interface!r} is also networks[{inside[interface]}]'s"
                )
            inside[interface] = index
        for index, att in enumerate(container.networks):
            # an interface is a device of the host's too while it is made there and moved in (document style)
            made_here = att.interface if topo.style == "document" else None
            for device in (att.host_interface, att.interface):
                if device is None:
                    continue
                if device == LOOPBACK:
                    yield Problem(table, f"networks[{index}]", _LOOPBACK_TAKEN)
                    continue
                if device not in (att.host_interface, made_here):
                    continue  # made inside the container: its name is the container's alone
                if device in host_devices or device in bridges:
                    owner = host_devices.get(device) or f"network {bridges[device]!r}"
                    yield Problem(table, f"networks[{index}]", f"device name {device!r} is also used by {owner}")
                host_devices[device] = f"container {container.name!r}"
    namespaces: dict[str, str] = {}
    for container in topo.containers:
        if container.owns_namespace:
            if container.namespace in namespaces:
                yield Problem(
                    toml_key("containers", container.name), "netns",
                    f"namespace {container.namespace!r} is also container {namespaces[container.namespace]!r}'s",
                )  # fmt: skip
            namespaces[container.namespace] = container.name
    yield from _address_problems(topo, networks)
    yield from _capacity_problems(topo, networks)


LOOPBACK = "lo"
_LOOPBACK_TAKEN = "'lo' is the loopback device that every namespace, the host's too, already has; choose another name"


def _network_problems(topo: Topology, networks: dict[str, Network], bridges: dict[str, str]) -> Iterator[Problem]:
    """Each network's problems; fills ``networks`` and ``bridges`` (bridge: network) on the way."""
    for net in topo.networks:
        table = toml_key("networks", net.name)
        if net.name in networks:
            yield Problem(table, "name", "is declared twice")
        networks[net.name] = net
        if net.bridge in bridges:
            yield Problem(table, "bridge", f"{net.bridge!r} is also the bridge of network {bridges[net.bridge]!r}")
        if net.bridge == LOOPBACK:
            yield Problem(table, "bridge", _LOOPBACK_TAKEN)
        bridges[net.bridge] = net.name
        subnet = net.subnet
        if subnet is None:
            if net.subnet6 is None:
                yield Problem(table, "subnet", 'is required (or subnet6), like subnet = "10.10.0.0/24"')
            elif topo.style == "document":
                yield Problem(table, "subnet", "is required in document style: the document's commands are IPv4")
        elif subnet.num_addresses < 4:  # (no gateway fits either: said once)
            yield Problem(table, "subnet", f"{subnet} is too small for a gateway and a container")
        elif net.gateway is None or net.gateway not in subnet or net.gateway in (subnet[0], subnet[-1]):
            yield Problem(table, "gateway", f"{net.gateway} is not a host address of {subnet}")
        if net.internal and topo.style == "document":
            yield Problem(table, "internal", "needs docker style: the document's commands have no filter rules")
        for peer in topo.networks:
            theirs = peer.subnet
            if peer is not net and peer.name != net.name and subnet and theirs and subnet.overlaps(theirs):
                yield Problem(table, "subnet", f"{subnet} overlaps {theirs} of network {peer.name!r}")
        yield from _ipv6_problems(topo, net, table)


def _ipv6_problems(topo: Topology, net: Network, table: str) -> Iterator[Problem]:
    """A network's IPv6 side: a unicast subnet with room for the gateway and containers, the gateway a host
    address of it, no overlap with another network's; and docker style (the document has no IPv6)."""
    if net.subnet6 is None:
        if net.gateway6 is not None:
            yield Problem(table, "gateway6", "needs a subnet6 to belong to")
        return
    subnet6 = net.subnet6
    if subnet6.is_link_local or subnet6.is_multicast or subnet6.is_loopback or subnet6.is_unspecified:
        kind = "link-local" if subnet6.is_link_local else "multicast" if subnet6.is_multicast else "special"
        yield Problem(table, "subnet6", f"{subnet6} is a {kind} prefix: use a unicast one, like fd00:10::/64")
    elif subnet6.prefixlen > 124:
        yield Problem(table, "subnet6", f"{subnet6} is too small for a gateway and a container (/124 at most)")
    if topo.style == "document":
        yield Problem(table, "subnet6", "needs docker style: the document's commands are IPv4 only")
    gateway6 = net.gateway6
    if gateway6 is not None and (gateway6 not in subnet6 or gateway6 == subnet6.network_address):
        yield Problem(table, "gateway6", f"{gateway6} is not a host address of {subnet6}")
    for peer in topo.networks:
        theirs = peer.subnet6
        if peer is not net and peer.name != net.name and theirs is not None and subnet6.overlaps(theirs):
            yield Problem(table, "subnet6", f"{subnet6} overlaps {theirs} of network {peer.name!r}")


def _container_problems(
    topo: Topology, container: Container, table: str, networks: dict[str, Network], sharing: dict[str, list[Container]]
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
    if container.source is not None and not container.owns_namespace:
        key = "pid" if container.source.startswith("/proc/") else "netns_path"
        yield Problem(table, key, f"a container in {show(mode)} mode has no namespace of its own to attach")
    if container.source is not None:  # one namespace attached twice: each name's interfaces must differ
        mine = {att.interface or f"eth{index}" for index, att in enumerate(container.networks)}
        for twin in (c for c in sharing.get(container.source, ()) if c is not container):
            theirs = {att.interface or f"eth{index}" for index, att in enumerate(twin.networks)}
            for clash in sorted(mine & theirs):
                yield Problem(
                    table, "networks", f"interface {show(clash)} is also container {show(twin.name)}'s, in the same "
                    f"namespace {container.source}",
                )  # fmt: skip
    if mode != "bridge":
        shown = mode if joins is None else f"container:{show(joins)}"
        if container.networks:
            yield Problem(table, "networks", f"a container in {shown} mode joins no networks")
        if container.ports:
            yield Problem(table, "ports", f"a container in {shown} mode publishes no ports")
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
    first = networks.get(container.networks[0].network) if container.networks else None
    if container.ports and first is not None and first.internal:
        yield Problem(
            table, "ports", f"are published on the first network, {show(first.name)}, which is internal: put one "
            "that leads outside first"
        )  # fmt: skip
    interfaces = [att.interface for att in container.networks if att.interface is not None]
    if len(interfaces) != len(set(interfaces)):
        yield Problem(table, "networks", "two attachments have the same interface name")


def _address_problems(topo: Topology, networks: dict[str, Network]) -> Iterator[Problem]:
    """Fixed addresses of each family: on a network with a subnet of it, a host address of it, not its gateway,
    not twice."""
    for family in (4, 6):
        used: dict[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address], str] = {}
        for container in topo.containers:
            for index, att in enumerate(container.networks):
                net = networks.get(att.network)
                address = att.address if family == 4 else att.address6
                if net is None or address is None:
                    continue
                table = toml_key("containers", container.name)
                key = f"networks[{index}]" if family == 4 else f"networks[{index}].address6"
                subnet = net.subnet if family == 4 else net.subnet6
                gateway = net.gateway if family == 4 else net.gateway6
                if subnet is None:
                    lacking = "is IPv6 only: use address6" if family == 4 else "has no subnet6"
                    yield Problem(table, key, f"network {net.name!r} {lacking} ({address})")
                    continue
                edges = (subnet.network_address, subnet.broadcast_address) if family == 4 else (subnet[0],)
                if address not in subnet or address in edges:
                    yield Problem(table, key, f"address {address} is not a host address of {subnet}")
                elif address == gateway:
                    yield Problem(table, key, f"address {address} is the gateway of network {net.name!r}")
                elif (net.name, address) in used:
                    yield Problem(table, key, f"address {address} is also container {used[(net.name, address)]!r}'s")
                used[(net.name, address)] = container.name


def _capacity_problems(topo: Topology, networks: dict[str, Network]) -> Iterator[Problem]:
    """A network with more containers than addresses: each attachment left without one, named when the file is
    read (allocation takes fixed addresses first, then the others in the order of the file)."""
    fixed: dict[str, int] = {}
    pending: dict[str, list[tuple[Container, int]]] = {}
    for container in topo.containers:
        for index, att in enumerate(container.networks):
            if att.network not in networks:
                continue
            if att.address is not None:
                fixed[att.network] = fixed.get(att.network, 0) + 1
            else:
                pending.setdefault(att.network, []).append((container, index))
    for name, waiting in pending.items():
        net = networks[name]
        if net.subnet is None or net.subnet.num_addresses < 4:
            continue  # IPv6 only (a /124 at most has room enough); or too small: said once, of the subnet
        room = net.subnet.num_addresses - 3  # less the network's, the broadcast and the gateway's addresses
        for container, index in waiting[max(room - fixed.get(name, 0), 0) :]:
            yield Problem(
                toml_key("containers", container.name), f"networks[{index}]",
                f"network {name!r} ({net.subnet}) has no free address left: it has {room} for containers, "
                f"and {len(waiting) + fixed.get(name, 0)} containers join it",
            )  # fmt: skip
