"""Compare what is wanted with what a host has: pure, no process is started.

:func:`assess` judges one object against a :class:`~netwrap.host.observe.HostState`:
present, missing, or in conflict (the name is taken by something of another
shape). :func:`plan` does it for an ordered list and yields, per object, the
commands still needed or the reason nothing is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from typing import Literal

import attrs

from netwrap.command import Command
from netwrap.host.observe import HostState
from netwrap.host.parse import IptablesRule, Link
from netwrap.objects import (
    ISOLATION_SUFFIX,
    OWN_PREFIX,
    Address,
    Bridge,
    BridgePort,
    Chain,
    FdbEntry,
    LinkNetns,
    LinkUp,
    Namespace,
    NetObject,
    OwnedChain,
    Route,
    Rule,
    Sysctl,
    VethPair,
    Vxlan,
)

Status = Literal["present", "missing", "conflict"]


@attrs.frozen
class Assessment:
    """One object's standing on the host, with the reason in words."""

    status: Status
    reason: str


def _where(netns: str | None) -> str:
    return f"in namespace {netns}" if netns else "on the host"


def _present(reason: str) -> Assessment:
    return Assessment("present", reason)


def _missing(reason: str) -> Assessment:
    return Assessment("missing", reason)


def _conflict(reason: str) -> Assessment:
    return Assessment("conflict", reason)


def _kind(link: Link) -> str:
    return link.kind or "device of another kind"


def _veth(obj: VethPair, state: HostState) -> Assessment:
    """A pair is ours only when an end is a veth where it was asked for, and its peer (where the listing tells)
    is the other end, in the namespace asked for: a host's own ``eth0`` is not the ``eth0`` wanted in a container."""
    where = _where(obj.netns)
    if obj.netns is not None and not state.has_netns(obj.netns):
        return _missing(f"namespace {obj.netns} does not exist")
    ends: list[tuple[str | None, str, str | None, str]]
    if obj.peer_netns is not None:
        ends = [(obj.netns, obj.name, obj.peer_netns, obj.peer)]
        if state.has_netns(obj.peer_netns):
            ends.append((obj.peer_netns, obj.peer, obj.netns, obj.name))
    else:
        ends = [(obj.netns, obj.name, obj.netns, obj.peer), (obj.netns, obj.peer, obj.netns, obj.name)]
    for netns, name, other_netns, other in ends:
        link = state.view(netns).link(name)
        if link is None:
            continue
        if link.kind != "veth":
            return _conflict(f"{name} exists {_where(netns)} but is a {_kind(link)}, not a veth")
        peer = state.peer_name(link, netns)
        if peer is not None and peer[1] != other:
            return _conflict(f"{name} exists {_where(netns)} but its peer is {peer[1]}, not {other}")
        if obj.peer_netns is not None and netns is None and other_netns is not None:
            # listed on the host, whose numbering of namespaces the listing gives: the peer must be in other_netns
            told = netns if link.peer is not None else state.peer_netns(link)
            if told != other_netns:
                return _conflict(f"{name} exists {where} but its peer is not {_where(other_netns)}")
        return _present(f"veth pair {obj.name}/{obj.peer} exists ({name} {_where(netns)})")
    if obj.peer_netns is not None:
        return _missing(f"neither {obj.name} {where} nor {obj.peer} {_where(obj.peer_netns)} exists")
    # Both ends moved away from where the pair was made: find one whose peer is the other.
    for netns, view in state.views.items():
        for link in view.links or ():
            if link.name in (obj.name, obj.peer) and link.kind == "veth":
                peer = state.peer_name(link, netns)
                if peer is not None and {link.name, peer[1]} == {obj.name, obj.peer}:
                    return _present(f"veth pair {obj.name}/{obj.peer} exists ({link.name} {_where(netns)})")
    return _missing(f"neither {obj.name} nor {obj.peer} exists {where}")


