"""Topology files, IPAM and the objects a topology becomes: pure, no process started."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netwrap import NatRule, ValidationError, VethPair, tutorial
from netwrap.engine import serial
from netwrap.errors import TopologyError
from netwrap.kinds import Bridge, BridgePort, OwnedChain, Rule, Sysctl
from netwrap.topology import compose, graph
from netwrap.topology import files as topofile
from netwrap.topology.model import Port, short_name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        topofile.loads(text, "lab.toml")
    assert str(caught.value).startswith("lab.toml: ")
    return [p.render("lab.toml") for p in caught.value.problems]


NET = '[networks.front]\nsubnet = "10.10.0.0/24"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = \n", "lab.toml: [file] syntax: "),
        ("colour = 1\n", "lab.toml: [topology] colour: unknown key"),
        ("[networks.front]\nnat = true\n", "lab.toml: [networks.front] subnet: is required"),
        ('[networks.front]\nsubnet = "10.10.0.1/24"\n', "lab.toml: [networks.front] subnet: '10.10.0.1/24': "
         "10.10.0.1/24 has host bits set"),
        ('[networks.front]\nsubnet = "10.10.0.0/24"\ngateway = "10.20.0.1"\n',
         "lab.toml: [networks.front] gateway: 10.20.0.1 is not a host address of 10.10.0.0/24"),
        ('[networks.front]\nsubnet = "10.10.0.0/24"\nbridge = "a-very-long-bridge"\n',
         "lab.toml: [networks.front] bridge: 'a-very-long-bridge': is 18 bytes long"),
        ('[networks.front]\nsubnet = "10.10.0.0/24"\nnat = "yes"\n',
         "lab.toml: [networks.front] nat: must be a boolean, not string 'yes'"),
        (NET + '[networks.back]\nsubnet = "10.10.0.128/25"\n',
         "lab.toml: [networks.back] subnet: 10.10.0.128/25 overlaps 10.10.0.0/24 of network 'front'"),
        (NET + '[containers.web]\nnetworks = ["back"]\n',
         "lab.toml: [containers.web] networks[0]: network 'back' is not declared"),
        (NET + '[containers.web]\nnetwork_mode = "overlay"\n',
         "lab.toml: [containers.web] network_mode: 'overlay': use bridge, host, none or container:NAME"),
        (NET + '[containers.web]\nnetwork_mode = "host"\nnetworks = ["front"]\n',
         "lab.toml: [containers.web] networks: a container in host mode joins no networks"),
        (NET + '[containers.web]\nnetwork_mode = "none"\nports = ["80:80"]\n',
         "lab.toml: [containers.web] ports: a container in none mode publishes no ports"),
        (NET + '[containers.web]\nnetwork_mode = "container:web"\n',
         "lab.toml: [containers.web] network_mode: a container cannot join its own namespace"),
        (NET + '[containers.web]\nnetwork_mode = "container:db"\n',
         "lab.toml: [containers.web] network_mode: joins container 'db', which is not declared"),
        (NET + '[containers.a]\nnetwork_mode = "container:b"\n[containers.b]\nnetwork_mode = "container:a"\n',
         "lab.toml: [containers.a] network_mode: containers ['a', 'b'] join each other in a circle"),
        (NET + '[containers.web]\nnetworks = ["front"]\nports = ["80:80/sctp"]\n',
         "lab.toml: [containers.web] ports[0]: '80:80/sctp': unknown protocol 'sctp'"),
        (NET + '[containers.web]\nnetworks = ["front"]\nports = ["80:99999"]\n',
         "lab.toml: [containers.web] ports[0]: '80:99999': port 99999 must be between 1 and 65535"),
        (NET + '[containers.a]\nnetworks = ["front"]\nports = ["80:80"]\n'
               '[containers.b]\nnetworks = ["front"]\nports = ["127.0.0.1:80:8080"]\n',
         "lab.toml: [containers.b] ports[0]: host port 80/tcp is also published by container 'a' (80:80/tcp)"),
        (NET + '[containers.web]\nnetworks = [{ network = "front", address = "10.99.0.2" }]\n',
         "lab.toml: [containers.web] networks[0]: address 10.99.0.2 is not a host address of 10.10.0.0/24"),
        (NET + '[containers.web]\nnetworks = [{ network = "front", address = "10.10.0.1" }]\n',
         "lab.toml: [containers.web] networks[0]: address 10.10.0.1 is the gateway of network 'front'"),
        (NET + '[containers.a]\nnetworks = [{ network = "front", address = "10.10.0.9" }]\n'
               '[containers.b]\nnetworks = [{ network = "front", address = "10.10.0.9" }]\n',
         "lab.toml: [containers.b] networks[0]: address 10.10.0.9 is also container 'a''s"),
        (NET + '[containers.a]\nnetworks = ["front"]\nnetns = "x"\n[containers.b]\nnetworks = ["front"]\nnetns = "x"\n',
         "lab.toml: [containers.b] netns: namespace 'x' is also container 'a''s"),
        (NET + '[containers."../etc"]\nnetworks = ["front"]\n',
         "lab.toml: [containers] \"../etc\": '../etc': use 1-63 letters"),
        (NET + '[containers.web]\nnetworks = ["front", "front"]\n',
         "lab.toml: [containers.web] networks[1]: joins network 'front' twice"),
        (NET + '[containers.web]\nnetworks = [{ network = "front", interface = "a" }]\n',
         "lab.toml: [containers.web] networks[0].interface: 'a': `ip` would read it as the keyword 'address'"),
    ],
)  # fmt: skip
def test_each_error_names_the_file_the_table_and_the_key(text: str, expected: str) -> None:
    found = problems(text)
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_is_reported_at_once() -> None:
    text = (
        'style = "fancy"\n[networks.front]\nsubnet = "10.10.0.0/33"\n'
        '[containers.web]\nnetworks = ["front"]\nports = ["x"]\n[containers.db]\nnetwork_mode = "bogus"\n'
    )
    found = problems(text)
    assert len(found) == 4, found
    assert "lab.toml: [topology] style: 'fancy': use docker or document" in found
    assert not any("'front' is not declared" in line for line in found)  # no echo of the broken network


def test_a_missing_file_is_named() -> None:
    with pytest.raises(TopologyError, match=r"nope\.toml: \[file\] read: No such file"):
        topofile.load("nope.toml")


def test_examples_load() -> None:
    for path in EXAMPLES.glob("*.toml"):
        topo = topofile.load(path)
        assert compose.objects(topo, compose.allocate(topo))


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("8080:80", Port(8080, 80)),
        ("8080:80/udp", Port(8080, 80, "udp")),
        ("127.0.0.1:5353:53/udp", Port(5353, 53, "udp", ipaddress.IPv4Address("127.0.0.1"))),
    ],
)
def test_port_specs(text: object, port: Port) -> None:
    assert Port.parse("ports[0]", text) == port


@given(st.text(max_size=30))
def test_port_parser_never_crashes(text: str) -> None:
    try:
        port = Port.parse("p", text)
    except ValidationError as exc:
        assert exc.field == "p"
    else:
        assert 1 <= port.host_port <= 65535


# --- IPAM -------------------------------------------------------------------------------------

IPAM = NET + '[containers.a]\nnetworks = ["front"]\n[containers.b]\nnetworks = ["front"]\n'


def addr(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def test_allocation_is_deterministic_and_skips_the_gateway() -> None:
    topo = topofile.loads(IPAM)
    first = compose.allocate(topo)
    assert first == {("front", "a"): addr("10.10.0.2"), ("front", "b"): addr("10.10.0.3")}
    assert compose.allocate(topo) == first


def test_fixed_addresses_are_kept_free() -> None:
    topo = topofile.loads(IPAM + '[containers.c]\nnetworks = [{ network = "front", address = "10.10.0.2" }]\n')
    got = compose.allocate(topo)
    assert got[("front", "c")] == addr("10.10.0.2")
    assert got[("front", "a")] == addr("10.10.0.3")
    assert len(set(got.values())) == 3


def test_earlier_addresses_are_kept_and_a_newcomer_takes_a_free_one() -> None:
    topo = topofile.loads(NET + '[containers.new]\nnetworks = ["front"]\n[containers.b]\nnetworks = ["front"]\n')
    got = compose.allocate(topo, {"front/b": "10.10.0.2", "front/gone": "10.10.0.3"})
    assert got == {("front", "b"): addr("10.10.0.2"), ("front", "new"): addr("10.10.0.3")}


def test_an_earlier_address_that_no_longer_fits_is_replaced() -> None:
    topo = topofile.loads(IPAM)
    got = compose.allocate(topo, {"front/a": "192.0.2.9", "front/b": "10.10.0.1"})
    assert got == {("front", "a"): addr("10.10.0.2"), ("front", "b"): addr("10.10.0.3")}


def test_a_full_subnet_is_a_clear_error_naming_the_file() -> None:
    """Issue "Hardening II", 17: found when the file is read, and named ``lab.toml``, not ``topology 'x'``."""
    text = '[networks.tiny]\nsubnet = "10.10.0.0/30"\n' + "".join(
        f'[containers.c{i}]\nnetworks = ["tiny"]\n' for i in range(3)
    )
    found = problems(text)
    assert found == [
        f"lab.toml: [containers.c{i}] networks[0]: network 'tiny' (10.10.0.0/30) has no free address left: it has 1 "
        "for containers, and 3 containers join it"
        for i in (1, 2)
    ]
    # a fixed address takes its place first, as allocation does
    fixed = text.replace('[containers.c2]\nnetworks = ["tiny"]', '[containers.c2]\nnetworks = [{ network = "tiny", '
                         'address = "10.10.0.2" }]')  # fmt: skip
    assert [line.split("]")[0] for line in problems(fixed)] == ["lab.toml: [containers.c0", "lab.toml: [containers.c1"]
    topo = topofile.loads(text.replace("/30", "/29"))
    assert len(compose.allocate(topo)) == 3


# --- the objects a topology becomes -------------------------------------------------------------


def test_the_tutorial_file_is_the_tutorial() -> None:
    topo = topofile.load(EXAMPLES / "tutorial.toml")
    assert compose.objects(topo, compose.allocate(topo)) == tutorial.objects()


def test_generated_names_fit_are_stable_and_traceable() -> None:
    long = "a-container-with-a-long-name"
    topo = topofile.loads(NET + f'[containers.{long}]\nnetworks = ["front"]\n[containers.web]\nnetworks = ["front"]\n')
    links = compose.links(topo, compose.allocate(topo))
    names = [link.host_interface for link in links]
    assert names[1] == "v0-web"
    assert names[0].startswith("v0-a-conta") and len(names[0].encode()) <= 15
    assert names == [link.host_interface for link in compose.links(topo, compose.allocate(topo))]
    other = topofile.loads(NET + '[containers.a-container-with-a-long-other]\nnetworks = ["front"]\n')
    assert compose.links(other, compose.allocate(other))[0].host_interface != names[0]
    assert short_name("nw-", "front") == "nw-front"


def test_a_container_end_is_made_inside_its_namespace() -> None:
    topo = topofile.loads(NET + '[containers.web]\nnetworks = ["front"]\n')
    pair = next(o for o in compose.objects(topo, compose.allocate(topo)) if isinstance(o, VethPair))
    group = compose.link_group(topo)
    assert pair.create_commands()[0].shell() == (
        f"ip link add v0-web group {group} address 02:6f:0a:0a:00:02 type veth peer name eth0 "
        "address 02:6e:0a:0a:00:02 netns web"
    )  # both ends' MACs made of its address (10.10.0.2): the container's as Docker makes it, the host end's apart
    assert 4096 <= group < 2**31


def test_a_docker_style_bridge_has_its_gateways_mac_and_the_document_s_none() -> None:
    """A bridge whose MAC is not set takes its lowest port's: the gateway's MAC would change as containers come
    and go. The document's bridge stays as the document makes it."""
    topo = topofile.loads(NET + '[containers.web]\nnetworks = ["front"]\n')
    (bridge,) = (o for o in compose.objects(topo, compose.allocate(topo)) if isinstance(o, Bridge))
    gateway = topo.networks[0].gateway
    assert gateway is not None and bridge.mac == compose.mac_for(gateway)
    assert "address" in bridge.create_commands()[-1].args
    document = tutorial.objects()
    assert all(o.mac is None for o in document if isinstance(o, Bridge | VethPair))


