"""Turn a :class:`~netwrap.topology.model.Topology` into the ordered objects that build it.

Pure: no process is started. Addresses come from :func:`allocate` (IPAM):
fixed ones as written, the others deterministic, reusing what the last apply
gave each container, never the gateway or a duplicate.

The order follows the document's phases, so that ``examples/tutorial.toml``
renders exactly the tutorial's 22 commands: namespaces; veth pairs; moves into
namespaces; bridges; bridge ports; addresses and links up inside containers;
host ends up; bridge addresses and bridges up; default routes; ``ip_forward``;
NAT rules. In ``docker`` style, Docker's other rules follow: published ports in
a nat chain of the topology's own, entered for every local address from
PREROUTING and OUTPUT (so the host itself reaches them, 127.0.0.1 included with
``route_localnet``), hairpin masquerade for other containers, and a filter
chain of the topology's own, jumped to first from FORWARD, so that all this
keeps working when FORWARD's policy is DROP, and so that networks stay
isolated from one another.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Literal

import attrs

from netwrap.errors import TopologyError
from netwrap.kinds import (
    ISOLATION_SUFFIX,
    OWN_PREFIX,
    Address,
    AttachedNamespace,
    Bridge,
    BridgePort,
    LinkNetns,
    LinkUp,
    Namespace,
    NatRule,
    NetObject,
    OwnedChain,
    Route,
    Rule,
    Sysctl,
    VethPair,
)
from netwrap.topology.model import Attachment, Container, Network, Problem, Topology

Allocations = dict[tuple[str, str], ipaddress.IPv4Address]


@attrs.frozen
class Link:
    """One attachment as built: its devices, where they live, and its address."""

    container: Container
    network: Network
    index: int
    interface: str
    host_interface: str
    address: ipaddress.IPv4Address
    moved: bool  # made on the host and moved in (the document's way), or made inside directly

    @property
    def netns(self) -> str:
        return self.container.namespace


def allocation_key(network: str, container: str) -> str:
    return f"{network}/{container}"


def allocate(topo: Topology, previous: Mapping[str, str] | None = None) -> Allocations:
    """An address for every attachment: fixed ones first, then last apply's, then the lowest free."""
    previous = previous or {}
    result: Allocations = {}
    used: dict[str, set[ipaddress.IPv4Address]] = {n.name: {n.gateway} for n in topo.networks}
    pending: list[tuple[Container, int, Attachment]] = []
    for container in topo.containers:
        for index, att in enumerate(container.networks):
            if att.address is not None:
                result[(att.network, container.name)] = att.address
                used[att.network].add(att.address)
            else:
                pending.append((container, index, att))
    later = []
    for container, index, att in pending:
        net = topo.network(att.network)
        try:
            earlier = ipaddress.IPv4Address(previous.get(allocation_key(att.network, container.name), ""))
        except ValueError:
            earlier = None
        usable = earlier is not None and earlier in net.subnet and earlier not in (net.subnet[0], net.subnet[-1])
        if earlier is not None and usable and earlier not in used[net.name]:
            result[(net.name, container.name)] = earlier
            used[net.name].add(earlier)
        else:
            later.append((container, index, att))
    problems = []
    candidates = {net.name: net.subnet.hosts() for net in topo.networks}
    for container, index, att in later:
        net = topo.network(att.network)
        free = next((a for a in candidates[net.name] if a not in used[net.name]), None)
        if free is None:
            problems.append(
                Problem(
                    f"containers.{container.name}",
                    f"networks[{index}]",
                    f"network {net.name!r} ({net.subnet}) has no free address left",
                )
            )
            continue
        result[(net.name, container.name)] = free
        used[net.name].add(free)
    if problems:
        raise TopologyError(f"topology {topo.name!r}", problems)
    return result


def links(topo: Topology, allocations: Allocations) -> list[Link]:
    """Every attachment with its device names and address."""
    found = []
    for container in topo.containers:
        for index, att in enumerate(container.networks):
            # a named interface is made on the host and moved in as the document does; in docker style it is
            # made inside under its name, like eth0 (one command, no wait for the kernel, in the link group)
            moved = att.interface is not None and topo.style == "document"
            found.append(
                Link(
                    container=container,
                    network=topo.network(att.network),
                    index=index,
                    interface=att.interface or f"eth{index}",
                    host_interface=topo.host_interfaces[(container.name, index)],
                    address=allocations[(att.network, container.name)],
                    moved=moved,
                )
            )
    return found


def mac_for(address: ipaddress.IPv4Address) -> str:
    """A container's MAC, made of its address as Docker makes it (``02:6e`` and the four bytes): a container
    that gets an address another had just before is found at once, never at the old one's MAC that the
    neighbours still remember."""
    return "02:6e:" + ":".join(f"{byte:02x}" for byte in address.packed)