def _link_in(obj_netns: str | None, name: str, state: HostState) -> tuple[Link | None, Assessment | None]:
    if obj_netns is not None and not state.has_netns(obj_netns):
        return None, _missing(f"namespace {obj_netns} does not exist")
    link = state.view(obj_netns).link(name)
    if link is None:
        return None, _missing(f"{name} does not exist {_where(obj_netns)}")
    return link, None


def _device_of_kind(name: str, netns: str | None, kind: str, state: HostState) -> Assessment:
    """A device that must be of ``kind``: present, missing, or a conflict when the name is another kind's."""
    link, verdict = _link_in(netns, name, state)
    if link is None:
        return verdict or _missing(f"{name} does not exist {_where(netns)}")
    if link.kind != kind:
        return _conflict(f"{name} exists {_where(netns)} but is a {_kind(link)}, not a {kind}")
    return _present(f"{kind} {name} exists")


def _dnat_overlaps(ours: Rule, rule: IptablesRule) -> bool:
    if rule.chain != ours.chain or rule.option("-j") != "DNAT" or ours.protocol is None:
        return False
    if rule.option("-p") != ours.protocol or rule.option("--dport") != str(ours.dport):
        return False
    if rule.negated("-d") or rule.negated("--dport"):
        return False
    theirs = rule.option("-d")
    if theirs is None or ours.destination is None:
        return True
    try:
        return ipaddress.ip_network(theirs, strict=False).overlaps(ours.destination)
    except ValueError:
        return True


def _leads(rule: IptablesRule) -> bool:
    """Whether ``rule`` is a jump into one of netwrap's chains (they stand first in a built-in chain)."""
    return (rule.option("-j") or "").startswith(OWN_PREFIX)


def _isolates(rule: IptablesRule) -> bool:
    """Whether ``rule`` is a jump into a topology's isolation chain (they stand before every other jump)."""
    return _leads(rule) and (rule.option("-j") or "").endswith(ISOLATION_SUFFIX)


def _positioned(obj: Rule, listed: tuple[IptablesRule, ...]) -> Assessment:
    """A jump placed first (``insert``): present only while nothing but netwrap's jumps stands before it
    (nothing but isolation jumps, for an isolation jump: every topology's isolation comes before any accepts)."""
    allowed = _isolates if obj.jump.endswith(ISOLATION_SUFFIX) else _leads
    before: list[IptablesRule] = []
    for rule in listed:
        if rule.chain != obj.chain:
            continue
        if rule.words == obj.body():
            intruder = next((r for r in before if not allowed(r)), None)
            if intruder is None:
                return _present(f"the jump is among the first rules of {obj.table} {obj.chain}")
            below = " ".join(intruder.words)
            return _missing(f"the jump is in {obj.table} {obj.chain} but below {below}: it is moved back to the top")
        before.append(rule)
    return _missing(f"the rule is not in {obj.table} {obj.chain}")


def _rule(obj: Rule, state: HostState) -> Assessment:
    listed = state.rules.get(obj.table)
    if listed is None:
        return _missing(f"the {obj.table} table was not read")
    if obj.insert and state.has_rule(obj.table, obj.chain, obj.body()):
        return _positioned(obj, listed)
    if state.has_rule(obj.table, obj.chain, obj.body()):
        return _present(f"the rule is in {obj.table} {obj.chain}")
    if obj.jump == "DNAT":
        for rule in listed:
            if _dnat_overlaps(obj, rule) and rule.option("--to-destination") != obj.to:
                return _conflict(
                    f"{obj.protocol} port {obj.dport} is already published to {rule.option('--to-destination')} "
                    f"(nat {rule.chain}: {' '.join(rule.words)}), not to {obj.to}"
                )
    return _missing(f"the rule is not in {obj.table} {obj.chain}")


