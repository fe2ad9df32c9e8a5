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

import functools
import hashlib
import ipaddress
from collections.abc import Callable, Collection, Mapping
from typing import Literal, ParamSpec, TypeVar, cast

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
from netwrap.topology.model import Container, Network, Problem, Topology

P = ParamSpec("P")
T = TypeVar("T")


@functools.lru_cache(maxsize=16384)  # some 2,000 containers before one call evicts the next's
def _kept(
    cls: Callable[..., object], args: tuple[tuple[type, object], ...], kwargs: tuple[tuple[str, type, object], ...]
) -> object:
    return cls(*(value for _, value in args), **{name: value for name, _, value in kwargs})


def made(cls: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``cls(*args, **kwargs)``, and the very same object when asked again with the same arguments.

    A long-lived process (netwrap-cni's helper) composes a whole network for each call, and most of its
    objects are the last call's: they are frozen values, so one object serves both, validated once, described
    once (see :mod:`netwrap.engine.serial`). Bounded: the least recently asked go first. Each argument is
    asked with its type (``1 == True``, but a validator may take one and refuse the other)."""
    typed = tuple((type(value), value) for value in args)
    return cast(T, _kept(cls, typed, tuple((name, type(value), value) for name, value in kwargs.items())))


Allocations = dict[tuple[str, str], ipaddress.IPv4Address]
Allocations6 = dict[tuple[str, str], ipaddress.IPv6Address]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class Addresses:
    """Every attachment's addresses: IPv4's, and IPv6's on the networks with a subnet6."""

    v4: Allocations
    v6: Allocations6 = attrs.field(factory=dict)

    def recorded(self) -> dict[str, str]:
        """As a record keeps them (``NET/CONTAINER``, and ``NET/CONTAINER/6`` for IPv6), for the next apply."""
        found = {allocation_key(net, name): str(addr) for (net, name), addr in self.v4.items()}
        found |= {allocation_key6(net, name): str(addr) for (net, name), addr in self.v6.items()}
        return found


def assign(topo: Topology, previous: Mapping[str, str] | None = None) -> Addresses:
    """:func:`allocate` and :func:`allocate6` at once."""
    return Addresses(allocate(topo, previous), allocate6(topo, previous))


@attrs.frozen(cache_hash=True)  # the key of the attachments' caches: hashed once a call
class Link:
    """One attachment as built: its devices, where they live, and its address."""

    container: Container
    network: Network
    index: int
    interface: str
    host_interface: str
    address: ipaddress.IPv4Address | None  # None on an IPv6-only network
    moved: bool  # made on the host and moved in (the document's way), or made inside directly
    address6: ipaddress.IPv6Address | None = None  # on a network with a subnet6

    @property
    def netns(self) -> str:
        return self.container.namespace


def allocation_key(network: str, container: str) -> str:
    return f"{network}/{container}"


def allocation_key6(network: str, container: str) -> str:
    return f"{network}/{container}/6"


def allocate(topo: Topology, previous: Mapping[str, str] | None = None) -> Allocations:
    """An IPv4 address for every attachment: fixed ones first, then last apply's, then the lowest free."""
    return cast("Allocations", _assign(topo, previous or {}, 4))


def allocate6(topo: Topology, previous: Mapping[str, str] | None = None) -> Allocations6:
    """An IPv6 address for every attachment to a network with a subnet6, as :func:`allocate` gives IPv4's."""
    return cast("Allocations6", _assign(topo, previous or {}, 6))


def lowest_free(subnet: IPNetwork, used: Collection[IPAddress]) -> IPAddress | None:
    """The lowest host address of ``subnet`` not in ``used`` (the gateway among them), None when none is left."""
    return next((a for a in subnet.hosts() if a not in used), None)


def host_of(subnet: IPNetwork, address: IPAddress) -> bool:
    """Whether ``address`` may be a container's in ``subnet``: inside it, not its network address (nor, in IPv4,
    its broadcast address)."""
    edges = (subnet.network_address, subnet.broadcast_address) if subnet.version == 4 else (subnet.network_address,)
    return address in subnet and address not in edges


def _assign(topo: Topology, previous: Mapping[str, str], family: int) -> dict[tuple[str, str], IPAddress]:
    """One family's addresses: fixed ones first, then last apply's (kept while still free and a host address),
    then the lowest free; a network left without one is an error naming each attachment."""
    subnets = {n.name: s for n in topo.networks if (s := n.subnet if family == 4 else n.subnet6) is not None}
    used: dict[str, set[IPAddress]] = {name: set() for name in subnets}
    for net in topo.networks:
        gateway = net.gateway if family == 4 else net.gateway6
        if net.name in used and gateway is not None:
            used[net.name].add(gateway)
    result: dict[tuple[str, str], IPAddress] = {}
    pending: list[tuple[Container, int]] = []
    for container in topo.containers:
        for index, att in enumerate(container.networks):
            fixed = att.address if family == 4 else att.address6
            if att.network not in subnets:
                continue  # a network without this family
            if fixed is not None:
                result[(att.network, container.name)] = fixed
                used[att.network].add(fixed)
            else:
                pending.append((container, index))
    later = []
    for container, index in pending:
        name = container.networks[index].network
        key = allocation_key(name, container.name) if family == 4 else allocation_key6(name, container.name)
        try:
            earlier: IPAddress | None = ipaddress.ip_address(previous.get(key, ""))
        except ValueError:
            earlier = None
        if earlier is not None and host_of(subnets[name], earlier) and earlier not in used[name]:
            result[(name, container.name)] = earlier
            used[name].add(earlier)
        else:
            later.append((container, index))
    problems = []
    for container, index in later:
        name = container.networks[index].network
        free = lowest_free(subnets[name], used[name])
        if free is None:
            problems.append(
                Problem(
                    f"containers.{container.name}",
                    f"networks[{index}]",
                    f"network {name!r} ({subnets[name]}) has no free address left",
                )
            )
            continue
        result[(name, container.name)] = free
        used[name].add(free)
    if problems:
        raise TopologyError(f"topology {topo.name!r}", problems)
    return result


def links(topo: Topology, allocations: Allocations | Addresses) -> list[Link]:
    """Every attachment with its device names and addresses."""
    both = allocations if isinstance(allocations, Addresses) else Addresses(allocations)
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
                    address=both.v4.get((att.network, container.name)),
                    moved=moved,
                    address6=both.v6.get((att.network, container.name)),
                )
            )
    return found


