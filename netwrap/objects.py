"""Frozen, validated value objects for what a container network is made of.

Each object says, with no process started, the commands that create it,
delete it and check it (:meth:`create_commands`, :meth:`delete_commands`,
:meth:`check_command`). Values are validated and normalised when the object is
built, so that bad input fails here, naming the field, before anything runs.
For the tutorial's objects the commands are the document's own.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Literal, Protocol, runtime_checkable

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

    @property
    def key(self) -> str:
        return f"netns:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("netns", "add", self.name),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("netns", "del", self.name),)

    def check_command(self) -> Command:
        return _read("ip", "netns", "list")


@attrs.frozen
class VethPair:
    """A veth pair ``name``/``peer`` created in ``netns`` (the host when None).

    Deleting either end deletes both, so :meth:`delete_commands` names ``peer``,
    the end that stays where the pair was made when ``name`` is moved away (as in
    the tutorial, which deletes ``Tveth1``).
    """

    name: str = attrs.field(validator=_name)
    peer: str = attrs.field(validator=_name)
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    def __attrs_post_init__(self) -> None:
        if self.name == self.peer:
            raise ValidationError("VethPair.peer", self.peer, "must differ from VethPair.name")

    @property
    def key(self) -> str:
        return f"veth:{_where(self.netns)}:{self.name}:{self.peer}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "add", self.name, "type", "veth", "peer", "name", self.peer, netns=self.netns),)

    def delete_commands(self, end: str | None = None) -> tuple[Command, ...]:
        """``ip link del END``: ``peer`` unless another ``end`` of the pair is named."""
        if end not in (None, self.name, self.peer):
            raise ValidationError("end", end, f"is not an end of the pair {self.name}/{self.peer}")
        return (_ip("link", "del", end or self.peer, netns=self.netns),)

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

    @property
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
    """A Linux bridge, made with ``brctl`` (as the document does) or with ``ip``."""

    name: str = attrs.field(validator=_name)
    tool: BridgeTool = attrs.field(default="brctl", validator=attrs.validators.in_(("brctl", "ip")))
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    @property
    def key(self) -> str:
        return f"bridge:{_where(self.netns)}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (Command("brctl", ("addbr", self.name), netns=self.netns),)
        return (_ip("link", "add", self.name, "type", "bridge", netns=self.netns),)

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
    """Device ``port`` plugged into ``bridge``."""

    bridge: str = attrs.field(validator=_name)
    port: str = attrs.field(validator=_name)
    tool: BridgeTool = attrs.field(default="brctl", validator=attrs.validators.in_(("brctl", "ip")))
    netns: str | None = attrs.field(default=None, validator=_opt_netns)

    @property
    def key(self) -> str:
        return f"port:{_where(self.netns)}:{self.bridge}:{self.port}"

    def create_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (Command("brctl", ("addif", self.bridge, self.port), netns=self.netns),)
        return (_ip("link", "set", self.port, "master", self.bridge, netns=self.netns),)

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

    @property
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

    @property
    def key(self) -> str:
        return f"up:{_where(self.netns)}:{self.device}"

    def create_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "set", self.device, "up", netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (_ip("link", "set", self.device, "down", netns=self.netns),)

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

    @property
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

    @property
    def key(self) -> str:
        return f"sysctl:{_where(self.netns)}:{self.name}"

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
        if not port_text.isdigit():
            raise ValidationError(field, value, "the port must be a number")
        v.port(field, int(port_text))
        return f"{address}:{int(port_text)}"
    return str(address)


def _ipv4_network(field: str, value: object) -> ipaddress.IPv4Network:
    network = v.ip_network(field, value)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValidationError(field, value, "iptables takes IPv4 networks (ip6tables is not supported yet)")
    return network


def _nat_source(value: str | ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
    return None if value is None else _ipv4_network("NatRule.source", value)


def _nat_destination(value: str | ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
    return None if value is None else _ipv4_network("NatRule.destination", value)


def _nat_to(value: str | None) -> str | None:
    return None if value is None else _dnat_target("NatRule.to", value)


@attrs.frozen
class NatRule:
    """One rule of iptables' ``nat`` table.

    The rule body is written the way ``iptables -S`` prints it (``/32`` on single
    addresses, ``-m tcp`` after ``-p tcp``, ``!`` before the option), and the same
    body serves ``-A`` (create), ``-C`` (check) and ``-D`` (delete).
    """

    CHAINS: ClassVar[tuple[str, ...]] = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
    TARGETS: ClassVar[tuple[str, ...]] = ("MASQUERADE", "DNAT", "SNAT", "RETURN", "ACCEPT")

    chain: str = attrs.field(validator=attrs.validators.in_(CHAINS))
    jump: str = attrs.field(validator=attrs.validators.in_(TARGETS))
    source: ipaddress.IPv4Network | None = attrs.field(default=None, converter=_nat_source)
    destination: ipaddress.IPv4Network | None = attrs.field(default=None, converter=_nat_destination)
    in_interface: str | None = attrs.field(default=None, validator=_opt_name)
    in_negated: bool = False
    out_interface: str | None = attrs.field(default=None, validator=_opt_name)
    out_negated: bool = False
    protocol: Literal["tcp", "udp"] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("tcp", "udp")))
    )
    dport: int | None = attrs.field(default=None, validator=v.optional_validator(v.port))
    to: str | None = attrs.field(default=None, converter=_nat_to)

    def __attrs_post_init__(self) -> None:
        if self.dport is not None and self.protocol is None:
            raise ValidationError("NatRule.dport", self.dport, "a port needs a protocol (tcp or udp)")
        if self.jump in ("DNAT", "SNAT") and self.to is None:
            raise ValidationError("NatRule.to", None, f"{self.jump} needs a target address")
        if self.jump not in ("DNAT", "SNAT") and self.to is not None:
            raise ValidationError("NatRule.to", self.to, f"{self.jump} takes no target address")
        if self.in_negated and self.in_interface is None:
            raise ValidationError("NatRule.in_negated", True, "negates nothing: in_interface is not set")
        if self.out_negated and self.out_interface is None:
            raise ValidationError("NatRule.out_negated", True, "negates nothing: out_interface is not set")

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

    @property
    def key(self) -> str:
        return f"nat:{self.chain}:{' '.join(self.body())}"

    def body(self) -> tuple[str, ...]:
        """The rule's match and target, in ``iptables -S`` order."""
        words: list[str] = []
        if self.source is not None:
            words += ["-s", str(self.source)]
        if self.destination is not None:
            words += ["-d", str(self.destination)]
        if self.in_interface is not None:
            words += (["!"] if self.in_negated else []) + ["-i", self.in_interface]
        if self.out_interface is not None:
            words += (["!"] if self.out_negated else []) + ["-o", self.out_interface]
        if self.protocol is not None:
            words += ["-p", self.protocol]
            if self.dport is not None:
                words += ["-m", self.protocol, "--dport", str(self.dport)]
        words += ["-j", self.jump]
        if self.jump == "DNAT" and self.to is not None:
            words += ["--to-destination", self.to]
        elif self.jump == "SNAT" and self.to is not None:
            words += ["--to-source", self.to]
        return tuple(words)

    def _verb(self, verb: str, *, mutates: bool, ok: frozenset[int] = frozenset({0})) -> Command:
        return Command("iptables", ("-t", "nat", verb, self.chain, *self.body()), mutates=mutates, ok_codes=ok)

    def create_commands(self) -> tuple[Command, ...]:
        return (self._verb("-A", mutates=True),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (self._verb("-D", mutates=True),)

    def check_command(self) -> Command:
        """``iptables -t nat -C ...``: exit 0 present, exit 1 absent."""
        return self._verb("-C", mutates=False, ok=frozenset({0, 1}))