def assess(obj: NetObject, state: HostState) -> Assessment:
    """Whether ``obj`` is on the host as observed, and why."""
    match obj:
        case Namespace():
            if state.has_netns(obj.name) and state.namespaces is not None:
                return _present(f"namespace {obj.name} exists")
            return _missing(f"namespace {obj.name} does not exist")
        case VethPair():
            return _veth(obj, state)
        case LinkNetns():
            link, verdict = _link_in(obj.netns, obj.device, state)
            return verdict or _present(f"{obj.device} is in namespace {obj.netns}")
        case Bridge():
            return _device_of_kind(obj.name, obj.netns, "bridge", state)
        case BridgePort():
            link, verdict = _link_in(obj.netns, obj.port, state)
            if link is None:
                return verdict or _missing("")
            if link.master == obj.bridge and link.isolated == obj.isolated:
                return _present(f"{obj.port} is a{'n isolated' if obj.isolated else ''} port of {obj.bridge}")
            if link.master == obj.bridge:
                return _conflict(f"{obj.port} is a port of {obj.bridge} but {'not ' if obj.isolated else ''}isolated")
            if link.master is not None:
                return _conflict(f"{obj.port} is already a port of {link.master}, not of {obj.bridge}")
            return _missing(f"{obj.port} is not a port of {obj.bridge}")
        case LinkUp():
            link, verdict = _link_in(obj.netns, obj.device, state)
            if link is None:
                return verdict or _missing("")
            return _present(f"{obj.device} is up") if link.up else _missing(f"{obj.device} is down")
        case Address():
            return _address(obj, state)
        case Route():
            return _route(obj, state)
        case Sysctl():
            current = state.sysctls.get((obj.netns, obj.name))
            if current == obj.value:
                return _present(f"{obj.name} is {obj.value}")
            return _missing(f"{obj.name} is {current if current is not None else 'unknown'}, not {obj.value}")
        case Rule():
            return _rule(obj, state)
        case Vxlan():
            return _device_of_kind(obj.name, obj.netns, "vxlan", state)
        case FdbEntry():
            entries = state.fdb.get(obj.netns, ())
            if (obj.device, obj.mac, str(obj.dst)) in entries:
                return _present(f"{obj.device} sends {obj.mac} to {obj.dst}")
            return _missing(f"{obj.device} has no entry for {obj.mac} to {obj.dst}")
        case OwnedChain():
            return _owned_chain(obj, state)
        case Chain():
            if obj.name in state.chains.get(obj.table, ()):
                return _present(f"chain {obj.name} exists in {obj.table}")
            return _missing(f"chain {obj.name} does not exist in {obj.table}")
    raise TypeError(f"netwrap does not know how to assess {type(obj).__name__}")


def _owned_chain(obj: OwnedChain, state: HostState) -> Assessment:
    """Present only when the chain lists exactly the wanted rules, in order; anything else rewrites it whole."""
    if obj.table not in state.rules:
        return _missing(f"the {obj.table} table was not read")
    if obj.name not in state.chains.get(obj.table, ()):
        return _missing(f"chain {obj.name} does not exist in {obj.table}")
    listed = tuple(rule.words for rule in state.rules[obj.table] if rule.chain == obj.name)
    wanted = obj.bodies()
    if listed == wanted:
        return _present(f"chain {obj.name} in {obj.table} holds its {len(wanted)} rule(s) in order")
    extra = [" ".join(w) for w in listed if w not in wanted]
    lacking = [" ".join(w) for w in wanted if w not in listed]
    if extra or lacking:
        detail = "; ".join(
            part
            for part in (
                f"{len(lacking)} missing (first: {lacking[0]})" if lacking else "",
                f"{len(extra)} not wanted (first: {extra[0]})" if extra else "",
            )
            if part
        )
    else:
        detail = "its rules are in another order"
    return _missing(f"chain {obj.name} in {obj.table} differs: {detail}; it is rewritten whole")


def exists(obj: NetObject, state: HostState) -> bool:
    """Whether something to remove is there: as wanted, or (a chain, a jump) there in another form or place."""
    match obj:
        case OwnedChain():
            return obj.name in state.chains.get(obj.table, ())
        case Rule():
            return state.has_rule(obj.table, obj.chain, obj.body())
    return assess(obj, state).status == "present"