def test_docker_style_rules() -> None:
    topo = topofile.load(EXAMPLES / "published-ports.toml")
    objs = compose.objects(topo, compose.allocate(topo))
    shells = [c.shell() for o in objs for c in o.create_commands()]
    chains = {(o.table, o.name): o for o in objs if isinstance(o, OwnedChain)}
    assert list(chains) == [
        ("nat", "NETWRAP-ports-POST"),
        ("nat", "NETWRAP-ports"),
        ("filter", "NETWRAP-ports-ISO"),
        ("filter", "NETWRAP-ports"),
    ]
    # into a bridge go only its own traffic, replies and published ports, whoever applied first
    assert chains[("filter", "NETWRAP-ports-ISO")].bodies()[:3] == (
        ("-i", "ports-apps", "-o", "ports-apps", "-j", "RETURN"),
        ("-o", "ports-apps", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "RETURN"),
        ("-o", "ports-apps", "-j", "DROP"),
    )
    # each chain is one transaction: made (or flushed) and filled in order
    assert chains[("nat", "NETWRAP-ports")].create_commands()[0].shell() == (
        "iptables-restore --noflush <<'EOF'\n*nat\n:NETWRAP-ports - [0:0]\n"
        "-A NETWRAP-ports -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.40.0.2:80\n"
        "-A NETWRAP-ports -p tcp -m tcp --dport 8443 -j DNAT --to-destination 10.40.0.2:443\n"
        "-A NETWRAP-ports -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.40.0.3:53\n"
        "COMMIT\nEOF"
    )
    assert chains[("nat", "NETWRAP-ports-POST")].bodies() == (
        ("-s", "10.40.0.0/24", "!", "-o", "ports-apps", "-j", "MASQUERADE"),
        ("-s", "10.50.0.0/24", "!", "-o", "ports-quiet", "-j", "MASQUERADE"),
        ("-s", "127.0.0.0/8", "-o", "ports-apps", "-j", "MASQUERADE"),
        ("-s", "10.40.0.0/24", "-o", "ports-apps", "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"),
    )
    assert "sysctl net.ipv4.conf.ports-apps.route_localnet=1" in shells
    # the built-in chains get only the jumps, each placed first
    assert shells[-5:] == [
        "iptables -t nat -I POSTROUTING 1 -j NETWRAP-ports-POST",
        "iptables -t nat -I PREROUTING 1 -m addrtype --dst-type LOCAL -j NETWRAP-ports",
        "iptables -t nat -I OUTPUT 1 -m addrtype --dst-type LOCAL -j NETWRAP-ports",
        "iptables -t filter -I FORWARD 1 -j NETWRAP-ports",
        "iptables -t filter -I FORWARD 1 -j NETWRAP-ports-ISO",
    ]
    bodies = chains[("filter", "NETWRAP-ports")].bodies()
    drop = ("-i", "ports-apps", "-o", "ports-quiet", "-j", "DROP")
    assert bodies.index(drop) < bodies.index(("-i", "ports-apps", "!", "-o", "ports-apps", "-j", "ACCEPT"))
    ports = [o for o in objs if isinstance(o, BridgePort)]
    assert {p.port: p.isolated for p in ports} == {"v0-web": False, "v0-dns": False, "v0-worker1": True,
                                                   "v0-worker2": True}  # fmt: skip
    assert any(isinstance(o, Sysctl) and o.name == "net.ipv4.ip_forward" for o in objs)


