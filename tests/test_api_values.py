"""Every field of every kind refuses a bad value with a ValidationError naming ``Class.field`` (Hardening II, 11)."""

from __future__ import annotations

import typing
from typing import Any

import attrs
import pytest

from netwrap import HostState
from netwrap.errors import ValidationError
from netwrap.host.observe import NetnsView
from netwrap.host.parse import Link
from netwrap.kinds import KINDS, Bridge, FdbEntry, VethPair, Vxlan

# the least each kind needs to be made
GOOD: dict[str, dict[str, Any]] = {
    "Namespace": {"name": "ns1"},
    "AttachedNamespace": {"name": "ns1", "source": "/proc/1/ns/net"},
    "VethPair": {"name": "v0", "peer": "v1"},
    "LinkNetns": {"device": "v0", "netns": "ns1"},
    "Bridge": {"name": "br0"},
    "BridgePort": {"bridge": "br0", "port": "v1"},
    "Address": {"device": "v0", "address": "10.0.0.1/24"},
    "LinkUp": {"device": "v0"},
    "Route": {"destination": "default", "gateway": "10.0.0.1"},
    "Sysctl": {"name": "net.ipv4.ip_forward", "value": "1"},
    "Rule": {"chain": "FORWARD", "jump": "ACCEPT"},
    "NatRule": {"chain": "POSTROUTING", "jump": "MASQUERADE"},
    "Chain": {"name": "NETWRAP-x"},
    "OwnedChain": {"name": "NETWRAP-x", "table": "nat"},
    "Vxlan": {"name": "vx0", "vni": 5, "local": "10.0.0.1"},
    "FdbEntry": {"device": "vx0", "dst": "10.0.0.2"},
}
BAD = (object(), 1.5, -1, True, b"x", ["x"], {"x": 1}, "x\ny", "")
CASES = [(kind, field.name) for kind in KINDS for field in attrs.fields(kind)]  # type: ignore[arg-type]


def test_every_kind_is_covered() -> None:
    assert {kind.__name__ for kind in KINDS} == set(GOOD)