def link_group(topo: Topology) -> int:
    """The link group of this topology's host-side veths: stable, from its name (see ``ip link del group``)."""
    return 4096 + int(hashlib.sha256(topo.name.encode()).hexdigest()[:7], 16)


def chain_tag(topo: Topology) -> str:
    """The topology's name as it appears in its chains' names: itself up to 15 bytes, else shortened with a hash."""
    if len(topo.name.encode()) <= 15:
        return topo.name
    return f"{topo.name[:11]}{hashlib.sha256(topo.name.encode()).hexdigest()[:4]}"


def chain_name(topo: Topology) -> str:
    """The topology's own filter chain (jumped to first from FORWARD) and nat chain (published ports)."""
    return f"{OWN_PREFIX}{chain_tag(topo)}"


def isolation_chain(topo: Topology) -> str:
    """The topology's own filter chain that keeps traffic from elsewhere out of its bridges (jumped to first)."""
    return f"{chain_name(topo)}{ISOLATION_SUFFIX}"


def postrouting_chain(topo: Topology) -> str:
    """The topology's own nat chain for source NAT (jumped to first from POSTROUTING)."""
    return f"{chain_name(topo)}-POST"


def objects(topo: Topology, allocations: Allocations) -> tuple[NetObject, ...]:
    """The objects that build ``topo``, in build order."""
    attached = links(topo, allocations)
    own = [c for c in topo.containers if c.owns_namespace]
    # a running container's namespace is given a name; the others are made
    out: list[NetObject] = [
        Namespace(c.namespace) if c.source is None else AttachedNamespace(c.namespace, c.source) for c in own
    ]
    group = link_group(topo) if topo.style == "docker" else None
    for link in attached:
        mtu = link.network.mtu
        if link.moved:
            out.append(VethPair(link.interface, link.host_interface, mtu=mtu))
        else:
            mac = mac_for(link.address) if topo.style == "docker" else None
            out.append(
                VethPair(link.host_interface, link.interface, peer_netns=link.netns, group=group, mtu=mtu, peer_mac=mac)
            )
    out += [LinkNetns(link.interface, link.netns) for link in attached if link.moved]
    out += [
        Bridge(net.bridge, tool=net.bridge_tool, group=group if net.bridge_tool == "ip" else None)
        for net in topo.networks
    ]
    for link in attached:
        net = link.network
        hairpin = topo.style == "docker"  # as Docker: a container reaches its own published port
        out.append(
            BridgePort(net.bridge, link.host_interface, tool=net.bridge_tool, isolated=not net.icc, hairpin=hairpin)
        )
    for container in own:
        for link in (x for x in attached if x.container is container):
            prefix = link.network.prefix
            out.append(Address(link.interface, f"{link.address}/{prefix}", netns=link.netns))
            out.append(LinkUp(link.interface, netns=link.netns))
        if container.loopback and container.source is None:  # a running container's lo is its own
            out.append(LinkUp("lo", netns=container.namespace))
    out += [LinkUp(link.host_interface) for link in attached]
    for net in topo.networks:
        out.append(Address(net.bridge, f"{net.gateway}/{net.prefix}"))
        out.append(LinkUp(net.bridge))
    for container in own:
        # the default route goes through the first network that leads outside (an internal one does not)
        first = next((x for x in attached if x.container is container and not x.network.internal), None)
        if first is not None and container.default_route:
            out.append(Route("default", str(first.network.gateway), first.interface, netns=first.netns))
    if topo.networks:
        out.append(Sysctl("net.ipv4.ip_forward", "1"))
    if topo.style == "document":
        out += [NatRule.masquerade(str(net.subnet), not_out=net.bridge) for net in topo.networks if net.nat]
        out += _document_ports(attached)
    elif topo.networks:
        out += _docker_rules(topo, attached)
    return tuple(out)


@attrs.frozen
class Published:
    """A published port, resolved to the container's address on its first network."""

    link: Link
    host_ip: ipaddress.IPv4Address | None
    host_port: int
    port: int
    protocol: Literal["tcp", "udp"]

    @property
    def target(self) -> str:
        return f"{self.link.address}:{self.port}"


def published(attached: list[Link]) -> list[Published]:
    """Ports are published to a container's first network, as Docker does."""
    return [
        Published(link, p.host_ip, p.host_port, p.container_port, p.protocol)
        for link in attached
        if link.index == 0
        for p in link.container.ports
    ]