def test_document_style_has_only_the_documents_rules() -> None:
    topo = topofile.load(EXAMPLES / "tutorial.toml")
    rules = [o for o in compose.objects(topo, compose.allocate(topo)) if isinstance(o, Rule)]
    assert rules == [NatRule.masquerade("172.18.0.0/24", not_out="Tbr0"),
                     NatRule.publish(80, "172.18.0.2:80", not_in="Tbr0")]  # fmt: skip


def test_graphs_show_bridges_veths_namespaces_and_addresses() -> None:
    topo = topofile.load(EXAMPLES / "two-networks.toml")
    allocations = compose.allocate(topo)
    drawing = graph.mermaid(topo, allocations)
    assert drawing.startswith("flowchart LR\n")
    assert 'br_front["bridge twonets-front<br/>10.10.0.1/24<br/>NAT out"]' in drawing
    assert 'c_api ---|"eth1 10.20.0.10/24 = v1-api"| br_back' in drawing
    assert 'host -.->|"8080/tcp to 10.10.0.2:80"| c_web' in drawing
    dotted = graph.dot(topo, allocations)
    assert dotted.startswith('graph "twonets" {')
    assert 'c_db -- br_back [label="eth0 10.20.0.2/24\\nv0-db"];' in dotted
    modes = topofile.load(EXAMPLES / "modes.toml")
    assert "c_sidecar -.- c_app" in graph.mermaid(modes, compose.allocate(modes))


