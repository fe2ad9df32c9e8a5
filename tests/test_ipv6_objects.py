"""IPv6 in the objects (the IPv6 issue's first part): addresses usable at once, routes read where IPv6 keeps them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from netwrap import Address, HostState, Route, SubprocessRunner
from netwrap.host import parse
from netwrap.host.observe import NetnsView, observe, reads_for

FIXTURES = Path(__file__).parent / "fixtures"


def test_ipv6_routes_are_read_from_both_outputs_of_ip() -> None:
    """Captured with ``ip -6 [-json] route show``: what ``ip route show`` (IPv4's table) never lists."""
    want = [
        ("fd00:10::/64", None, "a0"),
        ("fd00:20::/64", "fd00:10::9", "a0"),
        ("fe80::/64", None, "b0"),
        ("fe80::/64", None, "a0"),
        ("default", "fd00:10::1", "a0"),
    ]

    def shown(entries: list[parse.RouteEntry]) -> list[tuple[str, str | None, str | None]]:
        return [(str(e.destination), str(e.gateway) if e.gateway else None, e.device) for e in entries]

    assert shown(parse.routes((FIXTURES / "ipv6_routes.json").read_text())) == want
    assert shown(parse.routes_text((FIXTURES / "ipv6_routes.txt").read_text())) == want


def test_an_ipv6_address_is_added_without_duplicate_address_detection() -> None:
    """Left tentative, it could not be used for a second or more after the container starts (nodad)."""
    assert Address("eth0", "fd00:10::2/64", netns="web").create_commands()[0].shell() == (
        "ip netns exec web ip addr add fd00:10::2/64 dev eth0 nodad"
    )
    assert Address("eth0", "10.1.0.2/24").create_commands()[0].shell() == "ip addr add 10.1.0.2/24 dev eth0"


@pytest.mark.parametrize(
    ("route", "family"),
    [
        (Route("default", "fd00:10::1", "eth0"), 6),
        (Route("fd00:20::/64", device="eth0"), 6),
        (Route("default", "10.1.0.1"), 4),
        (Route("default", device="eth0"), 4),
    ],
)
def test_a_routes_family_picks_what_is_read(route: Route, family: int) -> None:
    assert route.family == family
    assert route.needs().facts == (("routes6",) if family == 6 else ("routes",))


def _host(v4: str, v6: str) -> HostState:
    view = NetnsView(routes=tuple(parse.routes(v4)), routes6=tuple(parse.routes(v6)))
    return HostState(views={None: view})


def test_an_ipv6_default_route_is_told_apart_from_the_ipv4_one() -> None:
    v4 = (FIXTURES / "ipv6_host_routes_v4.json").read_text()
    v6 = (FIXTURES / "ipv6_routes.json").read_text()
    assert Route("default", "fd00:10::1", "a0").assess(_host(v4, v6)).status == "present"
    assert Route("default", "10.1.0.1", "a0").assess(_host(v4, v6)).status == "present"
    assert Route("default", "fd00:10::1", "a0").assess(_host(v4, "[]")).status == "missing"  # not IPv4's
    other = Route("default", "fd00:10::7", "a0").assess(_host(v4, v6))
    assert other.status == "conflict"
    assert "via fd00:10::1" in other.reason


def test_ipv6_routes_cost_one_more_read_only_where_asked(fp: FakeProcess, runner: SubprocessRunner) -> None:
    wanted = [Route("default", "fd00:10::1", "eth0", netns="web"), Address("eth0", "fd00:10::2/64", netns="web")]
    assert dict(reads_for(wanted).views) == {"web": ("addresses", "routes6")}
    fp.register(["nsenter", "--net=/run/netns/web", "--", "ip", "-d", "-json", "-batch", "-"], stdout="[]")
    fp.register(["nsenter", "--net=/run/netns/web", "--", "ip", "-6", "-json", "route", "show"],
                stdout=(FIXTURES / "ipv6_routes.json").read_text())  # fmt: skip
    state = observe(runner, wanted)
    assert [str(e.gateway) for e in state.view("web").routes6 or () if e.gateway] == ["fd00:10::9", "fd00:10::1"]
    assert state.view("web").routes is None
    assert ipaddress.ip_address("fd00:10::1") in {e.gateway for e in state.view("web").routes6 or ()}


def test_ipv6_addresses_are_read_from_the_one_line_text_form_too() -> None:
    # captured: `ip -o addr show dev d0` with an IPv4 and an IPv6 (nodad) address
    found = parse.addresses_text((FIXTURES / "ipv6_addr_o.txt").read_text())
    assert [(dev, str(addr)) for dev, addr in found] == [("d0", "10.9.0.2/24"), ("d0", "fd00:9::2/64")]
