"""Frozen, validated value objects for what a container network is made of.

Each object says, with no process started, the commands that create it,
delete it and check it (:meth:`create_commands`, :meth:`delete_commands`,
:meth:`check_command`). Values are validated and normalised when the object is
built, so that bad input fails here, naming the field, before anything runs.
For the tutorial's objects the commands are the document's own.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from typing import Literal, Protocol, cast, runtime_checkable

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.errors import ValidationError

BridgeTool = Literal["brctl", "ip"]
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_name = v.validator(v.interface_name)
_opt_name = v.optional_validator(v.interface_name)
_opt_netns = v.optional_validator(v.namespace_name)


@runtime_checkable
class NetObject(Protocol):
    """What every object offers."""

    @property
    def key(self) -> str: ...

    def create_commands(self) -> tuple[Command, ...]: ...

    def delete_commands(self) -> tuple[Command, ...]: ...

    def check_command(self) -> Command: ...


def _read(tool: str, *args: str, netns: str | None = None) -> Command:
    return Command(tool, args, netns=netns, mutates=False)


def _ip(*args: str, netns: str | None = None) -> Command:
    return Command("ip", args, netns=netns)


def _links(netns: str | None) -> Command:
    return _read("ip", "-d", "-json", "link", "show", netns=netns)


def _where(netns: str | None) -> str:
    return netns or ""


@attrs.frozen
class Namespace:
    """A named network namespace, the tutorial's "container": ``ip netns add NAME``."""

    name: str = attrs.field(validator=v.validator(v.namespace_name))

    @functools.cached_property
    def key(self) -> str:
        return f"netns:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("netns", "add", self.name),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("netns", "del", self.name),)

    def check_command(self) -> Command:
        return _read("ip", "netns", "list")


def _check_group(field: str, group: object) -> None:
    if isinstance(group, bool) or not isinstance(group, int) or not 0 < group < 2**31:
        raise ValidationError(field, group, "must be a link group number from 1 to 2**31-1")