def test_0_0_0_0_publishes_on_every_address_and_other_non_unicast_host_addresses_are_refused() -> None:
    """As Docker reads ``-p 0.0.0.0:8080:80``; before, it rendered ``-d 0.0.0.0/32``, which nothing matches."""
    every = Port.parse("ports[0]", "0.0.0.0:8080:80")
    assert every == Port.parse("ports[0]", "8080:80")
    assert every.host_ip is None
    assert str(every) == "8080:80/tcp"
    for text in ("255.255.255.255:8080:80", "224.0.0.1:8080:80/udp"):
        with pytest.raises(ValidationError, match=r"ports\[0\].*is not an address of this host"):
            Port.parse("ports[0]", text)
    assert Port.parse("ports[0]", "127.0.0.1:5353:53/udp").host_ip == ipaddress.IPv4Address("127.0.0.1")


def test_derived_device_names_that_clash_step_aside_when_the_file_is_read() -> None:
    """Issue 12, item 6: service-00353 and service-00535 both shortened to v0-service-12aa, found half-way
    through apply. Every host-side name is now known when the file is read, and a clash resolved there."""
    assert short_name("v0-", "service-00353") == short_name("v0-", "service-00535")
    text = NET + "".join(f'[containers.service-{n}]\nnetworks = ["front"]\n' for n in ("00353", "00535"))
    topo = topofile.loads(text)
    names = topo.host_interfaces
    assert names[("service-00353", 0)] != names[("service-00535", 0)]
    assert all(len(name.encode()) <= 15 for name in names.values())
    # the same whatever the order of the file
    turned = NET + "".join(f'[containers.service-{n}]\nnetworks = ["front"]\n' for n in ("00535", "00353"))
    assert topofile.loads(turned).host_interfaces == names
    # and what compose builds is exactly that
    built = {
        (link.container.name, link.index): link.host_interface for link in compose.links(topo, compose.allocate(topo))
    }
    assert built == names


