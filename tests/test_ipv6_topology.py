"""Dual-stack topology files: subnet6/gateway6/address6 read and checked naming the key; every container gets
an IPv6 address (fixed, kept, or the lowest free) beside its IPv4 one; the IPv6 objects and ip6tables chains
mirror IPv4's; a topology without subnet6 builds exactly what it built before."""

from __future__ import annotations

import ipaddress

import pytest

from netwrap.engine.state import MemoryStore, Record
from netwrap.errors import TopologyError
from netwrap.kinds import Address, LinkUp, OwnedChain, Route, Sysctl
from netwrap.topology import compose, graph
from netwrap.topology import files as topofile
from netwrap.topology.apply import desired
from netwrap.topology.model import Port, Topology

V4 = """
name = "six"
[networks.front]
subnet = "10.31.0.0/24"
{extra}
[containers.web]
networks = ["front"]
ports = ["8080:80"]
[containers.api]
networks = [{{ network = "front"{fixed} }}]
"""


def loads(extra: str = 'subnet6 = "fd00:31::/64"', fixed: str = "") -> Topology:
    return topofile.loads(V4.format(extra=extra, fixed=fixed), "six.toml")


def problems(extra: str, fixed: str = "") -> list[str]:
    with pytest.raises(TopologyError) as caught:
        loads(extra, fixed)
    return str(caught.value).splitlines()


def test_a_dual_stack_network_reads_with_its_defaults() -> None:
    net = loads().networks[0]
    assert net.subnet6 == ipaddress.IPv6Network("fd00:31::/64")
    assert net.gateway6 == ipaddress.IPv6Address("fd00:31::1")
    assert loads('subnet6 = "fd00:31::/64"\ngateway6 = "fd00:31::fe"').networks[0].gateway6 == ipaddress.IPv6Address(
        "fd00:31::fe"
    )


def test_addresses_of_each_family_fixed_kept_or_the_lowest_free() -> None:
    topo = loads(fixed=', address6 = "fd00:31::99"')
    given = compose.assign(topo)
    assert given.v6 == {
        ("front", "web"): ipaddress.IPv6Address("fd00:31::2"),
        ("front", "api"): ipaddress.IPv6Address("fd00:31::99"),
    }
    assert given.recorded()["front/web/6"] == "fd00:31::2"
    kept = compose.assign(loads(), {"front/web/6": "fd00:31::7", "front/api/6": "fd00:31::7"})
    assert kept.v6[("front", "web")] == ipaddress.IPv6Address("fd00:31::7")
    assert kept.v6[("front", "api")] == ipaddress.IPv6Address("fd00:31::2")  # the kept one is taken: the lowest


def test_the_ipv6_objects_mirror_the_ipv4_ones() -> None:
    objects, _ = desired(loads(), MemoryStore())
    inside = [o for o in objects if isinstance(o, Address) and o.netns == "web"]
    assert [str(o.address) for o in inside] == ["10.31.0.2/24", "fd00:31::2/64"]
    assert any(isinstance(o, Address) and str(o.address) == "fd00:31::1/64" and o.netns is None for o in objects)
    routes = [o for o in objects if isinstance(o, Route) and o.netns == "web"]
    assert [(str(r.gateway), r.family) for r in routes] == [("10.31.0.1", 4), ("fd00:31::1", 6)]
    assert Sysctl("net.ipv6.conf.all.forwarding", "1") in objects
    chains = {(o.where, o.name): o for o in objects if isinstance(o, OwnedChain)}
    assert {where for where, _ in chains} == {"nat", "filter", "ip6:nat", "ip6:filter"}
    dnat6 = chains[("ip6:nat", "NETWRAP-six")].rules
    assert [" ".join(r.body()) for r in dnat6] == [
        "-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:31::2]:80"
    ]
    post6 = [" ".join(r.body()) for r in chains[("ip6:nat", "NETWRAP-six-POST")].rules]
    assert post6 == [
        "-s fd00:31::/64 ! -o six-front -j MASQUERADE",
        "-s fd00:31::/64 -o six-front -m conntrack --ctstate DNAT -j MASQUERADE",
    ]  # and no 127.0.0.0/8 one: IPv6 has no route_localnet


def test_without_subnet6_a_topology_builds_what_it_built_before() -> None:
    v4_only, _ = desired(loads(extra=""), MemoryStore())
    dual, _ = desired(loads(), MemoryStore())
    assert all(o.key for o in v4_only)
    assert {o.key for o in v4_only} <= {o.key for o in dual}
    assert not any(getattr(o, "family", 4) == 6 for o in v4_only)
    assert not any(isinstance(o, Sysctl) and "ipv6" in o.name for o in v4_only)