def _address(obj: Address, state: HostState) -> Assessment:
    if obj.netns is not None and not state.has_netns(obj.netns):
        return _missing(f"namespace {obj.netns} does not exist")
    found = state.view(obj.netns).addresses or ()
    if (obj.device, obj.address) in found:
        return _present(f"{obj.address} is on {obj.device}")
    for device, address in found:
        if address.ip == obj.address.ip:
            return _conflict(f"{obj.address.ip} is already on {device} {_where(obj.netns)}, not on {obj.device}")
    return _missing(f"{obj.address} is not on {obj.device}")


def _route(obj: Route, state: HostState) -> Assessment:
    if obj.netns is not None and not state.has_netns(obj.netns):
        return _missing(f"namespace {obj.netns} does not exist")
    for entry in state.view(obj.netns).routes or ():
        if str(entry.destination) != str(obj.destination):
            continue
        if (obj.gateway is None or entry.gateway == obj.gateway) and (obj.device is None or entry.device == obj.device):
            return _present(f"the route to {obj.destination} exists")
        via = f" via {entry.gateway}" if entry.gateway else ""
        return _conflict(f"a route to {obj.destination}{via} dev {entry.device} already exists {_where(obj.netns)}")
    return _missing(f"there is no route to {obj.destination} {_where(obj.netns)}")


def _create(obj: NetObject, state: HostState) -> tuple[Command, ...]:
    """The commands that make a missing ``obj``: a jump goes first, below the isolation jumps for any other
    than an isolation jump; a misplaced one is taken out before it is put back."""
    if not (isinstance(obj, Rule) and obj.insert):
        return obj.create_commands()
    listed = [r for r in state.rules.get(obj.table, ()) if r.chain == obj.chain and r.words != obj.body()]
    position = 1
    if not obj.jump.endswith(ISOLATION_SUFFIX):
        while position <= len(listed) and _isolates(listed[position - 1]):
            position += 1
    place = obj.insert_commands(position)
    if state.has_rule(obj.table, obj.chain, obj.body()):
        return (*obj.delete_commands(), *place)
    return place


_TRUSTED = Assessment("present", "not read: made by the last apply, and its namespace's host side is as then")


@attrs.frozen
class PlanItem:
    """One object: what it is, where it stands, and the commands still needed (none when present)."""

    obj: NetObject
    assessment: Assessment
    commands: tuple[Command, ...] = ()

    @property
    def status(self) -> Status:
        return self.assessment.status


@attrs.frozen
class Plan:
    """Per object, in order: a change to make, "no change" with its reason, or a conflict."""

    items: tuple[PlanItem, ...]

    @property
    def conflicts(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.status == "conflict")

    @property
    def changes(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.status == "missing")

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(c for i in self.changes for c in i.commands)

    @property
    def is_noop(self) -> bool:
        return not self.changes and not self.conflicts

    def describe(self) -> list[str]:
        """One line per object: ``+ create``, ``= no change``, ``! conflict``, with the reason."""
        marks = {"missing": "create", "present": "ok", "conflict": "CONFLICT"}
        return [f"{marks[i.status]:<8} {i.obj.key}: {i.assessment.reason}" for i in self.items]


def plan(wanted: Sequence[NetObject], state: HostState, trusted: Collection[str] = frozenset()) -> Plan:
    """The commands still needed to make ``wanted`` true on a host observed as ``state``.

    An object whose key is in ``trusted`` is taken as present without a look
    (see :mod:`netwrap.engine.check`: the insides of a namespace whose host side is as
    the last apply left it).
    """
    items = []
    for obj in wanted:
        verdict = _TRUSTED if obj.key in trusted else assess(obj, state)
        commands = _create(obj, state) if verdict.status == "missing" else ()
        items.append(PlanItem(obj, verdict, commands))
    return Plan(tuple(items))