def test_a_derived_name_steps_aside_from_a_given_one() -> None:
    given = '[containers.q]\nnetworks = [{ network = "front", host_interface = "v0-p" }]\n'
    text = NET + '[containers.p]\nnetworks = ["front"]\n' + given
    names = topofile.loads(text).host_interfaces
    assert names[("q", 0)] == "v0-p"
    assert names[("p", 0)] != "v0-p"


def test_two_interfaces_of_one_name_in_a_container_are_refused_when_read() -> None:
    back = '[networks.back]\nsubnet = "10.20.0.0/24"\n'
    text = NET + back + '[containers.c]\nnetworks = ["front", { network = "back", interface = "eth0" }]\n'
    with pytest.raises(
        TopologyError, match=r"\[containers\.c\] networks\[1\]: interface 'eth0' is also networks\[0\]'s"
    ):
        topofile.loads(text)


def test_a_network_with_a_dot_gets_a_bridge_its_settings_can_name_and_a_given_one_is_refused() -> None:
    """Issue 12, item 7: ``[networks."my.net"]`` failed half-way at ``sysctl net.ipv4.conf.t-my.net.X``."""
    topo = topofile.loads(
        'name = "t"\n[networks."my.net"]\nsubnet = "10.1.0.0/24"\n[networks.my-net]\nsubnet = "10.2.0.0/24"\n'
    )
    dotted, dashed = topo.network("my.net").bridge, topo.network("my-net").bridge
    assert "." not in dotted
    assert dotted != dashed
    with pytest.raises(TopologyError, match=r"\[networks\.n\] bridge: 'br\.0': contains '\.'"):
        topofile.loads('name = "t"\n[networks.n]\nsubnet = "10.1.0.0/24"\nbridge = "br.0"\n')


def test_composing_again_gives_the_very_same_objects_and_a_bad_one_is_refused_each_time() -> None:
    """A long-lived process composes each call's network anew: the objects of the last call come back as they
    were (validated and described once); an object that cannot be made is an error every time, never kept."""
    from netwrap.kinds import Address  # noqa: PLC0415
    from netwrap.topology.compose import made  # noqa: PLC0415

    topo = topofile.load(sorted(EXAMPLES.glob("*.toml"))[0])
    first = compose.objects(topo, compose.allocate(topo))
    again = compose.objects(topo, compose.allocate(topo))
    assert first == again and all(a is b for a, b in zip(first, again, strict=True))
    assert made(Address, "eth0", "10.0.0.2/24") is made(Address, "eth0", "10.0.0.2/24")
    assert made(Address, "eth0", "10.0.0.3/24") != made(Address, "eth0", "10.0.0.2/24")
    for _ in range(2):
        with pytest.raises(ValidationError):
            made(Address, "eth0", "10.0.0.300/24")
    assert made(BridgePort, "br0", "va", isolated=True).isolated is True
    with pytest.raises(ValidationError):  # 1 == True, but 1 is no flag: never the object made with True
        made(BridgePort, "br0", "va", isolated=1)  # type: ignore[arg-type]


