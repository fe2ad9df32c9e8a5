"""Dual-stack networks on the real kernel, with real packets: a topology file with subnet6 gives every
container an IPv6 address beside its IPv4 one; IPv6 traffic goes container to container, out to a simulated
outside (masqueraded; the outside is 2001:db8::/32, the documentation prefix, in a namespace of the test's
own), in from it to a published port, from the host to a published port on its own IPv6 address; networks
stay isolated and icc = false holds in both families; the IPv4 side keeps working; a re-apply is a no-op and
destroy leaves the sandbox as it was (IPv6 addresses, routes and ip6tables in the snapshot)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap import Address, LinkNetns, LinkUp, MemoryStore, Namespace, Sandbox, VethPair, build, teardown
from netwrap import topology_apply as apply_
from netwrap.command import Command
from netwrap.engine.state import StateFile
from netwrap.host import snapshot
from netwrap.host.runner import Runner
from netwrap.topology import files as topofile
from netwrap.tutorial.verify import ping, tcp_probe

pytestmark = pytest.mark.integration

TOPOLOGY = """
name = "six"
style = "docker"

[networks.front]
subnet = "10.31.0.0/24"
subnet6 = "fd00:31::/64"

[networks.back]
subnet = "10.32.0.0/24"
subnet6 = "fd00:32::/64"
icc = false

[containers.web]
networks = ["front"]
ports = ["8080:80"]

[containers.api]
networks = [{ network = "front", address6 = "fd00:31::99" }]

[containers.db]
networks = ["back"]

