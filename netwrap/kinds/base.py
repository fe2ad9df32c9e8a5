"""What every kind of object says about itself, and the defaults most kinds keep.

An object is a frozen, validated value (a namespace, a veth pair, a rule, ...).
Its kind says, in one place, everything the engine needs to know of it:

- its commands: :meth:`create_commands`, :meth:`delete_commands`, :meth:`check_command`;
- what must be read to judge it (:meth:`needs`) and how it stands on a host
  so read (:meth:`assess`: present, missing, or in conflict with something of
  another shape under its name), and whether something of it is there to
  remove (:meth:`exists`);
- the commands that make it when missing, given what the host has
  (:meth:`plan_commands`), and those that remove it (:meth:`removal`);
- where it lives (:attr:`location`: its namespace, None on the host), the
  devices it names (:meth:`devices`), what it takes host-wide for itself
  (:meth:`claims`), whether every container relies on it (:meth:`shared`);
- what disappears with it (:meth:`takes_along`) and whether it disappears
  with something else (:meth:`goes_with`).

The engine (plan, build, check, status, teardown) loops over objects through
this interface and never names a kind; a new kind is one module and one line in
:data:`netwrap.kinds.KINDS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.host.parse import Link
from netwrap.validate import IPAddress

BridgeTool = Literal["brctl", "ip"]
Status = Literal["present", "missing", "conflict"]
Device = tuple[str | None, str]  # a device name and the namespace it is in (None: the host)

NAME = v.validator(v.interface_name)
OPT_NAME = v.optional_validator(v.interface_name)
OPT_NETNS = v.optional_validator(v.namespace_name)
NETNS = v.validator(v.namespace_name)
FLAG = v.validator(v.flag)
TOOL = v.validator(v.one_of("brctl", "ip"))
OPT_MTU = v.optional_validator(v.mtu)
OPT_MAC = v.optional_validator(v.mac_address)


@attrs.frozen
class Assessment:
    """One object's standing on the host, with the reason in words."""

    status: Status
    reason: str


def present(reason: str) -> Assessment:
    return Assessment("present", reason)


def missing(reason: str) -> Assessment:
    return Assessment("missing", reason)


def conflict(reason: str) -> Assessment:
    return Assessment("conflict", reason)


ClaimKind = Literal["namespace", "device", "chain", "subnet", "port"]
_ALL = ipaddress.IPv4Network("0.0.0.0/0")
_ALL6 = ipaddress.IPv6Network("::/0")


@attrs.frozen
class Claim:
    """One thing an object takes on a host for itself: ``kind``, where (a namespace, a table, a protocol), what."""

    kind: ClaimKind
    where: str
    what: str

    def describe(self) -> str:
        match self.kind:
            case "namespace":
                return f"namespace {self.what}"
            case "device":
                return f"device {self.what}" + (f" in namespace {self.where}" if self.where else " on the host")
            case "chain":
                return f"iptables chain {self.what} ({self.where})"
            case "subnet":
                return f"subnet {self.what}"
        host, _, port = self.what.rpartition(":")
        everywhere = {str(_ALL): "", str(_ALL6): " (IPv6)"}
        return f"host port {port}/{self.where}" + everywhere.get(host, f" on {host}")

    def clashes(self, other: Claim) -> bool:
        """Subnets clash when they overlap; ports when the port is the same and the host addresses overlap."""
        if (self.kind, self.where) != (other.kind, other.where):
            return False
        if self.kind == "subnet":
            return _overlap(self.what, other.what)
        if self.kind == "port":
            mine, _, port = self.what.rpartition(":")
            theirs, _, other_port = other.what.rpartition(":")
            return port == other_port and _overlap(mine, theirs)
        return self.what == other.what

    @classmethod
    def port(cls, protocol: str, destination: object, port: int, family: int = 4) -> Claim:
        """A published host port: ``destination`` None for every address (of ``family``)."""
        return cls("port", protocol, f"{destination or (_ALL6 if family == 6 else _ALL)}:{port}")


