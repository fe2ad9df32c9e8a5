"""Every object's create, check and delete commands, exactly, with no process started."""

from __future__ import annotations

import ipaddress

import pytest

from netwrap import (
    Address,
    Bridge,
    BridgePort,
    LinkNetns,
    LinkUp,
    Namespace,
    NatRule,
    Route,
    Sysctl,
    ValidationError,
    VethPair,
)
from netwrap.command import Command
from netwrap.kinds import Chain, Rule


def argvs(commands: tuple[Command, ...]) -> list[tuple[str, ...]]:
    return [c.argv for c in commands]


def shells(commands: tuple[Command, ...]) -> list[str]:
    return [c.shell() for c in commands]


def test_namespace_commands() -> None:
    ns = Namespace("Tdocker0")
    assert argvs(ns.create_commands()) == [("ip", "netns", "add", "Tdocker0")]
    assert argvs(ns.delete_commands()) == [("ip", "netns", "del", "Tdocker0")]
    assert ns.check_command().argv == ("ip", "netns", "list")
    assert not ns.check_command().mutates


def test_veth_pair_commands() -> None:
    pair = VethPair("Tveth0", "Tveth1")
    assert shells(pair.create_commands()) == ["ip link add Tveth0 type veth peer name Tveth1"]
    assert shells(pair.delete_commands()) == ["ip link del Tveth1"]
    assert shells(pair.delete_commands("Tveth0")) == ["ip link del Tveth0"]
    assert pair.check_command().argv == ("ip", "-d", "-json", "link", "show")
    with pytest.raises(ValidationError, match="end='eth9'"):
        pair.delete_commands("eth9")


def test_veth_pair_in_a_namespace_renders_with_netns_exec() -> None:
    pair = VethPair("Tveth0", "Tveth1", netns="Tdocker0")
    assert shells(pair.create_commands()) == ["ip netns exec Tdocker0 ip link add Tveth0 type veth peer name Tveth1"]
    assert pair.check_command().shell() == "ip netns exec Tdocker0 ip -d -json link show"


def test_veth_pair_ends_must_differ() -> None:
    with pytest.raises(ValidationError, match=r"VethPair\.peer='Tveth0'"):
        VethPair("Tveth0", "Tveth0")


def test_link_netns_commands() -> None:
    move = LinkNetns("Tveth0", "Tdocker0")
    assert shells(move.create_commands()) == ["ip link set Tveth0 netns Tdocker0"]
    assert move.check_command().shell() == "ip netns exec Tdocker0 ip -d -json link show"
    assert shells(move.delete_commands()) == ["ip netns exec Tdocker0 ip link del Tveth0"]


def test_bridge_with_brctl_is_the_documents_form() -> None:
    bridge = Bridge("Tbr0")
    assert shells(bridge.create_commands()) == ["brctl addbr Tbr0"]
    assert shells(bridge.delete_commands()) == ["ip link set Tbr0 down", "brctl delbr Tbr0"]
    port = BridgePort("Tbr0", "Tveth1")
    assert shells(port.create_commands()) == ["brctl addif Tbr0 Tveth1"]
    assert shells(port.delete_commands()) == ["brctl delif Tbr0 Tveth1"]


def test_bridge_with_iproute2() -> None:
    bridge = Bridge("Tbr0", tool="ip")
    assert shells(bridge.create_commands()) == ["ip link add Tbr0 type bridge"]
    assert shells(bridge.delete_commands()) == ["ip link del Tbr0"]
    port = BridgePort("Tbr0", "Tveth1", tool="ip")
    assert shells(port.create_commands()) == ["ip link set Tveth1 master Tbr0"]
    assert shells(port.delete_commands()) == ["ip link set Tveth1 nomaster"]


def test_bridge_tool_is_validated() -> None:
    with pytest.raises(ValueError, match="tool"):
        Bridge("Tbr0", tool="bridge")  # type: ignore[arg-type]


def test_address_in_namespace() -> None:
    addr = Address("Tveth0", "172.18.0.2/24", netns="Tdocker0")
    assert addr.address == ipaddress.ip_interface("172.18.0.2/24")
    assert shells(addr.create_commands()) == ["ip netns exec Tdocker0 ip addr add 172.18.0.2/24 dev Tveth0"]
    assert shells(addr.delete_commands()) == ["ip netns exec Tdocker0 ip addr del 172.18.0.2/24 dev Tveth0"]
    assert addr.check_command().shell() == "ip netns exec Tdocker0 ip -json addr show"