[containers.cache]
networks = ["back"]
"""
OUT, UPLINK6_HOST, UPLINK6_OUT = "out6", "2001:db8::1", "2001:db8::2"
WEB6, API6, DB6, CACHE6 = "fd00:31::2", "fd00:31::99", "fd00:32::2", "fd00:32::3"


def _outside() -> list[object]:
    return [
        Namespace(OUT),
        VethPair("up6o", "up6h"),
        LinkNetns("up6o", OUT),
        Address("up6h", f"{UPLINK6_HOST}/64"),
        LinkUp("up6h"),
        Address("up6o", f"{UPLINK6_OUT}/64", netns=OUT),
        LinkUp("up6o", netns=OUT),
        LinkUp("lo", netns=OUT),
    ]


@pytest.fixture
def six(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[Sandbox, StateFile]]:
    """The sandbox with the simulated IPv6 outside and the dual-stack topology applied; destroyed after."""
    outside = MemoryStore()
    build(_outside(), sandbox.runner, outside)  # type: ignore[arg-type]
    before = snapshot.take(sandbox.runner)
    store = StateFile.in_dir(tmp_path, "six")
    apply_.apply(topofile.loads(TOPOLOGY, "six.toml"), sandbox.runner, store)
    yield sandbox, store
    apply_.destroy(sandbox.runner, store)
    after = snapshot.take(sandbox.runner)
    assert after == before, "\n".join(before.explain(after))
    teardown(sandbox.runner, outside)


def _addresses(sandbox: Sandbox, netns: str) -> str:
    return sandbox.runner.run(Command("ip", ("-6", "addr", "show", "dev", "eth0"), netns=netns, mutates=False)).stdout


def test_every_container_has_an_address_of_each_family_usable_at_once(six: tuple[Sandbox, StateFile]) -> None:
    sandbox, _ = six
    (line,) = [x for x in _addresses(sandbox, "web").splitlines() if f"{WEB6}/64" in x]
    assert "tentative" not in line  # nodad: usable the moment the container starts talking
    assert f"{API6}/64" in _addresses(sandbox, "api")  # the fixed one, as written
    routes = sandbox.runner.run(Command("ip", ("-6", "route", "show", "default"), netns="web", mutates=False))
    assert "via fd00:31::1 dev eth0" in routes.stdout


def link_local(runner: Runner, device: str) -> dict[str, object]:
    """The link-local address of ``device``, as ``ip -json`` shows it: waited for (the kernel makes it when the
    device first has a carrier, a moment after the command that gave it one), never waited for to settle."""
    for _ in range(40):
        shown = runner.run(Command("ip", ("-json", "-6", "addr", "show", "dev", device), mutates=False)).stdout
        found = [a for link in json.loads(shown) for a in link["addr_info"] if a.get("scope") == "link"]
        if found:
            return dict(found[0])
        time.sleep(0.05)
    raise AssertionError(f"{device} has no link-local address")


def test_a_bridges_link_local_address_is_usable_at_once(six: tuple[Sandbox, StateFile]) -> None:
    """The host solicits a container's MAC from its bridge's link-local address: while that address is tentative,
    nothing the host forwards or DNATs to a container gets through (a published port from the host, the outside)."""
    sandbox, _ = six
    for bridge in ("six-front", "six-back"):
        address = link_local(sandbox.runner, bridge)
        assert not address.get("tentative") and not address.get("dadfailed"), (bridge, address)


def test_ipv6_container_to_container_and_out_masqueraded(six: tuple[Sandbox, StateFile]) -> None:
    sandbox, _ = six
    assert ping(sandbox.runner, API6, "web")
    assert tcp_probe(sandbox.runner, "api", "web", API6, 7000)[0]
    # the outside has no route to fd00:31::/64: only a masqueraded connection can be answered
    assert tcp_probe(sandbox.runner, OUT, "web", UPLINK6_OUT, 7001)[0]
    assert ping(sandbox.runner, UPLINK6_OUT, "db")


def test_an_ipv6_published_port_answers_from_outside_and_from_the_host(six: tuple[Sandbox, StateFile]) -> None:
    sandbox, _ = six
    assert tcp_probe(sandbox.runner, "web", OUT, UPLINK6_HOST, 8080, listen_port=80)[0]
    assert tcp_probe(sandbox.runner, "web", None, UPLINK6_HOST, 8080, listen_port=80)[0]
    assert tcp_probe(sandbox.runner, "web", "api", UPLINK6_HOST, 8080, listen_port=80)[0]  # hairpin, another one
    # IPv6 has no route_localnet: [::1] cannot be sent on to a container (the README says so)
    assert not tcp_probe(sandbox.runner, "web", None, "::1", 8080, listen_port=80, timeout=2)[0]
    # the IPv4 side of the same port keeps working, 127.0.0.1 included
    assert tcp_probe(sandbox.runner, "web", None, "127.0.0.1", 8080, listen_port=80)[0]


def test_isolation_and_icc_hold_in_both_families(six: tuple[Sandbox, StateFile]) -> None:
    sandbox, _ = six
    assert not ping(sandbox.runner, DB6, "web", count=1)  # front to back
    assert not ping(sandbox.runner, WEB6, "db", count=1)  # back to front
    assert not ping(sandbox.runner, CACHE6, "db", count=1)  # icc = false on back
    assert not ping(sandbox.runner, "10.32.0.3", "db", count=1)  # and in IPv4
    assert not ping(sandbox.runner, "10.32.0.2", "web", count=1)
    assert ping(sandbox.runner, "10.31.0.3", "web")  # IPv4 within front still goes


def test_a_reapply_is_a_no_op(six: tuple[Sandbox, StateFile]) -> None:
    sandbox, store = six
    found = apply_.plan_topology(topofile.loads(TOPOLOGY, "six.toml"), sandbox.runner, store)
    assert found.is_noop, found.plan.describe()


def test_status_shows_both_families_and_every_container_up(six: tuple[Sandbox, StateFile]) -> None:
    sandbox, store = six
    rows = {row.name: row for row in apply_.status(topofile.loads(TOPOLOGY, "six.toml"), sandbox.runner, store)}
    assert {name: row.state for name, row in rows.items()} == dict.fromkeys(("web", "api", "db", "cache"), "up")
    assert rows["api"].to_json()["networks"][0]["address6"] == f"{API6}/64"
    sandbox.runner.run(Command("ip", ("-6", "addr", "flush", "dev", "eth0", "scope", "global"), netns="web"))
    again = {row.name: row for row in apply_.status(topofile.loads(TOPOLOGY, "six.toml"), sandbox.runner, store)}
    assert again["web"].state == "degraded" and any(WEB6 in line for line in again["web"].missing)
    apply_.apply(topofile.loads(TOPOLOGY, "six.toml"), sandbox.runner, store)  # and a re-apply mends it
    assert ping(sandbox.runner, WEB6, "api")


ONLY6 = """
name = "only6"
style = "docker"

[networks.v6]
subnet6 = "fd00:33::/64"

[containers.a]
networks = ["v6"]
ports = ["8090:80"]

