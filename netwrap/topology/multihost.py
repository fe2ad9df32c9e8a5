"""Container networks across machines: each machine a runner, one network over all of them.

A :class:`Cluster` names its machines (each with the runner that reaches it:
this machine, a namespace standing in for one, or :class:`~netwrap.host.ssh.SshRunner`),
the containers on each, and one network joining them, built one of two ways:

- ``host-gw`` (routed): each machine's bridge gets its own /24 of the
  network's supernet, and every other machine routes it through that
  machine's underlay address. No encapsulation.
- ``vxlan`` (overlay): every bridge joins one VXLAN segment (one VNI, unicast
  to the peers' underlay addresses, listed as flood entries); the machines
  share one subnet; container devices get an MTU that leaves room for the
  50 bytes of encapsulation.

Addresses never overlap across machines. Machines are applied in parallel,
each with its own record; a failure on one is reported with what every
machine got, never hidden.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

import attrs

from netwrap.engine.batch import Mode
from netwrap.engine.build import Outcome, build, teardown
from netwrap.engine.check import Check
from netwrap.engine.state import StateFile
from netwrap.errors import ClusterError, NetwrapError, ValidationError
from netwrap.host.runner import Runner
from netwrap.kinds import (
    BridgePort,
    FdbEntry,
    LinkUp,
    NatRule,
    NetObject,
    OwnedChain,
    Route,
    Rule,
    VethPair,
    Vxlan,
)
from netwrap.topology import compose
from netwrap.topology.model import Attachment, Container, Network, Port, Topology, short_name

Method = Literal["host-gw", "vxlan"]
VXLAN_OVERHEAD = 50
T = TypeVar("T")


@attrs.frozen
class Machine:
    """A machine of the cluster: its name, its address and device on the underlay, and how to reach it."""

    name: str
    underlay: ipaddress.IPv4Address = attrs.field(converter=ipaddress.IPv4Address)
    device: str
    runner: Runner = attrs.field(eq=False, repr=False)


@attrs.frozen
class Cluster:
    """Machines, the containers on each, and the network that joins them."""

    name: str
    network: str
    supernet: ipaddress.IPv4Network = attrs.field(converter=ipaddress.IPv4Network)
    method: Method
    machines: tuple[Machine, ...]
    containers: Mapping[str, tuple[str, ...]]
    ports: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    vni: int = 4242
    underlay_mtu: int = 1500

    def __attrs_post_init__(self) -> None:
        names = [m.name for m in self.machines]
        if len(set(names)) != len(names):
            raise ValidationError("Cluster.machines", names, "machine names must differ")
        unknown = set(self.containers) - set(names)
        if unknown:
            raise ValidationError("Cluster.containers", sorted(unknown), "are not machines of the cluster")
        if self.method not in ("host-gw", "vxlan"):
            raise ValidationError("Cluster.method", self.method, "must be host-gw or vxlan")
        if self.method == "host-gw" and len(list(self.supernet.subnets(new_prefix=24))) < len(names):
            raise ValidationError("Cluster.supernet", str(self.supernet), "has fewer /24 subnets than machines")
        total = sum(len(c) for c in self.containers.values())
        if self.method == "vxlan" and self.supernet.num_addresses < total + len(names) + 2:
            raise ValidationError(
                "Cluster.supernet", str(self.supernet), "is too small for every machine and container"
            )


def _machine_topology(cluster: Cluster, index: int) -> tuple[Topology, tuple[NetObject, ...]]:
    machine = cluster.machines[index]
    bridge = short_name("nw-", cluster.network)
    if cluster.method == "host-gw":
        subnet = list(cluster.supernet.subnets(new_prefix=24))[index]
        gateway = subnet[1]
        addresses = [subnet[2 + k] for k in range(len(cluster.containers.get(machine.name, ())))]
    else:
        subnet = cluster.supernet
        gateway = subnet[1 + index]
        before = sum(len(cluster.containers.get(m.name, ())) for m in cluster.machines[:index])
        first = 1 + len(cluster.machines) + before
        addresses = [subnet[first + k] for k in range(len(cluster.containers.get(machine.name, ())))]
    network = Network(cluster.network, subnet, bridge, gateway, nat=True, icc=True, bridge_tool="ip")
    containers = tuple(
        Container(
            name,
            networks=(Attachment(cluster.network, address),),
            ports=tuple(Port.parse(f"ports[{name}]", spec) for spec in cluster.ports.get(name, ())),
        )
        for name, address in zip(cluster.containers.get(machine.name, ()), addresses, strict=True)
    )
    topo = Topology(f"{cluster.name}", (network,), containers).check(f"cluster {cluster.name!r} on {machine.name}")
    return topo, _extras(cluster, index, network)


def _extras(cluster: Cluster, index: int, network: Network) -> tuple[NetObject, ...]:
    me = cluster.machines[index]
    others = [m for m in cluster.machines if m is not me]
    extras: list[NetObject] = []
    if cluster.method == "host-gw":
        subnets = list(cluster.supernet.subnets(new_prefix=24))
        for position, other in enumerate(cluster.machines):
            if other is not me:
                extras.append(Route(str(subnets[position]), str(other.underlay), me.device))
    else:
        device = short_name("vx-", cluster.network)
        mtu = cluster.underlay_mtu - VXLAN_OVERHEAD
        extras.append(Vxlan(device, cluster.vni, str(me.underlay), device=me.device, mtu=mtu))
        extras.append(BridgePort(network.bridge, device, tool="ip"))
        extras.append(LinkUp(device))
        extras += [FdbEntry(device, str(other.underlay)) for other in others]
    return tuple(extras)


def machine_topology(cluster: Cluster, index: int) -> Topology:
    """The part of the cluster that machine ``index`` holds, as a topology of its own."""
    return _machine_topology(cluster, index)[0]


def objects(cluster: Cluster, index: int) -> tuple[NetObject, ...]:
    """What machine ``index`` needs, in build order."""
    topo, extras = _machine_topology(cluster, index)
    built = list(compose.objects(topo, compose.allocate(topo)))
    net = topo.networks[0]
    chain, post = compose.chain_name(topo), compose.postrouting_chain(topo)
    masquerade = NatRule(post, "MASQUERADE", source=str(net.subnet), out_interface=net.bridge, out_negated=True)
    # traffic between the machines' containers is not masqueraded on its way, and is let in
    routed = NatRule(
        post, "MASQUERADE", source=str(net.subnet), destination=str(cluster.supernet),
        destination_negated=True, out_interface=net.bridge, out_negated=True,
    )  # fmt: skip
    let_in = Rule(chain, "ACCEPT", source=str(cluster.supernet), out_interface=net.bridge)
    iso = compose.isolation_chain(topo)
    not_isolated = Rule(iso, "RETURN", source=str(cluster.supernet), out_interface=net.bridge)
    mtu = cluster.underlay_mtu - VXLAN_OVERHEAD if cluster.method == "vxlan" else None
    result: list[NetObject] = []
    for obj in built:
        if isinstance(obj, OwnedChain) and (obj.table, obj.name) == ("nat", post):
            result.append(attrs.evolve(obj, rules=[routed if r == masquerade else r for r in obj.rules]))
        elif isinstance(obj, OwnedChain) and (obj.table, obj.name) == ("filter", chain):
            result.append(attrs.evolve(obj, rules=[*obj.rules, let_in]))
        elif isinstance(obj, OwnedChain) and (obj.table, obj.name) == ("filter", iso):
            result.append(attrs.evolve(obj, rules=[not_isolated, *obj.rules]))
        elif isinstance(obj, VethPair) and mtu is not None:
            result.append(attrs.evolve(obj, mtu=mtu))
        else:
            result.append(obj)
    return (*result, *extras)


def address_of(cluster: Cluster, container: str) -> ipaddress.IPv4Address:
    """A container's address on the cluster network."""
    for index, machine in enumerate(cluster.machines):
        if container in cluster.containers.get(machine.name, ()):
            topo, _ = _machine_topology(cluster, index)
            return compose.allocate(topo)[(cluster.network, container)]
    raise NetwrapError(f"{container!r} is not a container of cluster {cluster.name!r}")