def _overlap(one: str, other: str) -> bool:
    """Whether two networks overlap; never across families (an IPv4 and an IPv6 port are two ports)."""
    mine, theirs = ipaddress.ip_network(one), ipaddress.ip_network(other)
    return mine.version == theirs.version and mine.overlaps(theirs)


@attrs.frozen
class Gone:
    """What a removal takes away with it: devices (each with the namespace it is in: two namespaces may each
    have an ``eth0``), namespaces, and chains with their rules."""

    links: frozenset[Device] = frozenset()
    namespaces: frozenset[str] = frozenset()
    chains: frozenset[tuple[str, str]] = frozenset()

    def __or__(self, other: Gone) -> Gone:
        return Gone(self.links | other.links, self.namespaces | other.namespaces, self.chains | other.chains)


@runtime_checkable
class NetObject(Protocol):
    """What every kind of object offers (see the module's docstring)."""

    restores: ClassVar[bool]
    found_anywhere: ClassVar[bool]
    written_whole: ClassVar[bool]
    made: ClassVar[bool]
    recalls: ClassVar[bool]

    @property
    def key(self) -> str: ...

    @property
    def location(self) -> str | None: ...

    def create_commands(self) -> tuple[Command, ...]: ...

    def delete_commands(self) -> tuple[Command, ...]: ...

    def check_command(self) -> Command: ...

    def needs(self) -> Need: ...

    def as_after(self, before: Mapping[str, Any]) -> Self: ...

    def lean_needs(self) -> Need: ...

    def removal_needs(self) -> Need: ...

    def assess(self, state: HostState) -> Assessment: ...

    def exists(self, state: HostState) -> bool: ...

    def plan_commands(self, state: HostState) -> tuple[Command, ...]: ...

    def removal(self, state: HostState, previous: str | None) -> tuple[tuple[Command, ...], str | None]: ...

    def trusted_removal(self) -> tuple[Command, ...] | None: ...

    def remembered(self, state: HostState) -> str | None: ...

    def devices(self) -> frozenset[Device]: ...

    def relies_on(self) -> frozenset[Device]: ...

    def claims(self) -> tuple[Claim, ...]: ...

    def shared(self) -> bool: ...

    def concerns(self, devices: frozenset[str], addresses: frozenset[IPAddress]) -> bool: ...

    def takes_along(self) -> Gone: ...

    def goes_with(self, gone: Gone) -> bool: ...

    def as_seen_from_host(self, state: HostState, places: set[str]) -> bool: ...

    def link_group(self, state: HostState) -> tuple[int, frozenset[str]] | None: ...