[containers.b]
networks = ["v6"]
"""


def test_an_ipv6_only_network(sandbox: Sandbox, tmp_path: Path) -> None:
    outside = MemoryStore()
    build(_outside(), sandbox.runner, outside)  # type: ignore[arg-type]
    before = snapshot.take(sandbox.runner)
    store = StateFile.in_dir(tmp_path, "only6")
    topo = topofile.loads(ONLY6, "only6.toml")
    apply_.apply(topo, sandbox.runner, store)
    shown = sandbox.runner.run(Command("ip", ("addr", "show", "dev", "eth0"), netns="a", mutates=False)).stdout
    assert "inet6 fd00:33::2/64" in shown and "inet " not in shown  # no IPv4 address at all
    assert ping(sandbox.runner, "fd00:33::3", "a")
    assert tcp_probe(sandbox.runner, OUT, "b", UPLINK6_OUT, 7002)[0]  # out, masqueraded
    assert tcp_probe(sandbox.runner, "a", OUT, UPLINK6_HOST, 8090, listen_port=80)[0]  # in, published
    assert tcp_probe(sandbox.runner, "a", None, UPLINK6_HOST, 8090, listen_port=80)[0]  # from the host
    assert snapshot.take(sandbox.runner).nat_table == before.nat_table  # nothing of IPv4's was made
    assert apply_.plan_topology(topo, sandbox.runner, store).is_noop
    apply_.destroy(sandbox.runner, store)
    after = snapshot.take(sandbox.runner)
    assert after == before, "\n".join(before.explain(after))
    teardown(sandbox.runner, outside)


def test_a_host_whose_new_devices_start_without_ipv6(sandbox: Sandbox, tmp_path: Path) -> None:
    """default.disable_ipv6 = 1 (some hosts turn IPv6 off): the bridge gets it back on, the rest as usual."""
    off = ("-w", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1")
    sandbox.runner.run(Command("sysctl", off))
    before = snapshot.take(sandbox.runner)
    store = StateFile.in_dir(tmp_path, "only6")
    topo = topofile.loads(ONLY6, "only6.toml")
    apply_.apply(topo, sandbox.runner, store)
    assert ping(sandbox.runner, "fd00:33::1", "a")  # the bridge's address answers: IPv6 is on there
    assert ping(sandbox.runner, "fd00:33::3", "a")
    assert apply_.plan_topology(topo, sandbox.runner, store).is_noop
    apply_.destroy(sandbox.runner, store)
    after = snapshot.take(sandbox.runner)
    assert after == before, "\n".join(before.explain(after))
    assert after.sysctl("net.ipv6.conf.default.disable_ipv6") == "1"  # the host's own choice, untouched


def _fresh(text: str, tmp_path: Path, name: str) -> snapshot.Snapshot:
    with Sandbox() as fresh:
        apply_.apply(topofile.loads(text, "six.toml"), fresh.runner, StateFile.in_dir(tmp_path / name, "six"))
        return snapshot.take(fresh.runner)


def test_adding_and_removing_ipv6_by_an_edit_ends_where_a_fresh_apply_does(sandbox: Sandbox, tmp_path: Path) -> None:
    v4_only = "\n".join(line for line in TOPOLOGY.splitlines() if "subnet6" not in line).replace(
        ', address6 = "fd00:31::99"', ""
    )
    store = StateFile.in_dir(tmp_path / "edited", "six")
    apply_.apply(topofile.loads(v4_only, "six.toml"), sandbox.runner, store)
    apply_.apply(topofile.loads(TOPOLOGY, "six.toml"), sandbox.runner, store)  # IPv6 added by an edit
    edited = snapshot.take(sandbox.runner)
    fresh = _fresh(TOPOLOGY, tmp_path, "fresh6")
    assert edited == fresh, "\n".join(fresh.explain(edited))
    assert ping(sandbox.runner, API6, "web")
    apply_.apply(topofile.loads(v4_only, "six.toml"), sandbox.runner, store)  # and taken away again
    back = snapshot.take(sandbox.runner)
    fresh4 = _fresh(v4_only, tmp_path, "fresh4")
    assert back == fresh4, "\n".join(fresh4.explain(back))


OTHER = """
name = "other6"
style = "docker"

[networks.net]
subnet = "10.34.0.0/24"
subnet6 = "fd00:34::/64"

[containers.x]
networks = ["net"]
"""


def test_two_dual_stack_topologies_are_isolated_from_each_other(six: tuple[Sandbox, StateFile], tmp_path: Path) -> None:
    sandbox, _ = six
    store = StateFile.in_dir(tmp_path / "other", "other6")
    apply_.apply(topofile.loads(OTHER, "other6.toml"), sandbox.runner, store)
    try:
        assert not ping(sandbox.runner, "fd00:34::2", "web", count=1)
        assert not ping(sandbox.runner, WEB6, "x", count=1)
        assert ping(sandbox.runner, UPLINK6_OUT, "x")  # each still reaches the outside
        assert ping(sandbox.runner, UPLINK6_OUT, "web")
        # a published port of one answers the other's containers through the host's address, as with Docker
        assert tcp_probe(sandbox.runner, "web", "x", UPLINK6_HOST, 8080, listen_port=80)[0]
    finally:
        apply_.destroy(sandbox.runner, store)