def mac_for(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """A container's MAC, made of its address as Docker makes it (``02:6e`` and the four bytes; an IPv6-only
    container's, its last four): a container that gets an address another had just before is found at once,
    never at the old one's MAC that the neighbours still remember."""
    return _mac_of(0x6E, address)


def _mac_of(second: int, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """``02``, ``second`` and the four last bytes of ``address``: locally administered, one per address."""
    return ":".join(f"{byte:02x}" for byte in (0x02, second, *address.packed[-4:]))


def _ipv6_bridge(net: Network) -> list[NetObject]:
    """A bridge's IPv6 settings, made before its addresses and before it comes up.

    IPv6 back on, for a host whose new devices start without it (``default.disable_ipv6 = 1``). No duplicate
    address detection: the host sends its neighbour solicitations from the bridge's link-local address, and
    while that address is tentative (one to two seconds after the bridge first has a carrier) nothing it
    forwards or DNATs to a container (a published port, the outside) gets through; netwrap gives each address
    on its own bridge once, as it adds the others with ``nodad``. The bridge comes up before its ports do, so
    that the kernel makes the link-local address at the ports' carrier rather than at a later, delayed event.
    """
    return [
        made(Sysctl, f"net.ipv6.conf.{net.bridge}.disable_ipv6", "0"),
        made(Sysctl, f"net.ipv6.conf.{net.bridge}.accept_dad", "0"),
    ]


def _bridge_up(net: Network) -> list[NetObject]:
    """A bridge's gateway addresses, then the bridge up."""
    out: list[NetObject] = []
    if net.gateway is not None:
        out.append(made(Address, net.bridge, f"{net.gateway}/{net.prefix}"))
    if net.gateway6 is not None:
        out.append(made(Address, net.bridge, f"{net.gateway6}/{net.prefix6}"))
    return [*out, made(LinkUp, net.bridge)]


def _bridge(topo: Topology, net: Network, group: int | None) -> Bridge:
    """A network's bridge; a docker-style one with its own MAC (see :func:`bridge_mac`)."""
    mac = bridge_mac(net) if topo.style == "docker" else None
    return made(Bridge, net.bridge, tool=net.bridge_tool, group=group if net.bridge_tool == "ip" else None, mac=mac)


def bridge_mac(net: Network) -> str | None:
    """A docker-style bridge's MAC, made of its gateway's address, so that it never takes a port's (see
    :class:`~netwrap.kinds.Bridge`); None without a gateway."""
    gateway = net.gateway or net.gateway6
    return mac_for(gateway) if gateway is not None else None


def host_end_mac(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The MAC of the host end of a container's veth, also made of its address (``02:6f``): known without a
    look, and never the container's own."""
    return _mac_of(0x6F, address)


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


@attrs.frozen
class _Parts:
    """What one attachment adds to each phase of the build (see :func:`objects`)."""

    veth: NetObject
    moved: NetObject | None  # moved in: the move (the document's way)
    port: NetObject
    inside: tuple[NetObject, ...]  # its addresses and its interface up, inside the container's namespace
    host_up: NetObject


@functools.lru_cache(maxsize=16384)  # as made's: a long-lived process composes the same attachments again
def _parts(link: Link, docker: bool, group: int | None) -> _Parts:
    """The objects of one attachment, composed once per value of it (a CNI helper composes a network of a hundred
    attachments for each call, and all but one are the last call's)."""
    net, mtu = link.network, link.network.mtu
    if link.moved:
        veth = made(VethPair, link.interface, link.host_interface, mtu=mtu)
    else:
        known = (link.address or link.address6) if docker else None
        veth = made(
            VethPair,
            link.host_interface, link.interface, peer_netns=link.netns, group=group, mtu=mtu,
            peer_mac=mac_for(known) if known else None, mac=host_end_mac(known) if known else None,
        )  # fmt: skip
    inside: list[NetObject] = []
    if link.address is not None:
        inside.append(made(Address, link.interface, f"{link.address}/{net.prefix}", netns=link.netns))
    if link.address6 is not None and link.container.source is not None:
        # a running container's namespace may start its devices without IPv6 (the runtime's choice)
        inside.append(made(Sysctl, f"net.ipv6.conf.{link.interface}.disable_ipv6", "0", netns=link.netns))
    if link.address6 is not None:  # added with nodad: usable at once
        inside.append(made(Address, link.interface, f"{link.address6}/{net.prefix6}", netns=link.netns))
    inside.append(made(LinkUp, link.interface, netns=link.netns))
    return _Parts(
        veth=veth,
        moved=made(LinkNetns, link.interface, link.netns) if link.moved else None,
        # hairpin in docker style, as Docker: a container reaches its own published port
        port=made(
            BridgePort, net.bridge, link.host_interface, tool=net.bridge_tool, isolated=not net.icc, hairpin=docker
        ),
        inside=tuple(inside),
        host_up=made(LinkUp, link.host_interface),
    )


def objects(topo: Topology, allocations: Allocations | Addresses) -> tuple[NetObject, ...]:
    """The objects that build ``topo``, in build order (a network with a subnet6 in both families)."""
    attached = links(topo, allocations)
    own = [c for c in topo.containers if c.owns_namespace]
    mine: dict[int, list[Link]] = {}  # each container's attachments, in order (looked up once, not per container)
    for link in attached:
        mine.setdefault(id(link.container), []).append(link)
    group = link_group(topo) if topo.style == "docker" else None
    parts = [_parts(link, topo.style == "docker", group) for link in attached]
    # a running container's namespace is given a name; the others are made
    out: list[NetObject] = [
        made(Namespace, c.namespace) if c.source is None else made(AttachedNamespace, c.namespace, c.source)
        for c in own
    ]
    out += [part.veth for part in parts]
    out += [part.moved for part in parts if part.moved is not None]
    for net in topo.networks:
        out.append(_bridge(topo, net, group))
        if net.subnet6 is not None:
            out += _ipv6_bridge(net)
    out += [part.port for part in parts]
    inside = {id(link): part.inside for link, part in zip(attached, parts, strict=True)}
    for container in own:
        for link in mine.get(id(container), ()):
            out += inside[id(link)]
        if container.loopback and container.source is None:  # a running container's lo is its own
            out.append(made(LinkUp, "lo", netns=container.namespace))
    # an IPv6 bridge comes up before its ports do (see _ipv6_bridge), an IPv4 one last, as the document has it
    out += [x for net in topo.networks if net.subnet6 is not None for x in _bridge_up(net)]
    out += [part.host_up for part in parts]
    out += [x for net in topo.networks if net.subnet6 is None for x in _bridge_up(net)]
    for container in own:
        # the default route goes through the first network that leads outside (an internal one does not)
        first = next((x for x in mine.get(id(container), ()) if not x.network.internal), None)
        if first is not None and container.default_route:
            if first.address is not None and first.network.gateway is not None:
                out.append(made(Route, "default", str(first.network.gateway), first.interface, netns=first.netns))
            if first.address6 is not None and first.network.gateway6 is not None:
                out.append(made(Route, "default", str(first.network.gateway6), first.interface, netns=first.netns))
    if any(net.subnet is not None for net in topo.networks):
        out.append(made(Sysctl, "net.ipv4.ip_forward", "1"))
    if any(net.subnet6 is not None for net in topo.networks):
        out.append(made(Sysctl, "net.ipv6.conf.all.forwarding", "1"))
    if topo.style == "document":
        out += [NatRule.masquerade(str(net.subnet), not_out=net.bridge) for net in topo.networks if net.nat]
        out += _document_ports(attached)
    elif topo.networks:
        for family in (4, 6):
            if any(family in net.families for net in topo.networks):
                out += _docker_rules(topo, attached, family=family)
    return tuple(out)


@attrs.frozen
class Published:
    """A published port, resolved to the container's address on its first network."""

    link: Link
    host_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    host_port: int
    port: int
    protocol: Literal["tcp", "udp"]

    @property
    def target(self) -> str:
        return f"{self.link.address}:{self.port}"

    def in_family(self, family: int) -> bool:
        """Published in ``family``: its host address is of it (or every address), and, for IPv6, the container
        has an IPv6 address to send it to."""
        if self.host_ip is not None and self.host_ip.version != family:
            return False
        return (self.link.address if family == 4 else self.link.address6) is not None

    def target_in(self, family: int) -> str:
        return self.target if family == 4 else f"[{self.link.address6}]:{self.port}"

    def host_in(self, family: int) -> str | None:
        """The DNAT's destination: the host address (as a /32 or /128), or None for every address."""
        if self.host_ip is None or (family == 6 and self.host_ip.is_unspecified):
            return None
        return f"{self.host_ip}/{self.host_ip.max_prefixlen}"


def published(attached: list[Link]) -> list[Published]:
    """Ports are published to a container's first network, as Docker does."""
    return [
        Published(link, p.host_ip, p.host_port, p.container_port, p.protocol)
        for link in attached
        if link.index == 0
        for p in link.container.ports
    ]


@functools.lru_cache(maxsize=16384)  # as _parts: a warm helper composes the same attachments' ports again
def _dnats(link: Link, chain: str, family: int) -> tuple[Rule, ...]:
    """The DNAT rules of the ports published to one attachment (its first network's), in ``family``."""
    return tuple(
        made(
            NatRule,
            chain,
            "DNAT",
            destination=pub.host_in(family),
            protocol=pub.protocol,
            dport=pub.host_port,
            to=pub.target_in(family),
            family=family,
        )
        for pub in published([link])
        if pub.in_family(family)
    )


def _document_ports(attached: list[Link]) -> list[NetObject]:
    """Step 22's form: DNAT for traffic from other machines only."""
    rules: list[NetObject] = []
    for pub in (p for p in published(attached) if p.in_family(4)):
        rule = made(
            NatRule,
            "PREROUTING",
            "DNAT",
            destination=pub.host_in(4),
            in_interface=pub.link.network.bridge,
            in_negated=True,
            protocol=pub.protocol,
            dport=pub.host_port,
            to=pub.target,
        )
        rules.append(rule)
    return rules


def _docker_rules(topo: Topology, attached: list[Link], family: int = 4) -> list[NetObject]:
    """Docker's rules, each in a chain of the topology's own that is written whole; the built-in chains get
    only the jumps into them, placed first. The chains exist whenever the topology has a network, empty or
    not, so that an edit of the file only ever rewrites a chain's rules. ``family=6``: the same in ip6tables,
    for the networks with a subnet6 (IPv6 has no ``route_localnet``: ``[::1]`` reaches no published port)."""
    v6 = family == 6
    out: list[NetObject] = []
    ports = [pub for pub in published(attached) if pub.in_family(family)]
    publishing = {pub.link.network.name for pub in ports}
    nets = [net for net in topo.networks if (net.subnet6 if v6 else net.subnet) is not None]
    chain, post = chain_name(topo), postrouting_chain(topo)

    def subnet(net: Network) -> str:
        return str(net.subnet6 if v6 else net.subnet)

    masquerades: list[Rule] = [
        made(NatRule, post, "MASQUERADE", source=subnet(net), out_interface=net.bridge, out_negated=True)
        for net in nets
        if net.nat and not net.internal
    ]
    for net in nets:
        if net.name in publishing:
            if not v6:
                out.append(made(Sysctl, f"net.ipv4.conf.{net.bridge}.route_localnet", "1"))
                # 127.0.0.1:PORT from the host: the container must answer the bridge, not 127.0.0.1.
                masquerades.append(made(NatRule, post, "MASQUERADE", source="127.0.0.0/8", out_interface=net.bridge))
            # hairpin: a container reaching a published port through the host's address.
            masquerades.append(
                made(NatRule, post, "MASQUERADE", source=subnet(net), out_interface=net.bridge, ctstate="DNAT")
            )
    # Published ports: entered for traffic to any local address (from other machines through PREROUTING,
    # from the host itself through OUTPUT), as Docker's DOCKER chain is.
    dnats: list[Rule] = [rule for link in attached if link.container.ports for rule in _dnats(link, chain, family)]
    # Replies first: a connection that was let in may answer, even across networks. Then new connections to
    # published ports, from anywhere, before isolation: what was DNAT'd into the bridge (only a published port's
    # rule DNATs there). One rule per network, not one per port, as the isolation chain's: a container that
    # comes or goes changes the nat table alone, one transaction for the kernel to wait for, not two.
    filters: list[Rule] = [
        made(Rule, chain, "ACCEPT", out_interface=net.bridge, ctstate="RELATED,ESTABLISHED,DNAT", family=family)
        for net in nets
    ]
    # Isolation: nothing else goes from one network to another.
    filters += [
        made(Rule, chain, "DROP", in_interface=net.bridge, out_interface=other.bridge, family=family)
        for net in nets
        for other in nets
        if other is not net
    ]
    for net in nets:
        if not net.internal:
            filters.append(
                made(
                    Rule,
                    chain,
                    "ACCEPT",
                    in_interface=net.bridge,
                    out_interface=net.bridge,
                    out_negated=True,
                    family=family,
                )
            )
        verdict = "ACCEPT" if net.icc else "DROP"
        filters.append(made(Rule, chain, verdict, in_interface=net.bridge, out_interface=net.bridge, family=family))
    # Isolation from everything else, before any topology's accepts (as Docker's isolation chains): into a
    # bridge go only its own traffic, replies and published ports; not another topology's, not the outside's.
    iso = isolation_chain(topo)
    isolation: list[Rule] = []
    for net in nets:
        if net.internal:  # as Docker's internal networks: nothing in from outside the bridge, nothing out
            isolation += [
                made(Rule, iso, "RETURN", in_interface=net.bridge, out_interface=net.bridge, family=family),
                made(Rule, iso, "DROP", in_interface=net.bridge, family=family),
                made(Rule, iso, "DROP", out_interface=net.bridge, family=family),
            ]
            continue
        isolation += [
            made(Rule, iso, "RETURN", in_interface=net.bridge, out_interface=net.bridge, family=family),
            made(Rule, iso, "RETURN", out_interface=net.bridge, ctstate="RELATED,ESTABLISHED,DNAT", family=family),
            made(Rule, iso, "DROP", out_interface=net.bridge, family=family),
        ]
    out += [
        made(OwnedChain, post, "nat", tuple(masquerades), family=family),
        made(OwnedChain, chain, "nat", tuple(dnats), family=family),
        made(OwnedChain, iso, "filter", tuple(isolation), family=family),
        made(OwnedChain, chain, "filter", tuple(filters), family=family),
        made(NatRule, "POSTROUTING", post, insert=True, family=family),
        made(NatRule, "PREROUTING", chain, dst_type="LOCAL", insert=True, family=family),
        made(NatRule, "OUTPUT", chain, dst_type="LOCAL", insert=True, family=family),
        made(Rule, "FORWARD", chain, insert=True, family=family),
        made(Rule, "FORWARD", iso, insert=True, family=family),  # after the main jump, so that it lands above it
    ]
    return out
