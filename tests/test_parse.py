"""Parsers on output captured from the real tools (iproute2 6.1, iptables 1.8.9, bridge-utils 1.7)."""

from __future__ import annotations

import contextlib
import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netwrap import parse
from netwrap.errors import ParseError
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
    assert links["Tbr0"] == parse.Link("Tbr0", kind="bridge", master=None, up=True)
    assert links["Tveth1"].kind == "veth"
    assert links["Tveth1"].master == "Tbr0"
    assert links["Tveth1"].up
    assert links["Tveth1"].peer is None  # the peer lives in Tdocker0: only its index is printed
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


@pytest.mark.parametrize("text", ['Option "-json" is unknown', "{", '{"a": 1}', "[1, 2]"])
def test_bad_json_is_a_parse_error(text: str) -> None:
    for parser in (parse.links, parse.addresses, parse.routes):
        with pytest.raises(ParseError):
            parser(text)


@given(st.text(max_size=200))
def test_parsers_only_raise_parse_error(text: str) -> None:
    for parser in (parse.links, parse.addresses, parse.routes, parse.netns_names):
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