@attrs.frozen
class VethPair:
    """A veth pair ``name``/``peer`` created in ``netns`` (the host when None).

    With ``peer_netns`` the peer is made directly inside that namespace, so its
    name need only be unique there (``eth0`` in every container). ``group``
    puts the end made here in a link group, so that a teardown can delete a
    whole network's veths in one request (``ip link del group G``). Deleting
    either end deletes both, so :meth:`delete_commands` names ``peer``, the end
    that stays where the pair was made when ``name`` is moved away (as in the
    tutorial, which deletes ``Tveth1``).
    """

    name: str = attrs.field(validator=_name)
    peer: str = attrs.field(validator=_name)
    netns: str | None = attrs.field(default=None, validator=_opt_netns)
    peer_netns: str | None = attrs.field(default=None, validator=_opt_netns)
    group: int | None = attrs.field(default=None, kw_only=True, eq=False)
    mtu: int | None = attrs.field(default=None, kw_only=True, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.group is not None:
            _check_group("VethPair.group", self.group)
        if self.name == self.peer and self.peer_netns in (None, self.netns):
            raise ValidationError("VethPair.peer", self.peer, "must differ from VethPair.name")
        if self.peer_netns is not None and self.peer_netns == self.netns:
            raise ValidationError("VethPair.peer_netns", self.peer_netns, "is where the pair is made already")

    @functools.cached_property
    def key(self) -> str:
        peer_at = f"@{self.peer_netns}" if self.peer_netns else ""
        return f"veth:{_where(self.netns)}:{self.name}:{self.peer}{peer_at}"

    def create_commands(self) -> tuple[Command, ...]:
        """``ip link add NAME type veth peer name PEER [netns PEER_NETNS]``: one command, even across namespaces."""
        group = ("group", str(self.group)) if self.group is not None else ()
        mtu = ("mtu", str(self.mtu)) if self.mtu is not None else ()
        args: tuple[str, ...] = (
            "link",
            "add",
            self.name,
            *mtu,
            *group,
            "type",
            "veth",
            "peer",
            "name",
            self.peer,
            *mtu,
        )
        if self.peer_netns is not None:
            args += ("netns", self.peer_netns)
        return (_ip(*args, netns=self.netns),)

    def delete_commands(self, end: str | None = None) -> tuple[Command, ...]:
        """``ip link del END``: by default the end that stays where the pair was made.

        That is ``peer``, as in the tutorial (the pair's ``name`` is moved away), or
        ``name`` when the peer was made in another namespace (``peer_netns``).
        """
        if end not in (None, self.name, self.peer):
            raise ValidationError("end", end, f"is not an end of the pair {self.name}/{self.peer}")
        default = self.name if self.peer_netns is not None else self.peer
        return (_ip("link", "del", end or default, netns=self.netns),)

    def check_command(self) -> Command:
        return _links(self.netns)


@attrs.frozen
class LinkNetns:
    """Link ``device`` moved from the host into namespace ``netns``.

    Its check looks inside ``netns``. A device cannot be handed back without
    naming where to; deleting the placement deletes the device (a veth takes its
    peer with it).
    """

    device: str = attrs.field(validator=_name)
    netns: str = attrs.field(validator=v.validator(v.namespace_name))

    @functools.cached_property
    def key(self) -> str:
        return f"placement:{self.netns}:{self.device}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "set", self.device, "netns", self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "del", self.device, netns=self.netns),)

    def check_command(self) -> Command:
        return _links(self.netns)


@attrs.frozen
class Bridge:
    """A Linux bridge, made with ``brctl`` (as the document does) or with ``ip``.

    ``group`` (``ip`` only) puts it in a link group, as :class:`VethPair` does
    with its end: a teardown of a whole network is then one request.
    """

    name: str = attrs.field(validator=_name)
    tool: BridgeTool = attrs.field(default="brctl", validator=attrs.validators.in_(("brctl", "ip")))
    netns: str | None = attrs.field(default=None, validator=_opt_netns)
    group: int | None = attrs.field(default=None, kw_only=True, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.group is not None:
            _check_group("Bridge.group", self.group)
            if self.tool != "ip":
                raise ValidationError("Bridge.group", self.group, "brctl makes no link group: use tool='ip'")

    @functools.cached_property
    def key(self) -> str:
        return f"bridge:{_where(self.netns)}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (Command("brctl", ("addbr", self.name), netns=self.netns),)
        group = ("group", str(self.group)) if self.group is not None else ()
        return (_ip("link", "add", self.name, *group, "type", "bridge", netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (
                _ip("link", "set", self.name, "down", netns=self.netns),
                Command("brctl", ("delbr", self.name), netns=self.netns),
            )
        return (_ip("link", "del", self.name, netns=self.netns),)

    def check_command(self) -> Command:
        return _links(self.netns)


@attrs.frozen
class BridgePort:
    """Device ``port`` plugged into ``bridge`` (``isolated``: kept from the other isolated ports)."""

    bridge: str = attrs.field(validator=_name)
    port: str = attrs.field(validator=_name)
    tool: BridgeTool = attrs.field(default="brctl", validator=attrs.validators.in_(("brctl", "ip")))
    netns: str | None = attrs.field(default=None, validator=_opt_netns)
    isolated: bool = attrs.field(default=False, kw_only=True)

    @functools.cached_property
    def key(self) -> str:
        return f"port:{_where(self.netns)}:{self.bridge}:{self.port}{':isolated' if self.isolated else ''}"

    def create_commands(self) -> tuple[Command, ...]:
        """Plug the port in; an ``isolated`` port can then reach only the bridge's non-isolated ports."""
        if self.tool == "brctl":
            plug = Command("brctl", ("addif", self.bridge, self.port), netns=self.netns)
        else:
            plug = _ip("link", "set", self.port, "master", self.bridge, netns=self.netns)
        if not self.isolated:
            return (plug,)
        return (plug, _ip("link", "set", "dev", self.port, "type", "bridge_slave", "isolated", "on", netns=self.netns))

    def delete_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (Command("brctl", ("delif", self.bridge, self.port), netns=self.netns),)
        return (_ip("link", "set", self.port, "nomaster", netns=self.netns),)

    def check_command(self) -> Command:
        return _links(self.netns)


def _address(value: str | IPInterface) -> IPInterface:
    return v.ip_interface("Address.address", value)


def _route_destination(value: str | IPNetwork) -> IPNetwork | Literal["default"]:
    if value == "default":
        return "default"
    return v.ip_network("Route.destination", value)


def _gateway(value: str | IPAddress | None) -> IPAddress | None:
    return None if value is None else v.ip_address("Route.gateway", value)


@attrs.frozen
class Address:
    """An address with its prefix on ``device``: ``ip addr add 172.18.0.2/24 dev Tveth0``."""

    device: str = attrs.field(validator=_name)
    address: IPInterface = attrs.field(converter=_address)
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    @functools.cached_property
    def key(self) -> str:
        return f"addr:{_where(self.netns)}:{self.device}:{self.address}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("addr", "add", str(self.address), "dev", self.device, netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("addr", "del", str(self.address), "dev", self.device, netns=self.netns),)

    def check_command(self) -> Command:
        return _read("ip", "-json", "addr", "show", netns=self.netns)


@attrs.frozen
class LinkUp:
    """Device ``device`` administratively up: ``ip link set DEV up``."""

    device: str = attrs.field(validator=_name)
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    @functools.cached_property
    def key(self) -> str:
        return f"up:{_where(self.netns)}:{self.device}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "set", self.device, "up", netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        """Down again; ``lo`` also loses the addresses the kernel gave it when it came up, as a new namespace's."""
        down = _ip("link", "set", self.device, "down", netns=self.netns)
        if self.device == "lo":
            return (down, _ip("addr", "flush", "dev", "lo", netns=self.netns))
        return (down,)

    def check_command(self) -> Command:
        return _links(self.netns)


@attrs.frozen
class Route:
    """A route: ``ip route add default via 172.18.0.1 dev Tveth0``."""

    destination: IPNetwork | Literal["default"] = attrs.field(converter=_route_destination)
    gateway: IPAddress | None = attrs.field(default=None, converter=_gateway)
    device: str | None = attrs.field(default=None, validator=_opt_name)
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    def __attrs_post_init__(self) -> None:
        if self.gateway is None and self.device is None:
            raise ValidationError("Route.gateway", None, "a route needs a gateway, a device or both")

    @functools.cached_property
    def key(self) -> str:
        return f"route:{_where(self.netns)}:{self.destination}:{self.gateway or ''}:{self.device or ''}"

    def _spec(self) -> tuple[str, ...]:
        spec: tuple[str, ...] = (str(self.destination),)
        if self.gateway is not None:
            spec += ("via", str(self.gateway))
        if self.device is not None:
            spec += ("dev", self.device)
        return spec

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("route", "add", *self._spec(), netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("route", "del", *self._spec(), netns=self.netns),)

    def check_command(self) -> Command:
        return _read("ip", "-json", "route", "show", netns=self.netns)


def _sysctl_value(value: str | int) -> str:
    return v.sysctl_value("Sysctl.value", value)


@attrs.frozen
class Sysctl:
    """A kernel setting: ``sysctl net.ipv4.ip_forward=1``.

    Deleting a setting means putting back the value it had before; that value
    is not part of the wanted state, so :meth:`restore_commands` takes it.
    """

    name: str = attrs.field(validator=v.validator(v.sysctl_key))
    value: str = attrs.field(converter=_sysctl_value)
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    @functools.cached_property
    def key(self) -> str:
        return f"sysctl:{_where(self.netns)}:{self.name}"

    @property
    def device(self) -> str | None:
        """The device a ``net.ipv4.conf.DEV.X`` setting belongs to (None for a setting of the whole host)."""
        parts = self.name.split(".")
        if len(parts) < 5 or parts[2] != "conf" or parts[3] in ("default", "all"):
            return None
        return parts[3]

    @property
    def default(self) -> str | None:
        """``net.ipv4.conf.default.X`` for a device's setting: the value a new device starts with, which is what
        a setting of a device netwrap makes is given back to. None for a setting of the whole host."""
        if self.device is None:
            return None
        parts = self.name.split(".")
        return ".".join((*parts[:3], "default", *parts[4:]))

    def create_commands(self) -> tuple[Command, ...]:
        return (Command("sysctl", (f"{self.name}={self.value}",), netns=self.netns),)

    def restore_commands(self, previous: str) -> tuple[Command, ...]:
        return attrs.evolve(self, value=previous).create_commands()

    def delete_commands(self) -> tuple[Command, ...]:
        raise ValidationError("Sysctl.value", self.value, "a setting cannot be deleted; use restore_commands(previous)")

    def check_command(self) -> Command:
        return _read("sysctl", "-n", self.name, netns=self.netns)


def _dnat_target(field: str, value: object) -> str:
    """``IP`` or ``IP:PORT``, normalised."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string like 172.18.0.2:80")
    host, sep, port_text = value.rpartition(":")
    if not sep or "." not in value:
        host, port_text = value, ""
    address = v.ip_address(field, host)
    if not isinstance(address, ipaddress.IPv4Address):
        raise ValidationError(field, value, "iptables DNAT here takes an IPv4 address")
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()):
            raise ValidationError(field, value, "the port must be a number")
        v.port(field, int(port_text))
        return f"{address}:{int(port_text)}"
    return str(address)


def _ipv4_network(field: str, value: object) -> ipaddress.IPv4Network:
    network = v.ip_network(field, value)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValidationError(field, value, "iptables takes IPv4 networks (ip6tables is not supported yet)")
    return network


# Converters normalise what they can and pass anything else through unchanged; the
# validators (which know the class and the field) then refuse it with the reason.
def _to_v4net(value: str | ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Network(value)
        except ValueError:
            pass
    return cast("ipaddress.IPv4Network | None", value)


def _to_target(value: str | None) -> str | None:
    try:
        return _dnat_target("to", value) if value is not None else None
    except ValidationError:
        return value


def _to_words(value: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split(","))
    return tuple(value)


TABLE_CHAINS: dict[str, tuple[str, ...]] = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}
BUILTIN_CHAINS = frozenset(c for chains in TABLE_CHAINS.values() for c in chains)
TARGETS = frozenset({"ACCEPT", "DROP", "REJECT", "RETURN", "MASQUERADE", "DNAT", "SNAT", "LOG"})
ADDRESS_TYPES = frozenset({"LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "ANYCAST", "BLACKHOLE", "UNREACHABLE"})
CONNTRACK_STATES = frozenset({"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"})
OWN_PREFIX = "NETWRAP-"  # the chains netwrap owns; their jumps stand first in the built-in chains
ISOLATION_SUFFIX = "-ISO"  # a topology's isolation chain: its jump stands before every other netwrap jump
_CHAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,27}$")


def _check_table(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in TABLE_CHAINS:
        field = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(field, value, f"must be one of {sorted(TABLE_CHAINS)}")


def _check_chain_name(field: str, value: object, table: str) -> str:
    if not isinstance(value, str) or not _CHAIN_NAME.match(value):
        raise ValidationError(field, value, "is not a chain name (letters, digits, '_' or '-', at most 28)")
    if value in BUILTIN_CHAINS and value not in TABLE_CHAINS.get(table, ()):
        raise ValidationError(field, value, f"is not a chain of the {table} table")
    return value


def _check_comment(field: str, value: object) -> None:
    """An iptables comment that cannot break out of its argument, in a command or an iptables-restore file."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string")
    if len(value.encode()) > 255:
        raise ValidationError(field, value, f"is {len(value.encode())} bytes; iptables allows at most 255")
    for ch in value:
        if ch in "\"'\\`$" or not ch.isprintable() or (ch.isspace() and ch != " "):
            raise ValidationError(field, value, f"contains {ch!r}; use printable text without quotes or backslashes")
    if not value.strip():
        raise ValidationError(field, value, "must not be empty")


@attrs.frozen
class Rule:
    """One iptables rule, written the way ``iptables -S`` prints it.

    ``/32`` on single addresses, ``-m tcp`` after ``-p tcp``, ``!`` before the
    option it negates, and matches in one fixed order, so that what is wanted
    equals what the host lists. The same body serves ``-A`` (or ``-I CHAIN 1``
    with ``insert``), ``-C`` and ``-D``.
    """

    chain: str
    jump: str
    source: ipaddress.IPv4Network | None = attrs.field(default=None, converter=_to_v4net)
    destination: ipaddress.IPv4Network | None = attrs.field(default=None, converter=_to_v4net)
    in_interface: str | None = attrs.field(default=None, validator=_opt_name)
    in_negated: bool = False
    out_interface: str | None = attrs.field(default=None, validator=_opt_name)
    out_negated: bool = False
    protocol: Literal["tcp", "udp"] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("tcp", "udp")))
    )
    dport: int | None = attrs.field(default=None, validator=v.optional_validator(v.port))
    to: str | None = attrs.field(default=None, converter=_to_target)
    source_negated: bool = attrs.field(default=False, kw_only=True)
    destination_negated: bool = attrs.field(default=False, kw_only=True)
    src_type: str | None = attrs.field(default=None, kw_only=True)
    dst_type: str | None = attrs.field(default=None, kw_only=True)
    ctstate: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_to_words)
    table: str = attrs.field(default="filter", kw_only=True, validator=_check_table)
    insert: bool = attrs.field(default=False, kw_only=True)
    comment: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        name = type(self).__name__
        if self.comment is not None:
            _check_comment(f"{name}.comment", self.comment)
        _check_chain_name(f"{name}.chain", self.chain, self.table)
        if self.jump not in TARGETS:
            _check_chain_name(f"{name}.jump", self.jump, self.table)
            if self.jump in BUILTIN_CHAINS:
                raise ValidationError(f"{name}.jump", self.jump, "cannot jump to a built-in chain")
        for field in ("source", "destination"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, ipaddress.IPv4Network):
                _ipv4_network(f"{name}.{field}", value)
                raise ValidationError(f"{name}.{field}", value, "is not an IPv4 network")
        if self.to is not None:
            _dnat_target(f"{name}.to", self.to)
        for field in ("src_type", "dst_type"):
            value = getattr(self, field)
            if value is not None and value not in ADDRESS_TYPES:
                raise ValidationError(f"{name}.{field}", value, f"must be one of {sorted(ADDRESS_TYPES)}")
        for state in self.ctstate:
            if state not in CONNTRACK_STATES:
                raise ValidationError(f"{name}.ctstate", state, f"must be among {sorted(CONNTRACK_STATES)}")
        if self.dport is not None and self.protocol is None:
            raise ValidationError(f"{name}.dport", self.dport, "a port needs a protocol (tcp or udp)")
        if self.jump in ("DNAT", "SNAT") and self.to is None:
            raise ValidationError(f"{name}.to", None, f"{self.jump} needs a target address")
        if self.jump not in ("DNAT", "SNAT") and self.to is not None:
            raise ValidationError(f"{name}.to", self.to, f"{self.jump} takes no target address")
        if self.jump in ("DNAT", "SNAT", "MASQUERADE") and self.table != "nat":
            raise ValidationError(f"{name}.jump", self.jump, "belongs in the nat table")
        if self.jump in ("DROP", "REJECT") and self.table == "nat":
            raise ValidationError(f"{name}.jump", self.jump, "the nat table is not for filtering")
        for field, iface in (("in_negated", self.in_interface), ("out_negated", self.out_interface)):
            if getattr(self, field) and iface is None:
                raise ValidationError(f"{name}.{field}", True, "negates nothing: the interface is not set")
        for field, value in (("source_negated", self.source), ("destination_negated", self.destination)):
            if getattr(self, field) and value is None:
                raise ValidationError(f"{name}.{field}", True, "negates nothing: the address is not set")

    @functools.cached_property
    def key(self) -> str:
        return f"{self.table}:{self.chain}:{' '.join(self.body())}"

    def body(self) -> tuple[str, ...]:
        """The rule's matches and target, in ``iptables -S`` order."""
        return self._body

    @functools.cached_property
    def _body(self) -> tuple[str, ...]:
        # worked out once per rule: a plan compares and keys every rule, and a topology has hundreds
        words: list[str] = []

        def opt(negated: bool, flag: str, value: object) -> None:
            if value is not None:
                words.extend((["!"] if negated else []) + [flag, str(value)])

        opt(self.source_negated, "-s", self.source)
        opt(self.destination_negated, "-d", self.destination)
        opt(self.in_negated, "-i", self.in_interface)
        opt(self.out_negated, "-o", self.out_interface)
        if self.protocol is not None:
            words += ["-p", self.protocol]
            if self.dport is not None:
                words += ["-m", self.protocol, "--dport", str(self.dport)]
        if self.src_type is not None or self.dst_type is not None:
            words += ["-m", "addrtype"]
            words += ["--src-type", self.src_type] if self.src_type is not None else []
            words += ["--dst-type", self.dst_type] if self.dst_type is not None else []
        if self.ctstate:
            words += ["-m", "conntrack", "--ctstate", ",".join(self.ctstate)]
        if self.comment is not None:
            words += ["-m", "comment", "--comment", self.comment]
        words += ["-j", self.jump]
        if self.jump == "DNAT" and self.to is not None:
            words += ["--to-destination", self.to]
        elif self.jump == "SNAT" and self.to is not None:
            words += ["--to-source", self.to]
        return tuple(words)

    def _verb(self, *verb: str, mutates: bool, ok: frozenset[int] = frozenset({0})) -> Command:
        args = ("-t", self.table, verb[0], self.chain, *verb[1:], *self.body())
        return Command("iptables", args, mutates=mutates, ok_codes=ok)

    def create_commands(self) -> tuple[Command, ...]:
        if self.insert:
            return self.insert_commands(1)
        return (self._verb("-A", mutates=True),)

    def insert_commands(self, position: int) -> tuple[Command, ...]:
        """``iptables -t TABLE -I CHAIN POSITION ...``: the rule placed at ``position`` (from 1)."""
        return (self._verb("-I", str(position), mutates=True),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (self._verb("-D", mutates=True),)

    def check_command(self) -> Command:
        """``iptables -t TABLE -C ...``: exit 0 present, exit 1 absent."""
        return self._verb("-C", mutates=False, ok=frozenset({0, 1}))


def _nat_table(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value != "nat":
        raise ValidationError(f"{type(instance).__name__}.{attribute.name}", value, "a NatRule is in the nat table")


@attrs.frozen
class NatRule(Rule):
    """A :class:`Rule` of iptables' ``nat`` table (the tutorial's steps 21 and 22)."""

    table: str = attrs.field(default="nat", kw_only=True, validator=_nat_table)

    @classmethod
    def masquerade(cls, source: str, *, not_out: str | None = None, out: str | None = None) -> NatRule:
        """``-s SOURCE ! -o NOT_OUT -j MASQUERADE`` in POSTROUTING (step 21 of the tutorial)."""
        if not_out is not None and out is not None:
            raise ValidationError("NatRule.out_interface", out, "give either out or not_out, not both")
        return cls(
            "POSTROUTING",
            "MASQUERADE",
            source=source,
            out_interface=not_out if not_out is not None else out,
            out_negated=not_out is not None,
        )

    @classmethod
    def publish(
        cls,
        port: int,
        to: str,
        *,
        protocol: Literal["tcp", "udp"] = "tcp",
        not_in: str | None = None,
        chain: str = "PREROUTING",
    ) -> NatRule:
        """``! -i NOT_IN -p PROTO -m PROTO --dport PORT -j DNAT --to-destination TO`` (step 22)."""
        return cls(
            chain,
            "DNAT",
            in_interface=not_in,
            in_negated=not_in is not None,
            protocol=protocol,
            dport=port,
            to=to,
        )


@attrs.frozen
class Chain:
    """A chain of netwrap's own in an iptables table: ``iptables -t filter -N NAME``."""

    name: str
    table: str = attrs.field(default="filter", validator=_check_table)

    def __attrs_post_init__(self) -> None:
        _check_chain_name("Chain.name", self.name, self.table)
        if self.name in BUILTIN_CHAINS:
            raise ValidationError("Chain.name", self.name, "is a built-in chain")

    @functools.cached_property
    def key(self) -> str:
        return f"chain:{self.table}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        return (Command("iptables", ("-t", self.table, "-N", self.name)),)

    def delete_commands(self) -> tuple[Command, ...]:
        """Flush, then delete: a chain must be empty (and unreferenced) to go."""
        return (
            Command("iptables", ("-t", self.table, "-F", self.name)),
            Command("iptables", ("-t", self.table, "-X", self.name)),
        )

    def check_command(self) -> Command:
        return Command("iptables", ("-t", self.table, "-S"), mutates=False)


def _to_rules(value: Sequence[Rule]) -> tuple[Rule, ...]:
    return tuple(value)


def _restore_rule(rule: Rule) -> str:
    """One rule as an ``iptables-restore`` line: words split on white space, so a comment is quoted."""
    return " ".join(("-A", rule.chain, *(f'"{w}"' if " " in w else w for w in rule.body())))


@attrs.frozen
class OwnedChain:
    """A chain of netwrap's own and its whole, ordered list of rules: one object, written whole.

    The host either lists exactly these rules in this order, or the chain is
    rewritten completely in one atomic ``iptables-restore --noflush``
    transaction (``:NAME - [0:0]`` creates the chain or flushes it, then its
    rules follow), as kube-proxy does with its chains. Appending one rule to an
    ordered chain is how an edit silently breaks isolation; this cannot.
    """

    name: str
    table: str = attrs.field(default="filter", validator=_check_table)
    rules: tuple[Rule, ...] = attrs.field(default=(), converter=_to_rules)

    def __attrs_post_init__(self) -> None:
        _check_chain_name("OwnedChain.name", self.name, self.table)
        if self.name in BUILTIN_CHAINS:
            raise ValidationError("OwnedChain.name", self.name, "is a built-in chain")
        for number, rule in enumerate(self.rules):
            if not isinstance(rule, Rule):
                raise ValidationError(f"OwnedChain.rules[{number}]", rule, "is not a Rule")
            if rule.chain != self.name or rule.table != self.table:
                raise ValidationError(
                    f"OwnedChain.rules[{number}]",
                    rule.key,
                    f"belongs to {rule.table} {rule.chain}, not {self.table} {self.name}",
                )

    @functools.cached_property
    def key(self) -> str:
        return f"chain:{self.table}:{self.name}"

    def bodies(self) -> tuple[tuple[str, ...], ...]:
        """The rules' bodies, in order: what ``iptables -S`` must list for this chain."""
        return tuple(rule.body() for rule in self.rules)

    def restore_text(self) -> str:
        """The ``iptables-restore --noflush`` input that makes the chain exactly this."""
        lines = [f"*{self.table}", f":{self.name} - [0:0]", *(_restore_rule(rule) for rule in self.rules), "COMMIT"]
        return "\n".join(lines) + "\n"

    def create_commands(self) -> tuple[Command, ...]:
        """One transaction: the chain made or flushed, and every rule in order (create and rewrite alike)."""
        return (Command("iptables-restore", ("--noflush",), input=self.restore_text()),)

    def delete_commands(self) -> tuple[Command, ...]:
        """Flush, then delete: a chain must be empty (and unreferenced) to go."""
        return (
            Command("iptables", ("-t", self.table, "-F", self.name)),
            Command("iptables", ("-t", self.table, "-X", self.name)),
        )

    def check_command(self) -> Command:
        return Command("iptables", ("-t", self.table, "-S", self.name), mutates=False)


@attrs.frozen
class Vxlan:
    """A VXLAN device for an overlay between machines: ``ip link add NAME type vxlan id VNI local IP ...``.

    Unicast only (``nolearning``): the peers are listed with :class:`FdbEntry`.
    ``mtu`` leaves room for the 50 bytes of encapsulation.
    """

    name: str = attrs.field(validator=_name)
    vni: int
    local: IPAddress = attrs.field(converter=_gateway)
    port: int = attrs.field(default=4789, validator=v.validator(v.port))
    device: str | None = attrs.field(default=None, validator=_opt_name)
    mtu: int | None = None
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 0 < self.vni < 2**24:
            raise ValidationError("Vxlan.vni", self.vni, "must be a VXLAN id from 1 to 16777215")
        if self.mtu is not None and (isinstance(self.mtu, bool) or not 68 <= self.mtu <= 65535):
            raise ValidationError("Vxlan.mtu", self.mtu, "must be from 68 to 65535")

    @functools.cached_property
    def key(self) -> str:
        return f"vxlan:{_where(self.netns)}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        mtu = ("mtu", str(self.mtu)) if self.mtu is not None else ()
        dev = ("dev", self.device) if self.device is not None else ()
        args = ("link", "add", self.name, *mtu, "type", "vxlan", "id", str(self.vni), "local", str(self.local),
                "dstport", str(self.port), "nolearning", *dev)  # fmt: skip
        return (_ip(*args, netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "del", self.name, netns=self.netns),)

    def check_command(self) -> Command:
        return _links(self.netns)


@attrs.frozen
class FdbEntry:
    """A forwarding entry of a VXLAN device: frames for ``mac`` go to the peer ``dst``.

    The all-zero MAC floods broadcasts and unknown destinations to every listed peer.
    """

    device: str = attrs.field(validator=_name)
    dst: IPAddress = attrs.field(converter=_gateway)
    mac: str = "00:00:00:00:00:00"
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    def __attrs_post_init__(self) -> None:
        if not re.fullmatch(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}", self.mac):
            raise ValidationError("FdbEntry.mac", self.mac, "must be a MAC address like 00:00:00:00:00:00")

    @functools.cached_property
    def key(self) -> str:
        return f"fdb:{_where(self.netns)}:{self.device}:{self.mac}:{self.dst}"

    def create_commands(self) -> tuple[Command, ...]:
        return (
            Command("bridge", ("fdb", "append", self.mac, "dev", self.device, "dst", str(self.dst)), netns=self.netns),
        )

    def delete_commands(self) -> tuple[Command, ...]:
        return (
            Command("bridge", ("fdb", "del", self.mac, "dev", self.device, "dst", str(self.dst)), netns=self.netns),
        )

    def check_command(self) -> Command:
        return Command("bridge", ("-json", "fdb", "show"), netns=self.netns, mutates=False)
