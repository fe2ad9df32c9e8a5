"""Parsers on output captured from the real tools (iproute2 6.1, iptables 1.8.9, bridge-utils 1.7)."""

from __future__ import annotations

import contextlib
import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netwrap.errors import ParseError
from netwrap.host import parse
from tests.conftest import fixture_text


def test_netns_list_both_forms() -> None:
    assert parse.netns_names(fixture_text("tutorial_netns_list.txt")) == ["Tdocker1", "Tdocker0"]
    assert parse.netns_names("Tdocker0\nTdocker1 (id: 7)\n") == ["Tdocker0", "Tdocker1"]
    assert parse.netns_names(fixture_text("empty_netns_list.txt")) == []


def test_netns_list_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ParseError, match="cannot read"):
        parse.netns_names("Tdocker0 something else\n")


def test_links_of_the_tutorial_host() -> None:
    links = {link.name: link for link in parse.links(fixture_text("tutorial_host_links.json"))}
    assert set(links) == {"lo", "Tveth1", "Tveth3", "Tbr0"}
    assert links["Tbr0"] == parse.Link(
        "Tbr0", kind="bridge", master=None, up=True, index=6, mtu=1500, mac="22:16:68:85:68:7e"
    )
    assert links["lo"].mtu == 65536
    assert links["Tveth1"].kind == "veth"
    assert links["Tveth1"].master == "Tbr0"
    assert links["Tveth1"].up
    assert links["Tveth1"].peer is None  # the peer lives in Tdocker0: only its index is printed
    assert (links["Tveth1"].peer_index, links["Tveth1"].peer_netnsid) == (3, 0)
    assert links["lo"].kind is None


def test_links_inside_a_container() -> None:
    links = {link.name: link for link in parse.links(fixture_text("tutorial_docker0_links.json"))}
    assert links["Tveth0"].kind == "veth" and links["Tveth0"].up


def test_veth_peer_names_in_one_namespace() -> None:
    links = {link.name: link for link in parse.links(fixture_text("conflict_links.json"))}
    assert links["Tveth0"].peer == "Tvethz"
    assert links["Tveth1"].master == "Tother"
    assert links["Tbr0"].kind == "veth"


def test_addresses() -> None:
    host = parse.addresses(fixture_text("tutorial_host_addr.json"))
    assert ("Tbr0", ipaddress.ip_interface("172.18.0.1/24")) in host
    inside = parse.addresses(fixture_text("tutorial_docker0_addr.json"))
    assert ("Tveth0", ipaddress.ip_interface("172.18.0.2/24")) in inside
    assert parse.addresses(fixture_text("empty_addr.json")) == []


def test_routes() -> None:
    found = parse.routes(fixture_text("tutorial_docker0_routes.json"))
    assert found == [
        parse.RouteEntry("default", ipaddress.ip_address("172.18.0.1"), "Tveth0"),
        parse.RouteEntry(ipaddress.ip_network("172.18.0.0/24"), None, "Tveth0"),
    ]
    assert parse.routes(fixture_text("empty_routes.json")) == []


def test_sysctl() -> None:
    assert parse.sysctl_value(fixture_text("ip_forward_0.txt")) == "0"
    assert parse.sysctl_value(fixture_text("ip_forward_1.txt")) == "1"
    assert parse.sysctl_value("4096\t87380\t6291456\n") == "4096 87380 6291456"
    with pytest.raises(ParseError):
        parse.sysctl_value("\n")


def test_netns_ids() -> None:
    assert parse.netns_ids(fixture_text("tutorial_netns_list.txt")) == {0: "Tdocker0", 1: "Tdocker1"}
    assert parse.netns_ids("Tdocker0\n") == {}