class Kind:
    """The defaults of :class:`NetObject`: a kind overrides what is its own.

    ``restores``: removing it means giving back an earlier value (a setting),
    which :meth:`remembered` reads from the host before the first change.
    ``found_anywhere``: a removal looks for it in every namespace (a device
    that may have been moved).
    ``written_whole``: made unread, it is written whole, exactly as wanted,
    whatever was there (a chain of netwrap's own, in one transaction).
    ``made``: one that is there belongs to whoever made it (a device, a
    chain): netwrap changes it in place (an MTU, a MAC, a chain's rules) only
    when its own record says it made it, never another tool's.
    ``recalls``: what is wanted of it depends on what the record says netwrap
    made it as (see :meth:`as_after`).
    """

    __slots__ = ()  # the kinds are slotted attrs classes: no per-object dict

    restores: ClassVar[bool] = False
    found_anywhere: ClassVar[bool] = False
    written_whole: ClassVar[bool] = False
    made: ClassVar[bool] = False
    recalls: ClassVar[bool] = False

    @property
    def key(self) -> str:
        raise NotImplementedError

    def as_after(self, before: Mapping[str, Any]) -> Self:
        """What is wanted of it, the record having described what netwrap made under its key as ``before``
        (only for a kind that ``recalls``): by default itself."""
        return self

    @property
    def location(self) -> str | None:
        """The namespace it lives in; None for the host."""
        return None

    def delete_commands(self) -> tuple[Command, ...]:
        raise NotImplementedError

    def check_command(self) -> Command:
        raise NotImplementedError

    def needs(self) -> Need:
        return Need()

    def lean_needs(self) -> Need:
        """What is enough to read when the object is expected as the last apply left it (see
        :mod:`netwrap.engine.check`'s record check): by default what :meth:`needs` says; an object judged by its
        own devices names them, so that the reads leave out the others."""
        return self.needs()

    def removal_needs(self) -> Need:
        """What :meth:`removal` reads (by default what :meth:`needs` says: it goes by the object's shape)."""
        return self.needs()

    def assess(self, state: HostState) -> Assessment:
        raise NotImplementedError

    def exists(self, state: HostState) -> bool:
        """Whether something of it is on the host to remove (by default: it is there as wanted)."""
        return self.shape(state).status == "present"

    def shape(self, state: HostState) -> Assessment:
        """Its assessment, leaving out what is set in place on an object that is there (an MTU); removals go
        by it. By default: :meth:`assess`."""
        return self.assess(state)

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """The commands that make it, when it is missing from a host observed as ``state``."""
        return self.create_commands()

    def create_commands(self) -> tuple[Command, ...]:
        raise NotImplementedError

    def removal(self, state: HostState, previous: str | None) -> tuple[tuple[Command, ...], str | None]:
        """The commands that remove it as observed, and a note when it is left alone (another shape is there)."""
        verdict = self.shape(state)
        if verdict.status == "conflict":
            return (), f"{self.key} left alone: {verdict.reason}"
        return (self.delete_commands() if verdict.status == "present" else ()), None

    def trusted_removal(self) -> tuple[Command, ...] | None:
        """The commands that remove it as the last complete apply made it, without a look first (a record check
        trusts the record for what goes as for what stays; a command that finds it gone already is taken for
        done); None, by default, when its removal must look first (a setting to give back, a chain, ...)."""
        return None

    def remembered(self, state: HostState) -> str | None:
        """The value to give back when it is removed, as the host shows it before the first change."""
        return None

    def devices(self) -> frozenset[Device]:
        return frozenset()

    def relies_on(self) -> frozenset[Device]:
        """The devices its commands name: its own, and any other it needs there (a port's bridge)."""
        return self.devices()

    def claims(self) -> tuple[Claim, ...]:
        return ()

    def shared(self) -> bool:
        """Whether containers rely on it beyond their own devices (rules, chains, host-wide settings)."""
        return False

    def concerns(self, devices: frozenset[str], addresses: frozenset[IPAddress]) -> bool:
        """Whether a container with host-side ``devices`` (its veth ends, its bridges) and ``addresses`` relies
        on this shared object (by default: every container does)."""
        return True

    def takes_along(self) -> Gone:
        return Gone()

    def goes_with(self, gone: Gone) -> bool:
        """Whether removing what ``gone`` lists removes it too (by default: its namespace is among them)."""
        return self.location is not None and self.location in gone.namespaces

    def as_seen_from_host(self, state: HostState, places: set[str]) -> bool:
        """Whether a host-side object is as wanted (a check that reads no namespace in ``places``)."""
        return self.assess(state).status == "present"

    def link_group(self, state: HostState) -> tuple[int, frozenset[str]] | None:
        """The link group it was made in on the host and the device names it holds there, if any."""
        return None

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], rebuild: Callable[[object], NetObject]) -> Self:
        """The object a record describes by its fields (``rebuild`` turns a nested description into an object)."""
        return cls(**fields)


# -- what several kinds share -------------------------------------------------------------------------


class Placed(Kind):
    """A kind that lives in namespace ``netns`` (None: the host)."""

    __slots__ = ()
    netns: str | None

    @property
    def location(self) -> str | None:
        return self.netns


