"""What each machine of a cluster gets: pure, no process started."""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs
import pytest

from netwrap import ValidationError
from netwrap.host.runner import RecordingRunner
from netwrap.kinds import FdbEntry, OwnedChain, Route, Rule, VethPair, Vxlan
from netwrap.topology import multihost as mh

CONTAINERS = {"a": ("a1", "a2"), "b": ("b1",), "c": ("c1", "c2")}


def cluster(method: str, supernet: str = "10.250.0.0/16") -> mh.Cluster:
    machines = tuple(
        mh.Machine(name, f"192.0.2.{11 + i}", "eth0", RecordingRunner()) for i, name in enumerate(CONTAINERS)
    )
    return mh.Cluster("lab", "pods", supernet, method, machines, CONTAINERS, {"b1": ("8080:80",)})  # type: ignore[arg-type]


def test_host_gw_gives_each_machine_a_subnet_and_routes_to_the_others() -> None:
    lab = cluster("host-gw")
    a = mh.objects(lab, 0)
    routes = [o for o in a if isinstance(o, Route)]
    assert [(str(r.destination), str(r.gateway), r.device) for r in routes if r.netns is None] == [
        ("10.250.1.0/24", "192.0.2.12", "eth0"),
        ("10.250.2.0/24", "192.0.2.13", "eth0"),
    ]
    assert [str(mh.address_of(lab, c)) for c in ("a1", "a2", "b1", "c1", "c2")] == [
        "10.250.0.2", "10.250.0.3", "10.250.1.2", "10.250.2.2", "10.250.2.3",
    ]  # fmt: skip
    (post,) = [o for o in a if isinstance(o, OwnedChain) and o.name.endswith("-POST")]
    assert post.bodies() == (("-s", "10.250.0.0/24", "!", "-d", "10.250.0.0/16", "!", "-o", "nw-pods",
                              "-j", "MASQUERADE"),)  # fmt: skip
    forward, isolation = (o for o in a if isinstance(o, OwnedChain) and o.table == "filter" and o.name != "x")
    if forward.name.endswith("-ISO"):
        forward, isolation = isolation, forward
    assert forward.bodies()[-1] == ("-s", "10.250.0.0/16", "-o", "nw-pods", "-j", "ACCEPT")
    assert isolation.bodies()[0] == ("-s", "10.250.0.0/16", "-o", "nw-pods", "-j", "RETURN")  # not isolated
    jumps = [o for o in a if isinstance(o, Rule) and o.insert]
    assert [(j.table, j.chain, j.jump) for j in jumps] == [
        ("nat", "POSTROUTING", post.name),
        ("nat", "PREROUTING", forward.name),
        ("nat", "OUTPUT", forward.name),
        ("filter", "FORWARD", forward.name),
        ("filter", "FORWARD", isolation.name),
    ]


def test_vxlan_shares_a_subnet_floods_to_the_peers_and_leaves_room_for_encapsulation() -> None:
    lab = cluster("vxlan", "10.251.0.0/24")
    b = mh.objects(lab, 1)
    (vxlan,) = [o for o in b if isinstance(o, Vxlan)]
    assert vxlan.create_commands()[0].shell() == (
        "ip link add vx-pods mtu 1450 type vxlan id 4242 local 192.0.2.12 dstport 4789 nolearning dev eth0"
    )
    assert [str(f.dst) for f in b if isinstance(f, FdbEntry)] == ["192.0.2.11", "192.0.2.13"]
    assert FdbEntry("vx-pods", "192.0.2.11").create_commands()[0].shell() == (
        "bridge fdb append 00:00:00:00:00:00 dev vx-pods dst 192.0.2.11"
    )
    assert all(o.mtu == 1450 for o in b if isinstance(o, VethPair))
    addresses = [mh.address_of(lab, c) for names in CONTAINERS.values() for c in names]
    gateways = [ipaddress.IPv4Address(f"10.251.0.{1 + i}") for i in range(3)]
    assert len(set(addresses + gateways)) == len(addresses) + 3  # no address twice across machines


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": "bgp"}, r"Cluster\.method"),
        ({"supernet": "10.0.0.0/23"}, r"Cluster\.supernet"),
        ({"containers": {"z": ("z1",)}}, r"Cluster\.containers"),
    ],
)
def test_bad_clusters_are_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        attrs.evolve(cluster("host-gw"), **change)