def test_text_links_match_the_json_ones() -> None:
    """`ip -o -d link show`, the fallback for an ip without -json, reads to the same links."""
    for name in ("tutorial_host_links", "tutorial_docker0_links"):
        from_json = parse.links(fixture_text(f"{name}.json"))
        from_text = parse.links_text(fixture_text(f"{name}_o.txt"))
        assert [(x.name, x.kind, x.master, x.up, x.index, x.peer_index) for x in from_text] == [
            (x.name, x.kind, x.master, x.up, x.index, x.peer_index) for x in from_json
        ]
    host = {x.name: x for x in parse.links_text(fixture_text("tutorial_host_links_o.txt"))}
    assert host["Tveth1"].peer_netns == "Tdocker0"  # the text form names the peer's namespace
    inside = {x.name: x for x in parse.links_text(fixture_text("tutorial_docker0_links_o.txt"))}
    assert inside["Tveth0"].peer_netnsid == 0


def test_text_links_with_a_peer_in_the_same_namespace() -> None:
    line = (
        "5: Tveth0@Tveth1: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN mode DEFAULT group default "
        "qlen 1000\\    link/ether 6a:1f:2e:3d:4c:5b brd ff:ff:ff:ff:ff:ff promiscuity 0 \\    veth addrgenmode eui64"
    )
    (link,) = parse.links_text(line)
    assert (link.name, link.peer, link.kind, link.up) == ("Tveth0", "Tveth1", "veth", False)


def test_text_addresses_and_routes_match_the_json_ones() -> None:
    assert parse.addresses_text(fixture_text("tutorial_docker0_addr_o.txt")) == parse.addresses(
        fixture_text("tutorial_docker0_addr.json")
    )
    assert parse.addresses_text(fixture_text("tutorial_host_addr_o.txt")) == parse.addresses(
        fixture_text("tutorial_host_addr.json")
    )
    assert parse.routes_text(fixture_text("tutorial_docker0_routes.txt")) == parse.routes(
        fixture_text("tutorial_docker0_routes.json")
    )


def test_text_routes_of_other_kinds() -> None:
    found = parse.routes_text("unreachable 10.9.0.0/16 proto static\n192.0.2.7 via 10.0.0.1 dev eth0\n")
    assert found == [
        parse.RouteEntry(ipaddress.ip_network("10.9.0.0/16"), None, None),
        parse.RouteEntry(ipaddress.ip_network("192.0.2.7/32"), ipaddress.ip_address("10.0.0.1"), "eth0"),
    ]


def test_iptables_rules_from_S_and_save_are_the_same() -> None:
    from_s = parse.iptables_rules(fixture_text("foreign_nat_S.txt"))
    assert from_s == parse.iptables_rules(fixture_text("foreign_nat_save.txt"))
    assert [r.chain for r in from_s] == ["PREROUTING", "PREROUTING", "POSTROUTING", "POSTROUTING"]
    dnat = from_s[1]
    # iptables normalises what the user typed: `--dport http` -> 80, `-m tcp` added, /32 added
    assert dnat.words == ("-d", "10.0.0.1/32", "-p", "tcp", "-m", "tcp", "--dport", "80",
                          "-j", "DNAT", "--to-destination", "10.1.1.1:8080")  # fmt: skip
    assert dnat.option("--to-destination") == "10.1.1.1:8080"
    theirs = from_s[3]
    assert theirs.negated("-s") and not theirs.negated("-o")
    assert theirs.option("--comment") == "it\\'s mine"
    assert parse.iptables_rules(fixture_text("legacy_nat_S.txt")) == []


def test_iptables_rule_that_cannot_be_split() -> None:
    with pytest.raises(ParseError, match="cannot read the rule"):
        parse.iptables_rules('-A POSTROUTING -m comment --comment "unterminated -j MASQUERADE\n')


def test_brctl_show() -> None:
    assert parse.brctl_ports(fixture_text("tutorial_brctl_show.txt")) == {"Tbr0": ["Tveth1", "Tveth3"]}
    header = "bridge name\tbridge id\t\tSTP enabled\tinterfaces\n"
    assert parse.brctl_ports(header + "br9\t\t8000.000000000000\tno\t\t\n") == {"br9": []}