def _store(cluster: Cluster, machine: Machine, state_dir: Path | str) -> StateFile:
    return StateFile.in_dir(state_dir, f"cluster-{cluster.name}@{machine.name}")


def _on_every_machine(cluster: Cluster, work: Callable[[int, Machine], Outcome]) -> dict[str, Outcome]:
    results: dict[str, Outcome | Exception] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(cluster.machines))) as pool:
        futures = {m.name: pool.submit(work, i, m) for i, m in enumerate(cluster.machines)}
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:  # every machine's outcome is reported together
            results[name] = exc
    if any(isinstance(r, Exception) for r in results.values()):
        raise ClusterError(results)
    return {name: r for name, r in results.items() if isinstance(r, Outcome)}


def apply(
    cluster: Cluster, state_dir: Path | str, mode: Mode = "batch", parallel: bool = True, check: Check = "all"
) -> dict[str, Outcome]:
    """Build the cluster on every machine (at once, unless ``parallel`` is false).

    ``check="host"``: see :mod:`netwrap.engine.check`.
    """

    def work(index: int, machine: Machine) -> Outcome:
        store = _store(cluster, machine, state_dir)
        return build(objects(cluster, index), machine.runner, store, prune=True, mode=mode, check=check)

    if parallel:
        return _on_every_machine(cluster, work)
    return {m.name: work(i, m) for i, m in enumerate(cluster.machines)}


def destroy(cluster: Cluster, state_dir: Path | str, mode: Mode = "batch") -> dict[str, Outcome]:
    """Remove what ``apply`` made, on every machine at once."""
    return _on_every_machine(
        cluster, lambda index, machine: teardown(machine.runner, _store(cluster, machine, state_dir), mode=mode)
    )