def _document_ports(attached: list[Link]) -> list[NetObject]:
    """Step 22's form: DNAT for traffic from other machines only."""
    rules: list[NetObject] = []
    for pub in published(attached):
        rule = NatRule(
            "PREROUTING",
            "DNAT",
            destination=f"{pub.host_ip}/32" if pub.host_ip else None,
            in_interface=pub.link.network.bridge,
            in_negated=True,
            protocol=pub.protocol,
            dport=pub.host_port,
            to=pub.target,
        )
        rules.append(rule)
    return rules


def _docker_rules(topo: Topology, attached: list[Link]) -> list[NetObject]:
    """Docker's rules, each in a chain of the topology's own that is written whole; the built-in chains get
    only the jumps into them, placed first. The chains exist whenever the topology has a network, empty or
    not, so that an edit of the file only ever rewrites a chain's rules."""
    out: list[NetObject] = []
    ports = published(attached)
    publishing = {pub.link.network.name for pub in ports}
    chain, post = chain_name(topo), postrouting_chain(topo)
    masquerades: list[Rule] = [
        NatRule(post, "MASQUERADE", source=str(net.subnet), out_interface=net.bridge, out_negated=True)
        for net in topo.networks
        if net.nat and not net.internal
    ]
    for net in topo.networks:
        if net.name in publishing:
            out.append(Sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet", "1"))
            # 127.0.0.1:PORT from the host: the container must answer the bridge, not 127.0.0.1.
            masquerades.append(NatRule(post, "MASQUERADE", source="127.0.0.0/8", out_interface=net.bridge))
            # hairpin: a container reaching a published port through the host's address.
            masquerades.append(
                NatRule(post, "MASQUERADE", source=str(net.subnet), out_interface=net.bridge, ctstate="DNAT")
            )
    # Published ports: entered for traffic to any local address (from other machines through PREROUTING,
    # from the host itself through OUTPUT), as Docker's DOCKER chain is.
    dnats: list[Rule] = [
        NatRule(
            chain,
            "DNAT",
            destination=f"{pub.host_ip}/32" if pub.host_ip else None,
            protocol=pub.protocol,
            dport=pub.host_port,
            to=pub.target,
        )
        for pub in ports
    ]
    # Replies first: a connection that was let in may answer, even across networks.
    filters: list[Rule] = [
        Rule(chain, "ACCEPT", out_interface=net.bridge, ctstate="RELATED,ESTABLISHED") for net in topo.networks
    ]
    # New connections to published ports (DNAT'd), from anywhere, before isolation.
    filters += [
        Rule(
            chain,
            "ACCEPT",
            destination=f"{pub.link.address}/32",
            out_interface=pub.link.network.bridge,
            protocol=pub.protocol,
            dport=pub.port,
            ctstate="DNAT",
        )
        for pub in ports
    ]
    # Isolation: nothing else goes from one network to another.
    filters += [
        Rule(chain, "DROP", in_interface=net.bridge, out_interface=other.bridge)
        for net in topo.networks
        for other in topo.networks
        if other is not net
    ]
    for net in topo.networks:
        if not net.internal:
            filters.append(Rule(chain, "ACCEPT", in_interface=net.bridge, out_interface=net.bridge, out_negated=True))
        filters.append(Rule(chain, "ACCEPT" if net.icc else "DROP", in_interface=net.bridge, out_interface=net.bridge))
    # Isolation from everything else, before any topology's accepts (as Docker's isolation chains): into a
    # bridge go only its own traffic, replies and published ports; not another topology's, not the outside's.
    iso = isolation_chain(topo)
    isolation: list[Rule] = []
    for net in topo.networks:
        if net.internal:  # as Docker's internal networks: nothing in from outside the bridge, nothing out
            isolation += [
                Rule(iso, "RETURN", in_interface=net.bridge, out_interface=net.bridge),
                Rule(iso, "DROP", in_interface=net.bridge),
                Rule(iso, "DROP", out_interface=net.bridge),
            ]
            continue
        isolation += [
            Rule(iso, "RETURN", in_interface=net.bridge, out_interface=net.bridge),
            Rule(iso, "RETURN", out_interface=net.bridge, ctstate="RELATED,ESTABLISHED,DNAT"),
            Rule(iso, "DROP", out_interface=net.bridge),
        ]
    out += [
        OwnedChain(post, "nat", masquerades),
        OwnedChain(chain, "nat", dnats),
        OwnedChain(iso, "filter", isolation),
        OwnedChain(chain, "filter", filters),
        NatRule("POSTROUTING", post, insert=True),
        NatRule("PREROUTING", chain, dst_type="LOCAL", insert=True),
        NatRule("OUTPUT", chain, dst_type="LOCAL", insert=True),
        Rule("FORWARD", chain, insert=True),
        Rule("FORWARD", iso, insert=True),  # after the main jump, so that it lands above it
    ]
    return out