@pytest.mark.parametrize(("kind", "field"), CASES, ids=[f"{k.__name__}.{f}" for k, f in CASES])
def test_a_bad_value_is_refused_naming_the_field(kind: type, field: str) -> None:
    hints = typing.get_type_hints(kind)
    for bad in BAD:
        try:
            made = kind(**{**GOOD[kind.__name__], field: bad})
        except ValidationError as exc:
            assert exc.field.split("[")[0].endswith(field) or exc.field.startswith(kind.__name__), exc
            continue
        # accepted: it must be a value of the field's type (a flag is a bool, a number an int, ...)
        kept = getattr(made, field)
        assert kept is not BAD[0] and not isinstance(kept, bytes | list | dict), (field, bad)
        if hints[field] is bool:
            assert kept is bad is True, f"{kind.__name__}.{field} accepted {bad!r}"
        if hints[field] in (int, int | None):
            assert isinstance(kept, int) and not isinstance(kept, bool), (field, bad)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Vxlan("vx0", 5, "nope"), "Vxlan.local"),  # it said Route.gateway
        (lambda: FdbEntry("vx0", "nope"), "FdbEntry.dst"),
        (lambda: VethPair("v0", "v1", mtu="abc"), "VethPair.mtu"),  # type: ignore[arg-type]  # it rendered `mtu abc`
        (lambda: VethPair("v0", "v1", mtu=40), "VethPair.mtu"),
        (lambda: Vxlan("vx0", 5, "10.0.0.1", mtu="1450"), "Vxlan.mtu"),  # type: ignore[arg-type]
        (lambda: Bridge("br0", tool="ovs"), "Bridge.tool"),  # type: ignore[arg-type]  # a plain ValueError before
    ],
)
def test_the_values_found_wanting(make: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make()
    assert caught.value.field == field


def _host(mtu: int) -> HostState:
    host = (Link("v0-web", kind="veth", mtu=mtu, peer_netns="web"),)
    inside = (Link("eth0", kind="veth", mtu=mtu),)
    views = {None: NetnsView(host, (), ()), "web": NetnsView(inside, (), ())}
    return HostState(namespaces=("web",), netns_ids={}, views=views, rules={}, sysctls={})


def test_an_mtu_change_converges_in_place() -> None:
    """The MTU was not compared, so a changed underlay MTU never reached the veths; now both ends are set."""
    pair = VethPair("v0-web", "eth0", peer_netns="web", mtu=1450)
    assert pair.assess(_host(1450)).status == "present"
    verdict = pair.assess(_host(1500))
    assert verdict.status == "missing"
    assert "MTU 1450" in verdict.reason
    assert sorted(c.shell() for c in pair.plan_commands(_host(1500))) == [
        "ip link set dev v0-web mtu 1450",
        "ip netns exec web ip link set dev eth0 mtu 1450",
    ]
    # a removal goes by the pair, whatever its MTU
    assert pair.exists(_host(1500))
    assert [c.shell() for c in pair.removal(_host(1500), None)[0]] == ["ip link del v0-web"]
    # no MTU asked for: any will do
    assert VethPair("v0-web", "eth0", peer_netns="web").assess(_host(1500)).status == "present"


def test_a_vxlan_mtu_change_converges_in_place() -> None:
    state = HostState(
        namespaces=(), netns_ids={}, views={None: NetnsView((Link("vx0", kind="vxlan", mtu=1500),), (), ())},
        rules={}, sysctls={},
    )  # fmt: skip
    vx = Vxlan("vx0", 5, "10.0.0.1", mtu=1450)
    assert vx.assess(state).status == "missing"
    assert [c.shell() for c in vx.plan_commands(state)] == ["ip link set dev vx0 mtu 1450"]
    assert vx.exists(state)


def test_a_peers_mac_follows_its_address_in_place() -> None:
    """The MAC made of a container's address was set only when the pair was made: an address that changed kept
    the old MAC, the very one its neighbours then found at the wrong container."""
    pair = VethPair("v0-web", "eth0", peer_netns="web", peer_mac="02:6e:0a:00:00:03")
    host = (Link("v0-web", kind="veth", peer_netns="web"),)
    state = HostState(
        namespaces=("web",),
        views={None: NetnsView(host, (), ()), "web": NetnsView((Link("eth0", kind="veth", mac="02:6e:0a:00:00:02"),))},
    )
    verdict = pair.assess(state)
    assert verdict.status == "missing"
    assert "02:6e:0a:00:00:02" in verdict.reason
    assert [c.shell() for c in pair.plan_commands(state)] == [
        "ip netns exec web ip link set dev eth0 address 02:6e:0a:00:00:03"
    ]
    assert pair.exists(state)  # a removal goes by the pair, whatever its MAC
    # a port of a bridge: the bridge forgets what the port taught it, or it sends the old MAC there still
    bridged = HostState(
        namespaces=("web",),
        views={
            None: NetnsView((Link("v0-web", kind="veth", peer_netns="web", master="br0"),), (), ()),
            "web": NetnsView((Link("eth0", kind="veth", mac="02:6e:0a:00:00:02"),)),
        },
    )
    assert [c.shell() for c in pair.plan_commands(bridged)][1] == "ip link set dev v0-web type bridge_slave fdb_flush"


def test_a_bridges_mac_is_set_when_made_and_in_place() -> None:
    """Its own MAC, or the bridge takes its lowest port's and the gateway's MAC moves as containers come and go."""
    by_ip = Bridge("br0", tool="ip", group=7, mac="02:6e:0a:00:00:01")
    assert by_ip.create_commands()[0].shell() == "ip link add br0 group 7 address 02:6e:0a:00:00:01 type bridge"
    by_brctl = Bridge("br0", mac="02:6e:0a:00:00:01")
    assert [c.shell() for c in by_brctl.create_commands()] == [
        "brctl addbr br0",
        "ip link set dev br0 address 02:6e:0a:00:00:01",
    ]
    taken = HostState(namespaces=(), views={None: NetnsView((Link("br0", kind="bridge", mac="02:6e:0a:00:00:05"),))})
    verdict = by_ip.assess(taken)
    assert verdict.status == "missing" and "02:6e:0a:00:00:05" in verdict.reason
    assert [c.shell() for c in by_ip.plan_commands(taken)] == ["ip link set dev br0 address 02:6e:0a:00:00:01"]
    kept = HostState(namespaces=(), views={None: NetnsView((Link("br0", kind="bridge", mac="02:6e:0a:00:00:01"),))})
    assert by_ip.assess(kept).status == "present"
    assert Bridge("br0", tool="ip").assess(taken).status == "present"  # no MAC asked for: any will do
    with pytest.raises(ValidationError, match=r"Bridge\.mac"):
        Bridge("br0", mac="not a mac")


def test_the_host_ends_mac_is_set_in_place_too() -> None:
    pair = VethPair("v0-web", "eth0", peer_netns="web", mac="02:6f:0a:00:00:03")
    assert "address 02:6f:0a:00:00:03 type veth" in pair.create_commands()[0].shell()
    state = HostState(
        namespaces=("web",),
        views={
            None: NetnsView((Link("v0-web", kind="veth", peer_netns="web", mac="aa:bb:cc:dd:ee:ff"),), (), ()),
            "web": NetnsView((Link("eth0", kind="veth"),)),
        },
    )
    verdict = pair.assess(state)
    assert verdict.status == "missing" and "aa:bb:cc:dd:ee:ff" in verdict.reason
    assert [c.shell() for c in pair.plan_commands(state)] == ["ip link set dev v0-web address 02:6f:0a:00:00:03"]