@pytest.mark.parametrize(
    ("extra", "fixed", "expected"),
    [
        ('subnet6 = "fe80::/64"', "", "subnet6: fe80::/64 is a link-local prefix"),
        ('subnet6 = "ff05::/64"', "", "subnet6: ff05::/64 is a multicast prefix"),
        ('subnet6 = "fd00:31::1/64"', "", "subnet6: 'fd00:31::1/64': fd00:31::1/64 has host bits set"),
        ('subnet6 = "10.0.0.0/24"', "", "subnet6: '10.0.0.0/24': must be an IPv6 network"),
        ('subnet6 = "fd00:31::%eth0/64"', "", "has a zone id"),
        ('subnet6 = "::ffff:10.0.0.0/120"', "", "IPv4-mapped"),
        ('subnet6 = "fd00:31::/126"', "", "too small"),
        ('subnet6 = "fd00:31::/64"\ngateway6 = "fd00:32::1"', "", "gateway6: fd00:32::1 is not a host address"),
        ('gateway6 = "fd00:32::1"', "", "gateway6: needs a subnet6"),
        ('subnet6 = "fd00:31::/64"', ', address6 = "fd00:99::1"', "address6: address fd00:99::1 is not a host address"),
        ('subnet6 = "fd00:31::/64"', ', address6 = "fd00:31::1"', "address6: address fd00:31::1 is the gateway"),
        ("", ', address6 = "fd00:31::5"', "has no subnet6"),
        ('subnet6 = "fd00:31::/64"', ', address6 = "10.31.0.9"', "must be an IPv6 address"),
        ('subnet6 = "fd00:31::/64"\nstyle_is = 1', "", "unknown key"),
    ],
)
def test_bad_ipv6_input_is_refused_naming_the_key(extra: str, fixed: str, expected: str) -> None:
    found = problems(extra, fixed)
    assert any(expected in line for line in found), found


def test_the_document_style_stays_ipv4() -> None:
    text = V4.format(extra='subnet6 = "fd00:31::/64"', fixed="").replace(
        'name = "six"', 'name = "six"\nstyle = "document"'
    )
    with pytest.raises(TopologyError, match="subnet6: needs docker style"):
        topofile.loads(text, "six.toml")


@pytest.mark.parametrize(
    ("text", "host_ip", "families"),
    [
        ("[2001:db8::1]:8080:80", "2001:db8::1", (6,)),
        ("[::]:8080:80/udp", "::", (6,)),
        ("0.0.0.0:8080:80", None, (4, 6)),
        ("8080:80", None, (4, 6)),
        ("192.0.2.1:8080:80", "192.0.2.1", (4,)),
    ],
)
def test_ports_take_a_bracketed_ipv6_host_address(text: str, host_ip: str | None, families: tuple[int, ...]) -> None:
    port = Port.parse("ports[0]", text)
    assert (str(port.host_ip) if port.host_ip else None) == host_ip
    assert port.families() == families
    assert Port.parse("ports[0]", str(port)) == port


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2001:db8::1:8080:80", "brackets"),
        ("[2001:db8::1]8080:80", "[IPV6]:HOST_PORT"),
        ("[fe80::1]:8080:80", "link-local"),
        ("[ff02::1]:8080:80", "not an address of this host"),
    ],
)
def test_bad_ipv6_ports_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="ports") as caught:
        Port.parse("ports[0]", text)
    assert reason in str(caught.value)


def test_ports_of_two_families_do_not_overlap() -> None:
    v4, v6, every = (Port.parse("p", t) for t in ("192.0.2.1:80:80", "[2001:db8::1]:80:80", "80:80"))
    assert not v4.overlaps(v6)
    assert every.overlaps(v4) and every.overlaps(v6)
    assert Port.parse("p", "[::]:80:80").overlaps(v6)


def test_an_ipv6_port_needs_a_subnet6() -> None:
    text = V4.format(extra="", fixed="").replace('ports = ["8080:80"]', 'ports = ["[2001:db8::1]:8080:80"]')
    with pytest.raises(TopologyError, match="published on IPv6"):
        topofile.loads(text, "six.toml")


def test_status_and_graph_show_both_families() -> None:
    topo = loads()
    _, addresses = desired(topo, MemoryStore(Record()))
    drawn = graph.mermaid(topo, addresses)
    assert "fd00:31::2/64" in drawn and "fd00:31::1/64" in drawn
    assert "[fd00:31::2]:80" in drawn
    assert "fd00:31::2/64" in graph.dot(topo, addresses)


ONLY6 = """
name = "only6"
[networks.v6]
subnet6 = "fd00:33::/64"
{extra}
[containers.a]
networks = [{{ network = "v6"{fixed} }}]
ports = ["8090:80"]
"""


def test_an_ipv6_only_network_builds_nothing_of_ipv4() -> None:
    topo = topofile.loads(ONLY6.format(extra="", fixed=""), "only6.toml")
    net = topo.networks[0]
    assert (net.subnet, net.gateway, net.families) == (None, None, (6,))
    objects, addresses = desired(topo, MemoryStore())
    assert addresses.v4 == {} and addresses.v6 == {("v6", "a"): ipaddress.IPv6Address("fd00:33::2")}
    assert not any(getattr(o, "family", None) == 4 for o in objects)
    assert not any(isinstance(o, Sysctl) and o.name == "net.ipv4.ip_forward" for o in objects)
    assert [str(o.address) for o in objects if isinstance(o, Address)] == ["fd00:33::2/64", "fd00:33::1/64"]
    drawn = graph.mermaid(topo, addresses) + graph.dot(topo, addresses)
    assert "None" not in drawn and "fd00:33::2/64" in drawn


