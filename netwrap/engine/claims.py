"""Host-wide claims: what an object takes for itself on a host, so that no two records take the same.

A namespace, a device name, a chain of netwrap's own, a subnet on the host (the
network of an address on a host device, such as a bridge's gateway) and a
published host port belong to one record at a time. Before a build plans
anything, every other record of the same machine is read, and a wanted object
whose claim clashes with what another record created is a conflict that names
that record; nothing is changed. Subnets clash when they overlap; ports when
the protocol and port are the same and the host addresses overlap (no address
means every address). Settings such as ``ip_forward`` are not claims: several
records may need them, and the last to leave gives them back (see
:mod:`netwrap.engine.build`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from netwrap.engine.registry import records_beside
from netwrap.engine.state import StateFile
from netwrap.errors import NetwrapError
from netwrap.host.runner import Runner, run_dir_of
from netwrap.objects import (
    Address,
    Bridge,
    Chain,
    Namespace,
    NetObject,
    OwnedChain,
    Rule,
    VethPair,
    Vxlan,
)

Kind = Literal["namespace", "device", "chain", "subnet", "port"]
_ALL = ipaddress.IPv4Network("0.0.0.0/0")


@attrs.frozen
class Claim:
    """One thing an object takes: ``kind``, where (a namespace, a table, a protocol) and what."""

    kind: Kind
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
        return f"host port {port}/{self.where}" + ("" if host == str(_ALL) else f" on {host}")

    def clashes(self, other: Claim) -> bool:
        if (self.kind, self.where) != (other.kind, other.where):
            return False
        if self.kind == "subnet":
            return ipaddress.IPv4Network(self.what).overlaps(ipaddress.IPv4Network(other.what))
        if self.kind == "port":
            mine, _, port = self.what.rpartition(":")
            theirs, _, other_port = other.what.rpartition(":")
            return port == other_port and ipaddress.IPv4Network(mine).overlaps(ipaddress.IPv4Network(theirs))
        return self.what == other.what


def _port(rule: Rule) -> Claim | None:
    if rule.jump != "DNAT" or rule.protocol is None or rule.dport is None or rule.destination_negated:
        return None
    return Claim("port", rule.protocol, f"{rule.destination or _ALL}:{rule.dport}")


def claims_of(obj: NetObject) -> tuple[Claim, ...]:
    """What ``obj`` takes on the host for itself."""
    match obj:
        case Namespace():
            return (Claim("namespace", "", obj.name),)
        case VethPair():
            return (
                Claim("device", obj.netns or "", obj.name),
                Claim("device", obj.peer_netns or obj.netns or "", obj.peer),
            )
        case Bridge() | Vxlan():
            return (Claim("device", obj.netns or "", obj.name),)
        case Address() if obj.netns is None and obj.address.network.prefixlen < 32:
            return (Claim("subnet", "", str(obj.address.network)),)
        case OwnedChain():
            ports = (_port(rule) for rule in obj.rules)
            return (Claim("chain", obj.table, obj.name), *(p for p in ports if p is not None))
        case Chain():
            return (Claim("chain", obj.table, obj.name),)
        case Rule():
            port = _port(obj)
            return (port,) if port is not None else ()
    return ()


def others(store: object, runner: Runner | None = None) -> list[StateFile]:
    """The other records of the machine ``store`` describes: in its state directory and, where ``runner`` says
    where the host's ``/run`` is, in every other state directory listed there (see :mod:`netwrap.engine.registry`).
    None for a store in memory."""
    if not isinstance(store, StateFile):
        return []
    return records_beside(store, run_dir_of(runner) if runner is not None else None)


def conflicts(objects: Iterable[NetObject], siblings: Sequence[StateFile]) -> list[str]:
    """Each wanted claim that another record's created objects already hold, naming that record."""
    wanted = [(obj, claim) for obj in objects for claim in claims_of(obj)]
    if not wanted:
        return []
    found: list[str] = []
    for sibling in siblings:
        try:
            record = sibling.load()
            held = [claim for obj in record.created for claim in claims_of(obj)] if record is not None else []
        except NetwrapError as exc:
            found.append(f"the record {sibling.name} cannot be read, so what it holds is unknown: {exc}")
            continue
        if record is None:
            continue
        state = "" if record.complete or record.writer.alive() else " (a run that died: `netwrap clean` removes it)"
        for obj, claim in wanted:
            theirs = next((c for c in held if claim.clashes(c)), None)
            if theirs is not None:
                mine = claim.describe()
                also = "" if theirs == claim else f" ({theirs.describe()})"
                found.append(f"{obj.key}: {mine} is already taken by the record {sibling.name}{also}{state}")
    return found