def test_address_is_normalised() -> None:
    assert Address("Tveth0", "2001:DB8:0:0::1/64").address == ipaddress.ip_interface("2001:db8::1/64")
    assert Address("Tveth0", "2001:DB8:0:0::1/64").create_commands()[0].args[2] == "2001:db8::1/64"


def test_link_up() -> None:
    up = LinkUp("Tveth1")
    assert shells(up.create_commands()) == ["ip link set Tveth1 up"]
    assert shells(up.delete_commands()) == ["ip link set Tveth1 down"]


def test_default_route_is_the_iproute2_form() -> None:
    route = Route("default", "172.18.0.1", "Tveth0", netns="Tdocker0")
    assert shells(route.create_commands()) == ["ip netns exec Tdocker0 ip route add default via 172.18.0.1 dev Tveth0"]
    assert shells(route.delete_commands()) == ["ip netns exec Tdocker0 ip route del default via 172.18.0.1 dev Tveth0"]
    assert route.check_command().shell() == "ip netns exec Tdocker0 ip -json route show"


def test_network_route_without_gateway() -> None:
    route = Route("10.1.0.0/16", device="Tbr0")
    assert shells(route.create_commands()) == ["ip route add 10.1.0.0/16 dev Tbr0"]


def test_sysctl() -> None:
    setting = Sysctl("net.ipv4.ip_forward", 1)
    assert setting.value == "1"
    assert shells(setting.create_commands()) == ["sysctl net.ipv4.ip_forward=1"]
    assert shells(setting.restore_commands("0")) == ["sysctl net.ipv4.ip_forward=0"]
    assert setting.check_command().argv == ("sysctl", "-n", "net.ipv4.ip_forward")
    with pytest.raises(ValidationError, match="restore_commands"):
        setting.delete_commands()


STEP_21 = "iptables -t nat -A POSTROUTING -s 172.18.0.0/24 ! -o Tbr0 -j MASQUERADE"
STEP_22 = "iptables -t nat -A PREROUTING ! -i Tbr0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.18.0.2:80"


def test_masquerade_is_step_21_and_shares_its_body() -> None:
    rule = NatRule.masquerade("172.18.0.0/24", not_out="Tbr0")
    assert shells(rule.create_commands()) == [STEP_21]
    assert rule.check_command().shell() == STEP_21.replace(" -A ", " -C ")
    assert shells(rule.delete_commands()) == [STEP_21.replace(" -A ", " -D ")]
    assert rule.check_command().ok_codes == frozenset({0, 1})
    assert rule.create_commands()[0].argv[5:] == rule.body() == rule.check_command().argv[5:]


def test_dnat_is_step_22() -> None:
    rule = NatRule.publish(80, "172.18.0.2:80", not_in="Tbr0")
    assert shells(rule.create_commands()) == [STEP_22]
    assert shells(rule.delete_commands()) == [STEP_22.replace(" -A ", " -D ")]