class ReadsLinks(Placed):
    """A kind judged by the devices of its namespace (``ip -d -json link show``)."""

    __slots__ = ()

    def check_command(self) -> Command:
        return links_command(self.netns)

    def needs(self) -> Need:
        return Need(self.netns, facts=("links",))


class OnDevice(Placed):
    """A kind that sits on device ``device`` of its namespace, and goes away with it."""

    __slots__ = ()
    device: str

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.device)})

    def goes_with(self, gone: Gone) -> bool:
        return (self.netns, self.device) in gone.links or super().goes_with(gone)


class NamedDevice(ReadsLinks):
    """A device of kind ``device_kind`` named ``name``: claimed host-wide, and taking what sits on it along."""

    __slots__ = ()
    device_kind: ClassVar[str]
    made: ClassVar[bool] = True
    name: str

    def assess(self, state: HostState) -> Assessment:
        return device_of_kind(self.name, self.netns, self.device_kind, state)

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.name)})

    def claims(self) -> tuple[Claim, ...]:
        return (Claim("device", key_place(self.netns), self.name),)

    def takes_along(self) -> Gone:
        return Gone(links=frozenset({(self.netns, self.name)}))


def wrong_mtu(mtu: int | None, ends: Iterable[Device], state: HostState) -> list[tuple[Device, int]]:
    """The ends (of those the host state shows) whose MTU is not ``mtu``, with the MTU they have."""
    if mtu is None:
        return []
    found = [(end, state.view(end[0]).link(end[1])) for end in ends]
    return [(end, link.mtu) for end, link in found if link is not None and link.mtu is not None and link.mtu != mtu]


def set_mtu(mtu: int, ends: Iterable[Device]) -> tuple[Command, ...]:
    return tuple(ip_command("link", "set", "dev", name, "mtu", str(mtu), netns=netns) for netns, name in ends)


def wrong_mac(mac: str | None, end: Device, state: HostState) -> str | None:
    """The MAC device ``end`` has, where the host state shows it with another than ``mac`` (None: any will do)."""
    link = state.view(end[0]).link(end[1]) if mac is not None else None
    return link.mac if link is not None and link.mac is not None and link.mac != mac else None


def set_mac(mac: str, end: Device) -> Command:
    return ip_command("link", "set", "dev", end[1], "address", mac, netns=end[0])


def read_command(tool: str, *args: str, netns: str | None = None) -> Command:
    return Command(tool, args, netns=netns, mutates=False)


def ip_command(*args: str, netns: str | None = None) -> Command:
    return Command("ip", args, netns=netns)


def links_command(netns: str | None) -> Command:
    return read_command("ip", "-d", "-json", "link", "show", netns=netns)


def check_group(field: str, group: object) -> None:
    if isinstance(group, bool) or not isinstance(group, int) or not 0 < group < 2**31:
        raise ValidationError(field, group, "must be a link group number from 1 to 2**31-1")


def where(netns: str | None) -> str:
    return f"in namespace {netns}" if netns else "on the host"


def key_place(netns: str | None) -> str:
    return netns or ""


def kind_of(link: Link) -> str:
    return link.kind or "device of another kind"


def link_in(netns: str | None, name: str, state: HostState) -> tuple[Link | None, Assessment | None]:
    """A device as observed, or why it is missing."""
    if netns is not None and not state.has_netns(netns):
        return None, missing(f"namespace {netns} does not exist")
    link = state.view(netns).link(name)
    if link is None:
        return None, missing(f"{name} does not exist {where(netns)}")
    return link, None


def device_of_kind(name: str, netns: str | None, kind: str, state: HostState) -> Assessment:
    """A device that must be of ``kind``: present, missing, or a conflict when the name is another kind's."""
    link, verdict = link_in(netns, name, state)
    if link is None:
        return verdict or missing(f"{name} does not exist {where(netns)}")
    if link.kind != kind:
        return conflict(f"{name} exists {where(netns)} but is a {kind_of(link)}, not a {kind}")
    return present(f"{kind} {name} exists")