@pytest.mark.parametrize(
    ("extra", "fixed", "expected"),
    [
        ("", ', address = "10.0.0.5"', "networks[0]: network 'v6' is IPv6 only: use address6 (10.0.0.5)"),
        ('gateway = "10.0.0.1"', "", "gateway: needs a subnet to belong to"),
    ],
)
def test_ipv4_values_on_an_ipv6_only_network_are_refused(extra: str, fixed: str, expected: str) -> None:
    with pytest.raises(TopologyError) as caught:
        topofile.loads(ONLY6.format(extra=extra, fixed=fixed), "only6.toml")
    assert expected in str(caught.value)


def test_a_network_needs_a_subnet_of_some_family_and_the_document_needs_ipv4() -> None:
    with pytest.raises(TopologyError, match="subnet: is required"):
        topofile.loads('[networks.n]\nbridge = "b"\n', "x.toml")
    text = 'style = "document"\n' + ONLY6.format(extra="", fixed="")
    with pytest.raises(TopologyError, match="subnet: is required in document style"):
        topofile.loads(text, "only6.toml")


def test_a_bridge_gets_its_ipv6_settings_before_its_ipv6_address_in_a_batch() -> None:
    from netwrap.engine.batch import Step, batches  # noqa: PLC0415

    objects, _ = desired(loads(), MemoryStore())
    keys = [o.key for o in objects]
    setting = next(o for o in objects if isinstance(o, Sysctl) and o.name.endswith("six-front.disable_ipv6"))
    gateway6 = next(o for o in objects if isinstance(o, Address) and str(o.address) == "fd00:31::1/64")
    assert keys.index(setting.key) < keys.index(gateway6.key)
    steps = [Step(n, c) for n, o in enumerate(objects, start=1) for c in o.create_commands() if o.location is None]
    made = batches(steps)
    found = [(b.command.tool, b.command.args) for b in made]
    wanted = ("net.ipv6.conf.six-front.disable_ipv6=0", "net.ipv6.conf.six-front.accept_dad=0")
    at = found.index(("sysctl", ("-w", *wanted)))  # together, in their place:
    assert found[at - 1][0] == "ip" and found[at + 1][0] == "ip"  # after the bridge is made, before its addresses
    assert "addr add fd00:31::1/64" in (made[at + 1].command.input or "")


def test_an_ipv6_bridge_comes_up_before_its_ports_and_without_address_detection() -> None:
    """Its link-local address, which the host's neighbour solicitations come from, is usable at once."""
    objects, _ = desired(loads(), MemoryStore())
    keys = [o.key for o in objects]
    dad = next(o for o in objects if isinstance(o, Sysctl) and o.name == "net.ipv6.conf.six-front.accept_dad")
    assert dad.value == "0"
    ports = [o for o in objects if isinstance(o, LinkUp) and o.netns is None and o.device.startswith("v")]
    bridge_up = next(o for o in objects if isinstance(o, LinkUp) and o.device == "six-front")
    assert ports and all(keys.index(bridge_up.key) < keys.index(port.key) for port in ports)
    assert keys.index(dad.key) < keys.index(bridge_up.key)
    v4_only, _ = desired(loads(extra=""), MemoryStore())  # IPv4 alone: the document's order, the bridge last
    ups = [o.device for o in v4_only if isinstance(o, LinkUp) and o.netns is None]
    assert ups[-1] == "six-front" and len(ups) > 1
    assert not any(isinstance(o, Sysctl) and o.name.endswith("accept_dad") for o in v4_only)


def test_nat_off_masquerades_nothing_in_either_family() -> None:
    objects, _ = desired(loads('subnet6 = "fd00:31::/64"\nnat = false'), MemoryStore())
    chains = {(o.where, o.name): o for o in objects if isinstance(o, OwnedChain)}
    for where in ("nat", "ip6:nat"):
        rules = [" ".join(r.body()) for r in chains[(where, "NETWRAP-six-POST")].rules]
        assert not any("! -o" in rule for rule in rules), rules  # only the hairpin ones are left


def test_the_status_table_shows_both_addresses_and_a_dash_for_none() -> None:
    from netwrap.topology.apply import ContainerStatus, render_status  # noqa: PLC0415

    both = {"network": "front", "interface": "eth0", "address": "10.31.0.2/24", "address6": "fd00:31::2/64"}
    only6 = {"network": "v6", "interface": "eth0", "address": "-", "address6": "fd00:33::2/64"}
    rows = [
        ContainerStatus("web", "bridge", "web", (both,), (), "up"),
        ContainerStatus("a", "bridge", "a", (only6,), (), "up"),
    ]
    table = render_status(rows)
    assert "10.31.0.2/24 fd00:31::2/64" in table
    assert "fd00:33::2/64" in table and " - fd00" not in table