def test_nat_rule_is_written_as_iptables_prints_it() -> None:
    rule = NatRule("POSTROUTING", "MASQUERADE", source="10.0.0.7", out_interface="eth0")
    assert rule.body() == ("-s", "10.0.0.7/32", "-o", "eth0", "-j", "MASQUERADE")
    udp = NatRule.publish(53, "10.0.0.2", protocol="udp")
    assert udp.body() == ("-p", "udp", "-m", "udp", "--dport", "53", "-j", "DNAT", "--to-destination", "10.0.0.2")


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: NatRule("FORWARD", "MASQUERADE"), "chain"),
        (lambda: NatRule("POSTROUTING", "DROP"), "jump"),
        (lambda: NatRule("PREROUTING", "DNAT", dport=80, to="1.2.3.4"), "NatRule.dport"),
        (lambda: NatRule("PREROUTING", "DNAT", protocol="tcp", dport=80), "NatRule.to"),
        (lambda: NatRule("POSTROUTING", "MASQUERADE", to="1.2.3.4"), "NatRule.to"),
        (lambda: NatRule("POSTROUTING", "MASQUERADE", out_negated=True), "NatRule.out_negated"),
        (lambda: NatRule.publish(80, "172.18.0.2:99999"), "NatRule.to"),
        (lambda: NatRule.publish(80, "example.com:80"), "NatRule.to"),
        (lambda: NatRule.publish(0, "172.18.0.2"), "NatRule.dport"),
        (lambda: NatRule.masquerade("172.18.0.0/24,10.0.0.0/8"), "NatRule.source"),
    ],
)
def test_bad_nat_rules_are_refused(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()  # type: ignore[operator]


def test_shell_text_quotes_what_a_shell_would_split() -> None:
    command = Command("ip", ("link", "set", "x y", "alias", "it's"))
    assert command.shell() == "ip link set 'x y' alias 'it'\"'\"'s'"


def test_a_veth_peer_can_be_made_inside_a_namespace() -> None:
    pair = VethPair("v0-web", "eth0", peer_netns="web")
    assert shells(pair.create_commands()) == ["ip link add v0-web type veth peer name eth0 netns web"]
    assert pair.key == "veth::v0-web:eth0@web"
    assert VethPair("eth0", "eth0", peer_netns="web").peer == "eth0"  # the same name, in two namespaces
    with pytest.raises(ValidationError, match="peer_netns"):
        VethPair("a0", "b0", netns="web", peer_netns="web")


def test_an_isolated_port() -> None:
    port = BridgePort("nw-q", "v0-q1", tool="ip", isolated=True)
    assert shells(port.create_commands()) == [
        "ip link set v0-q1 master nw-q",
        "ip link set dev v0-q1 type bridge_slave isolated on",
    ]


def test_a_filter_rule_and_chain() -> None:
    chain = Chain("NETWRAP-lab")
    assert shells(chain.create_commands()) == ["iptables -t filter -N NETWRAP-lab"]
    assert shells(chain.delete_commands()) == ["iptables -t filter -F NETWRAP-lab", "iptables -t filter -X NETWRAP-lab"]
    jump = Rule("FORWARD", "NETWRAP-lab", insert=True)
    assert shells(jump.create_commands()) == ["iptables -t filter -I FORWARD 1 -j NETWRAP-lab"]
    assert shells(jump.delete_commands()) == ["iptables -t filter -D FORWARD -j NETWRAP-lab"]
    accept = Rule("NETWRAP-lab", "ACCEPT", destination="10.0.0.2", out_interface="nw-a", protocol="tcp", dport=80,
                  ctstate="DNAT")  # fmt: skip
    assert accept.body() == ("-d", "10.0.0.2/32", "-o", "nw-a", "-p", "tcp", "-m", "tcp", "--dport", "80",
                             "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")  # fmt: skip
    local = NatRule("OUTPUT", "DNAT", protocol="tcp", dport=8080, to="10.0.0.2:80", dst_type="LOCAL")
    assert local.body()[4:8] == ("--dport", "8080", "-m", "addrtype")


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Rule("FORWARD", "MASQUERADE"), r"Rule\.jump"),
        (lambda: Rule("FORWARD", "ACCEPT", table="nat"), r"Rule\.chain"),
        (lambda: Rule("FORWARD", "PREROUTING"), r"Rule\.jump"),
        (lambda: Rule("FORWARD", "ACCEPT", ctstate="BOGUS"), r"Rule\.ctstate"),
        (lambda: Rule("FORWARD", "ACCEPT", dst_type="LOCALISH"), r"Rule\.dst_type"),
        (lambda: Rule("FORWARD", "ACCEPT", table="security"), r"Rule\.table"),
        (lambda: Rule("FORWARD", "ACCEPT", source="10.0.0.0/33"), r"Rule\.source"),
        (lambda: Rule("FORWARD", "ACCEPT", source_negated=True), r"Rule\.source_negated"),
        (lambda: Rule("no spaces", "ACCEPT"), r"Rule\.chain"),
        (lambda: NatRule("POSTROUTING", "MASQUERADE", table="filter"), r"NatRule\.table"),
        (lambda: Chain("FORWARD"), r"Chain\.name"),
    ],
)
def test_bad_rules_name_the_field(build: object, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        build()  # type: ignore[operator]


def test_a_bridge_in_a_link_group() -> None:
    bridge = Bridge("nw-net", tool="ip", group=4242)
    assert [c.argv for c in bridge.create_commands()] == [
        ("ip", "link", "add", "nw-net", "group", "4242", "type", "bridge")
    ]
    assert bridge == Bridge("nw-net", tool="ip")  # the group is how it is made, not what it is
    with pytest.raises(ValidationError, match=r"Bridge\.group=4242: brctl makes no link group"):
        Bridge("nw-net", tool="brctl", group=4242)
    for bad in (0, -1, 2**31, True, "7"):
        with pytest.raises(ValidationError, match=r"Bridge\.group"):
            Bridge("nw-net", tool="ip", group=bad)  # type: ignore[arg-type]
