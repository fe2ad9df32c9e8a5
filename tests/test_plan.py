"""Planning is pure: captured output in, the commands still needed (or why none) out."""

from __future__ import annotations

import json

import attrs
import pytest

from netwrap import HostState, NatRule, Route, plan, tutorial
from netwrap.host import parse
from netwrap.host.observe import NetnsView
from tests.conftest import fixture_text
from tests.test_tutorial import DOCUMENT


def host(
    links: str = "tutorial_host_links.json",
    addrs: str = "tutorial_host_addr.json",
    nat: str = "tutorial_nat_S.txt",
    ip_forward: str = "1",
    netns: str = "tutorial_netns_list.txt",
    containers: bool = True,
) -> HostState:
    views: dict[str | None, NetnsView] = {
        None: NetnsView(tuple(parse.links(fixture_text(links))), tuple(parse.addresses(fixture_text(addrs))), ())
    }
    if containers:
        for ns, n in (("Tdocker0", 0), ("Tdocker1", 1)):
            views[ns] = NetnsView(
                tuple(parse.links(fixture_text(f"tutorial_docker{n}_links.json"))),
                tuple(parse.addresses(fixture_text(f"tutorial_docker{n}_addr.json"))),
                tuple(parse.routes(fixture_text(f"tutorial_docker{n}_routes.json"))),
            )
    listing = fixture_text(netns) if containers else ""
    return HostState(
        namespaces=tuple(parse.netns_names(listing)),
        netns_ids=parse.netns_ids(listing),
        views=views,
        rules={"nat": tuple(parse.iptables_rules(fixture_text(nat)))},
        sysctls={(None, "net.ipv4.ip_forward"): ip_forward},
    )


def test_a_host_with_everything_needs_nothing() -> None:
    result = plan(tutorial.objects(), host())
    assert result.is_noop
    assert result.commands == ()
    assert all(item.status == "present" for item in result.items)
    lines = result.describe()
    assert lines[0] == "ok       netns:Tdocker0: namespace Tdocker0 exists"
    assert "ok       veth::Tveth0:Tveth1: veth pair Tveth0/Tveth1 exists (Tveth1 on the host)" in lines


def test_an_empty_host_needs_the_whole_document() -> None:
    empty = host("empty_links.json", "empty_addr.json", "legacy_nat_S.txt", "0", containers=False)
    result = plan(tutorial.objects(), empty)
    assert [c.shell() for c in result.commands] == DOCUMENT
    assert result.describe()[0] == "create   netns:Tdocker0: namespace Tdocker0 does not exist"


def test_only_what_is_missing_is_planned() -> None:
    partial = host(ip_forward="0", nat="legacy_nat_S.txt")
    result = plan(tutorial.objects(), partial)
    assert [c.shell() for c in result.commands] == DOCUMENT[19:]


def test_a_host_end_whose_peer_is_another_device_is_a_conflict() -> None:
    links = json.loads(fixture_text("tutorial_host_links.json"))
    state = host()
    docker0 = json.loads(fixture_text("tutorial_docker0_links.json"))
    for link in docker0:
        if link["ifname"] == "Tveth0":
            link["ifname"] = "Tvethx"  # Tveth1's peer is now called Tvethx
    views = dict(state.views)
    views["Tdocker0"] = NetnsView(tuple(parse.links(json.dumps(docker0))), views["Tdocker0"].addresses, ())
    views[None] = NetnsView(tuple(parse.links(json.dumps(links))), views[None].addresses, ())
    result = plan(tutorial.objects(), attrs.evolve(state, views=views))
    reasons = [item.assessment.reason for item in result.conflicts]
    assert "Tveth1 exists on the host but its peer is Tvethx, not Tveth0" in reasons


@pytest.mark.parametrize(
    ("links", "addrs", "expected"),
    [
        ("conflict_links.json", "empty_addr.json", "Tbr0 exists on the host but is a veth, not a bridge"),
        ("conflict_links.json", "empty_addr.json", "Tveth1 is already a port of Tother, not of Tbr0"),
        ("conflict_links.json", "empty_addr.json", "Tveth0 exists on the host but its peer is Tvethz, not Tveth1"),
        ("empty_links.json", "conflict_addr.json", "172.18.0.1 is already on Tother on the host, not on Tbr0"),
    ],
)
def test_each_conflict_is_named(links: str, addrs: str, expected: str) -> None:
    state = host(links, addrs, "legacy_nat_S.txt", "0", containers=False)
    result = plan(tutorial.objects(), state)
    assert expected in [item.assessment.reason for item in result.conflicts]
    assert not result.is_noop


def test_port_80_published_elsewhere_is_a_conflict() -> None:
    theirs = "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.9.9.9:80\n"
    state = host()
    state = attrs.evolve(state, rules={"nat": tuple(parse.iptables_rules(theirs))})
    result = plan([NatRule.publish(80, "172.18.0.2:80", not_in="Tbr0")], state)
    (conflict,) = result.conflicts
    assert conflict.assessment.reason.startswith("tcp port 80 is already published to 10.9.9.9:80")


def test_a_different_default_route_is_a_conflict() -> None:
    result = plan([Route("default", "172.18.0.254", "Tveth0", netns="Tdocker0")], host())
    (conflict,) = result.conflicts
    assert "a route to default via 172.18.0.1 dev Tveth0 already exists in namespace Tdocker0" in (
        conflict.assessment.reason
    )