@pytest.mark.parametrize("text", ['Option "-json" is unknown', "{", '{"a": 1}', "[1, 2]"])
def test_bad_json_is_a_parse_error(text: str) -> None:
    for parser in (parse.links, parse.addresses, parse.routes):
        with pytest.raises(ParseError):
            parser(text)


@given(st.text(max_size=200))
def test_parsers_only_raise_parse_error(text: str) -> None:
    for parser in (
        parse.links, parse.addresses, parse.routes, parse.netns_names, parse.netns_ids,
        parse.links_text, parse.addresses_text, parse.routes_text, parse.iptables_rules, parse.brctl_ports,
    ):  # fmt: skip
        with contextlib.suppress(ParseError):
            parser(text)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"ifname": st.text(max_size=5)},
            optional={
                "addr_info": st.lists(
                    st.fixed_dictionaries({}, optional={"local": st.text(max_size=5), "prefixlen": st.integers()})
                ),
                "dst": st.text(max_size=5),
                "gateway": st.text(max_size=5),
                "flags": st.lists(st.text(max_size=4)),
            },
        ),
        max_size=4,
    )
)
def test_parsers_survive_odd_json(items: list[dict[str, object]]) -> None:
    text = json.dumps(items)
    for parser in (parse.links, parse.addresses, parse.routes):
        with contextlib.suppress(ParseError):
            parser(text)


def test_several_sysctls() -> None:
    """``sysctl -e A B ...``: one ``key = value`` line per setting that exists."""
    assert parse.sysctl_values(fixture_text("sysctl_several.txt")) == {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.Tbr0.route_localnet": "0",
        "net.ipv4.tcp_rmem": "4096 131072 33554432",
    }
    assert parse.sysctl_values("net/ipv4/ip_forward = 0\n") == {"net.ipv4.ip_forward": "0"}
    assert parse.sysctl_values("") == {}
    with pytest.raises(ParseError, match="not 'key = value'"):
        parse.sysctl_values("sysctl: permission denied on key 'net.ipv4.ip_forward'\n")


@given(st.text(max_size=200))
def test_sysctl_values_never_crash(text: str) -> None:
    with contextlib.suppress(ParseError):
        for key, value in parse.sysctl_values(text).items():
            assert key and "/" not in key
            assert value == " ".join(value.split())


def test_ip_json_already_decoded_reads_the_same() -> None:
    """A batch's output is decoded once, then each part handed over as data."""
    for parser, name in ((parse.links, "tutorial_host_links.json"), (parse.addresses, "tutorial_host_addr.json"),
                         (parse.routes, "tutorial_docker0_routes.json")):  # fmt: skip
        text = fixture_text(name)
        assert parser(json.loads(text)) == parser(text)
    with pytest.raises(ParseError, match="a JSON list of objects"):
        parse.links([1, 2])


def test_iptables_save_reads_as_the_listing_of_each_table() -> None:
    """Captured at the same moment: ``iptables-save`` and ``iptables -t TABLE -S`` agree, table by table."""
    tables = parse.iptables_save(fixture_text("foreign_save_all.txt"))
    assert sorted(tables) == ["filter", "nat"]
    for table in ("nat", "filter"):
        listing = fixture_text(f"foreign_{table}_S.txt")
        assert tables[table] == (parse.iptables_rules(listing), parse.iptables_chains(listing))
    assert tables["filter"][1] == ["MINE"]
    with pytest.raises(ParseError, match="no COMMIT"):
        parse.iptables_save("*nat\n-A POSTROUTING -j MASQUERADE\n")


@given(st.text(max_size=300))
def test_iptables_save_never_crashes(text: str) -> None:
    with contextlib.suppress(ParseError):
        for rules, chains in parse.iptables_save(text).values():
            assert all(rule.chain for rule in rules)
            assert all(chains)