def test_composing_a_network_again_keeps_each_attachments_objects_and_equals_a_first_composition() -> None:
    """Each attachment's objects are kept by its value: a network composed again with one attachment more, one
    moved to another address and another's ports changed gives the same objects, in the same order, as a
    process composing it for the first time, and the unchanged attachments' very objects back."""
    rows = "".join(f'[containers.c{i}]\nnetworks = ["n"]\nports = ["{8000 + i}:80"]\n' for i in range(6))
    text = f'name = "again"\n[networks.n]\nsubnet = "10.77.0.0/24"\n{rows}'
    topo = topofile.loads(text, "again.toml")
    first = compose.objects(topo, compose.allocate(topo))
    moved = '[containers.c5]\nnetworks = [{ network = "n", address = "10.77.0.99" }]'
    text2 = text.replace('"8003:80"', '"9003:81"').replace('[containers.c5]\nnetworks = ["n"]', moved)
    edited = topofile.loads(text2 + '[containers.c9]\nnetworks = ["n"]\n')
    again = compose.objects(edited, compose.allocate(edited))
    compose._parts.cache_clear()
    compose._kept.cache_clear()
    assert again == compose.objects(edited, compose.allocate(edited))  # as a first composition
    kept = {obj.key: obj for obj in first}
    same = [obj for obj in again if obj.key in kept and serial.to_dict(kept[obj.key]) == serial.to_dict(obj)]
    assert all(kept[obj.key] is obj for obj in same)
    assert sorted(obj.key for obj in again if obj not in same and "c9" not in obj.key) == [
        "addr:c5:eth0:10.77.0.99/24",
        "chain:nat:NETWRAP-again",
        "veth::v0-c5:eth0@c5",
    ]  # c5's new address and MACs, and the published ports' chain
    assert len([obj for obj in again if "c9" in obj.key]) == 8  # namespace, veth, port, address, 3 ups, route
    dnats = [(r.dport, r.to) for o in again if isinstance(o, OwnedChain) and o.table == "nat" for r in o.rules]
    assert (9003, "10.77.0.5:81") in dnats and (8003, "10.77.0.5:80") not in dnats


def test_an_mtu_taken_out_of_the_file_gives_the_kernels_back_and_keeps_it() -> None:
    """A network's MTU taken out of the file: the veths netwrap made with it are wanted with the kernel's (1500),
    as a fresh apply makes them, and stay so (the record then says 1500: nothing to change on the next apply);
    a network that never had one leaves the MTU to the kernel."""
    from netwrap.engine.state import MemoryStore, Record  # noqa: PLC0415
    from netwrap.topology.apply import desired  # noqa: PLC0415

    text = 'name = "mtu"\n[networks.n]\nsubnet = "10.78.0.0/24"\nmtu = 1400\n[containers.c]\nnetworks = ["n"]\n'
    store = MemoryStore()
    made, _ = desired(topofile.loads(text, "mtu.toml"), store)
    assert {o.mtu for o in made if isinstance(o, VethPair)} == {1400}
    store.save(Record(created=list(made), complete=True, uses=[o.key for o in made]))
    edited = topofile.loads(text.replace("mtu = 1400\n", ""), "mtu.toml")
    now, _ = desired(edited, store)
    assert {o.mtu for o in now if isinstance(o, VethPair)} == {1500}
    store.save(Record(created=list(now), complete=True, uses=[o.key for o in now]))
    again, _ = desired(edited, store)
    assert [o for o in again if isinstance(o, VethPair)] == [o for o in now if isinstance(o, VethPair)]
    assert {o.mtu for o in again if isinstance(o, VethPair)} == {1500}
    fresh, _ = desired(edited, MemoryStore())
    assert {o.mtu for o in fresh if isinstance(o, VethPair)} == {None}
