"""The CNI plugin without a kernel: its reading of env and config, its leases, its answers (issue 13, part 2)."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netwrap.cni import main as cni_main
from netwrap.cni import plugin, spec
from netwrap.cni.ipam import Lease, Leases, fitted, read_leases
from netwrap.cni.spec import CniError, PortMapping
from netwrap.errors import NetwrapError
from netwrap.host.nsfile import netns_problem

SUBNET = ipaddress.IPv4Network("10.89.0.0/24")
GATEWAY = ipaddress.IPv4Address("10.89.0.1")
CONF: dict[str, Any] = {"cniVersion": "1.0.0", "name": "t1", "type": "netwrap", "subnet": "10.89.0.0/24"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/a", "CNI_IFNAME": "eth0"}


def call(env: dict[str, str], conf: object) -> tuple[int, dict[str, Any] | None]:
    out = io.StringIO()
    text = conf if isinstance(conf, str) else json.dumps(conf)
    code = cni_main.main(env, io.StringIO(text), out)
    return code, json.loads(out.getvalue()) if out.getvalue() else None


def test_version_is_answered_whatever_the_config() -> None:
    assert call({"CNI_COMMAND": "VERSION"}, "") == (0, {"cniVersion": "1.1.0", "supportedVersions": ["1.0.0", "1.1.0"]})
    code, out = call({"CNI_COMMAND": "VERSION"}, {"cniVersion": "1.0.0"})
    assert (code, out and out["cniVersion"]) == (0, "1.0.0")


@pytest.mark.parametrize(
    ("env", "conf", "code", "words"),
    [
        ({}, CONF, spec.INVALID_ENVIRONMENT, "CNI_COMMAND"),
        ({**ENV, "CNI_COMMAND": "FROB"}, CONF, spec.INVALID_ENVIRONMENT, "CNI_COMMAND"),
        ({**ENV, "CNI_IFNAME": "a/b"}, CONF, spec.INVALID_ENVIRONMENT, "CNI_IFNAME"),
        ({**ENV, "CNI_IFNAME": "x" * 16}, CONF, spec.INVALID_ENVIRONMENT, "CNI_IFNAME"),
        ({**ENV, "CNI_CONTAINERID": ""}, CONF, spec.INVALID_ENVIRONMENT, "CNI_CONTAINERID"),
        ({**ENV, "CNI_NETNS": "relative"}, CONF, spec.INVALID_ENVIRONMENT, "CNI_NETNS"),
        (ENV, "{not json", spec.DECODE_FAILURE, "not JSON"),
        (ENV, "[1]", spec.DECODE_FAILURE, "not a JSON object"),
        (ENV, {**CONF, "cniVersion": "0.3.1"}, spec.INCOMPATIBLE_VERSION, "0.3.1"),
        (ENV, {**CONF, "type": "bridge"}, spec.INVALID_CONFIG, "type"),
        (ENV, {**CONF, "name": "a b"}, spec.INVALID_CONFIG, "name"),
        (ENV, {**CONF, "subnet": "10.89.0.1/24"}, spec.INVALID_CONFIG, "subnet"),
        (ENV, {**CONF, "subnet": "10.89.0.0/31"}, spec.INVALID_CONFIG, "too small"),
        (ENV, {**CONF, "gateway": "10.90.0.1"}, spec.INVALID_CONFIG, "gateway"),
        (ENV, {**CONF, "ipMasq": "yes"}, spec.INVALID_CONFIG, "ipMasq"),
        (ENV, {**CONF, "mtu": 20}, spec.INVALID_CONFIG, "mtu"),
        (ENV, {**CONF, "runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}},
         spec.INVALID_CONFIG, "portMappings[0].hostPort"),
        (ENV, {**CONF, "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "sctp"}]}},
         spec.UNSUPPORTED_FIELD, 'protocol: "sctp"'),
        # matched whole: a value that ends in a newline is refused as what it names, not later as something else
        ({**ENV, "CNI_CONTAINERID": "c1\n"}, CONF, spec.INVALID_ENVIRONMENT, "CNI_CONTAINERID"),
        ({**ENV, "CNI_IFNAME": "eth0\n"}, CONF, spec.INVALID_ENVIRONMENT, "CNI_IFNAME"),
        (ENV, {**CONF, "name": "t1\n"}, spec.INVALID_CONFIG, "name"),
        # the reference chain's switches netwrap cannot turn: refused with the key and the value, never dropped
        (ENV, {**CONF, "isGateway": False}, spec.UNSUPPORTED_FIELD, "isGateway: false"),
        (ENV, {**CONF, "hairpinMode": False}, spec.UNSUPPORTED_FIELD, "hairpinMode: false"),
        (ENV, {**CONF, "isDefaultGateway": "yes"}, spec.INVALID_CONFIG, "isDefaultGateway"),
        (ENV, {**CONF, "ipam": {"type": "dhcp"}}, spec.UNSUPPORTED_FIELD, 'ipam.type: "dhcp"'),
        (ENV, {**CONF, "ipam": {"routes": [{"dst": "10.200.0.0/16"}]}}, spec.UNSUPPORTED_FIELD,
         'ipam.routes[0]: {"dst": "10.200.0.0/16"}'),
        (ENV, {**CONF, "ipam": {"routes": [{"dst": "0.0.0.0/0", "gw": "10.89.0.9"}]}}, spec.UNSUPPORTED_FIELD,
         "ipam.routes[0]"),
        (ENV, {**CONF, "ipam": {"routes": [{"dst": "nowhere"}]}}, spec.INVALID_CONFIG, "ipam.routes[0].dst"),
        ({**ENV, "CNI_COMMAND": "GC"}, {**CONF, "cni.dev/valid-attachments": [{"containerID": "c1"}]},
         spec.INVALID_CONFIG, "cni.dev/valid-attachments[0].ifname"),
        (ENV, {**CONF, "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "fe80::1"}]}},
         spec.INVALID_CONFIG, "hostIP"),
        (ENV, {**CONF, "subnet6": "fe80::/64"}, spec.INVALID_CONFIG, "subnet6"),
        (ENV, {**CONF, "subnet6": "fd00:88::/64", "gateway6": "fd00:99::1"}, spec.INVALID_CONFIG, "gateway6"),
        (ENV, {**CONF, "gateway6": "fd00:88::1"}, spec.INVALID_CONFIG, "needs a subnet6"),
        (ENV, {**CONF, "subnet6": "fd00:88::/126"}, spec.INVALID_CONFIG, "too small"),
    ],
)  # fmt: skip
def test_bad_input_is_an_error_of_the_spec_naming_what_is_wrong(
    env: dict[str, str], conf: object, code: int, words: str
) -> None:
    """Refused before anything is read or changed: the conftest guard fails any process a unit test starts."""
    got, out = call(env, conf)
    assert got == 1
    assert out is not None
    assert out["code"] == code, out
    assert words in out["msg"] + out.get("details", ""), out
    assert set(out) <= {"cniVersion", "code", "msg", "details"}


def test_host_local_style_ipam_is_read_too() -> None:
    bare = {k: v for k, v in CONF.items() if k != "subnet"}
    ranges = {"type": "host-local", "ranges": [[{"subnet": "10.7.0.0/16", "gateway": "10.7.0.254"}]]}
    read = spec.netconf({**bare, "ipam": ranges}, "ADD")
    assert (str(read.subnet), str(read.gateway)) == ("10.7.0.0/16", "10.7.0.254")
    read = spec.netconf({**bare, "ipam": {"subnet": "10.8.0.0/24"}}, "ADD")
    assert str(read.gateway) == "10.8.0.1"


def test_an_unexpected_error_is_json_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise KeyError("x")

    monkeypatch.setattr(plugin, "status", boom)
    code, out = call({**ENV, "CNI_COMMAND": "STATUS"}, CONF)
    assert code == 1
    assert out is not None
    assert out["code"] == cni_main.UNEXPECTED
    assert out["msg"] == "internal error: KeyError: 'x'"
    assert "Traceback" in out["details"]


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES, st.sampled_from(["ADD", "DEL", "CHECK", "GC"]))
def test_any_json_is_refused_or_read_never_a_crash(data: object, command: str) -> None:
    merged = {**CONF, **data} if isinstance(data, dict) else data
    try:
        spec.netconf(merged, command) if isinstance(merged, dict) else spec.decode(json.dumps(merged))
    except CniError as exc:
        assert exc.code in (spec.INCOMPATIBLE_VERSION, spec.UNSUPPORTED_FIELD, spec.DECODE_FAILURE, spec.INVALID_CONFIG)


def test_leases_give_the_lowest_free_address_keep_it_and_free_it(tmp_path: Path) -> None:
    with Leases(tmp_path, "t1") as leases:
        a = leases.take(container_id="a", ifname="eth0", netns="/x", ports=(), subnet=SUBNET, gateway=GATEWAY)
        b = leases.take(container_id="b", ifname="eth0", netns="/y", ports=(), subnet=SUBNET, gateway=GATEWAY)
        again = leases.take(container_id="a", ifname="eth0", netns="/z", ports=(), subnet=SUBNET, gateway=GATEWAY)
        assert (str(a.address), str(b.address), again.address, again.netns) == ("10.89.0.2", "10.89.0.3", a.address,
                                                                                  "/z")  # fmt: skip
        leases.save()
    with Leases(tmp_path, "t1") as leases:  # a later process reads them back
        assert [x.container_id for x in leases.leases] == ["a", "b"]
        assert leases.drop("a", "eth0") is not None
        assert leases.drop("a", "eth0") is None  # a second DEL frees nothing, and is no error
        c = leases.take(container_id="c", ifname="eth0", netns="/c", ports=(), subnet=SUBNET, gateway=GATEWAY)
        assert str(c.address) == "10.89.0.2"
        assert [x.container_id for x in leases.keep_only([("c", "eth0")])] == ["b"]
    assert (tmp_path / "t1").stat().st_mode & 0o777 == 0o700


def test_leases_this_process_wrote_are_read_back_as_written_and_a_hand_edit_or_damage_is_seen(tmp_path: Path) -> None:
    """A warm helper keeps the leases it last wrote (it decodes nothing when nobody changed the file since), but
    the file decides: edited by hand, or damaged, it is read as it is now."""
    with Leases(tmp_path, "t1") as leases:
        for name in ("a", "b"):
            leases.take(container_id=name, ifname="eth0", netns="/x", ports=(), subnet=SUBNET, gateway=GATEWAY)
        leases.save()
        written = list(leases.leases)
    path = tmp_path / "t1" / "leases.json"
    on_disk = [Lease.from_json(item) for item in json.loads(path.read_text())["leases"]]
    assert on_disk == written  # what another process reads: the file says it all
    with Leases(tmp_path, "t1") as leases:
        leases.leases = leases.leases[:1]
        leases.save()
        leases.leases.clear()  # the list is the caller's: what is kept is not changed with it
    with Leases(tmp_path, "t1") as leases:
        assert [str(x.address) for x in leases.leases] == ["10.89.0.2"]
    path.write_text(path.read_text().replace("10.89.0.2", "10.89.0.7"))
    with Leases(tmp_path, "t1") as leases:
        assert [str(x.address) for x in leases.leases] == ["10.89.0.7"]
    path.write_text(path.read_text().replace('"format"', '"formta"'))
    with pytest.raises(CniError, match="damaged"), Leases(tmp_path, "t1"):
        pass


def test_a_full_subnet_is_an_error_that_says_so(tmp_path: Path) -> None:
    small = ipaddress.IPv4Network("10.1.0.0/30")
    with Leases(tmp_path, "t1") as leases:
        leases.take(container_id="a", ifname="eth0", netns="/a", ports=(), subnet=small, gateway=small[1])
        with pytest.raises(CniError, match="no free address"):
            leases.take(container_id="b", ifname="eth0", netns="/b", ports=(), subnet=small, gateway=small[1])


def test_parallel_takes_never_share_an_address(tmp_path: Path) -> None:
    """20 ADDs at once, each in its own thread holding the network's lock in turn, as separate processes would."""
    got: list[str] = []

    def add(n: int) -> None:
        with Leases(tmp_path, "t1") as leases:
            lease = leases.take(container_id=f"c{n}", ifname="eth0", netns="/x", ports=(), subnet=SUBNET,
                                gateway=GATEWAY)  # fmt: skip
            leases.save()
            got.append(str(lease.address))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 20
    assert len(set(got)) == 20


def test_a_damaged_lease_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "t1").mkdir(mode=0o700)
    (tmp_path / "t1" / "leases.json").write_text("{broken")
    with pytest.raises(CniError, match="damaged") as caught, Leases(tmp_path, "t1"):
        pass
    assert caught.value.code == spec.DECODE_FAILURE


def test_a_data_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t1").mkdir(mode=0o777)
    (tmp_path / "t1").chmod(0o777)
    with pytest.raises(CniError, match="may be written by others"), Leases(tmp_path, "t1"):
        pass


def test_each_lease_is_a_running_container_of_the_networks_topology() -> None:
    conf = spec.netconf({**CONF, "ipMasq": True, "mtu": 1400, "bridge": "cni0"}, "ADD")
    leases = [
        Lease("a", "eth0", ipaddress.IPv4Address("10.89.0.2"), "/run/netns/a", (PortMapping(8080, 80),)),
        Lease("a", "net1", ipaddress.IPv4Address("10.89.0.3"), "/run/netns/a", ()),
    ]
    topo = plugin.topology(conf, leases)
    assert topo.name == "cni-t1"
    (net,) = topo.networks
    assert (net.bridge, net.nat, net.mtu, str(net.subnet)) == ("cni0", True, 1400, "10.89.0.0/24")
    first, second = topo.containers
    assert (first.source, first.loopback, str(first.networks[0].address)) == ("/run/netns/a", False, "10.89.0.2")
    assert first.networks[0].interface is None  # eth0: made in place, under its own name
    assert second.networks[0].interface == "net1"
    assert first.name != second.name
    assert [(p.host_port, p.container_port) for p in first.ports] == [(8080, 80)]
    long = spec.netconf({**CONF, "name": "a-very-long-network-name.with.dots"}, "ADD")
    assert len(plugin.topology_name(long)) <= 20


# --- what the review found ------------------------------------------------------------------------------------


def test_a_lease_is_alive_only_while_its_path_leads_to_what_it_was_added_in(tmp_path: Path) -> None:
    """A /proc/PID path whose PID now names another process (after a restart) must not be wired again."""
    path = tmp_path / "ns"
    path.write_text("")
    lease = Lease("a", "eth0", ipaddress.IPv4Address("10.89.0.2"), str(path), (), plugin.identity(str(path)))
    assert plugin._alive([lease]) == [lease]
    other = tmp_path / "other"
    other.write_text("")
    other.replace(path)  # the same path, another file (both existed at once: another inode)
    assert plugin._alive([lease]) == []
    assert plugin._alive([attrs.evolve(lease, identity="")]) == []  # never added with an identity: let go
    kept = attrs.evolve(lease, identity="")
    assert plugin._alive([kept], keep=kept.attachment) == [kept]


def test_leases_a_changed_configuration_cannot_build_are_set_aside_not_fatal() -> None:
    conf = spec.netconf({**CONF, "subnet": "10.90.0.0/24"}, "ADD")
    inside = Lease("a", "eth0", ipaddress.IPv4Address("10.90.0.2"), "/x", (PortMapping(8080, 80),))
    outside = Lease("b", "eth0", ipaddress.IPv4Address("10.89.0.3"), "/y", ())
    gateway = Lease("c", "eth0", ipaddress.IPv4Address("10.90.0.1"), "/z", ())
    same_port = Lease("d", "eth0", ipaddress.IPv4Address("10.90.0.4"), "/w", (PortMapping(8080, 81),))
    assert plugin._usable(conf, [inside, outside, gateway, same_port]) == [inside]
    plugin.topology(conf, plugin._usable(conf, [inside, outside, gateway, same_port]))  # builds


@pytest.mark.parametrize(
    ("ipam", "word"),
    [
        ({"subnet": "10.8.0.0/24", "rangeStart": "10.8.0.100"}, 'ipam.rangeStart: "10.8.0.100"'),
        ({"ranges": [[{"subnet": "10.8.0.0/24", "exclude": ["10.8.0.5/32"]}]]}, "exclude"),
        ({"ranges": [[{"subnet": "10.8.0.0/24"}], [{"subnet": "10.9.0.0/24"}]]}, '"10.9.0.0/24"'),
    ],
)
def test_host_local_narrowing_is_refused_not_dropped(ipam: dict[str, Any], word: str) -> None:
    bare = {k: v for k, v in CONF.items() if k != "subnet"}
    code, out = call(ENV, {**bare, "ipam": ipam})
    assert code == 1
    assert out is not None
    assert (out["code"], word in out["msg"]) == (spec.UNSUPPORTED_FIELD, True), out


@pytest.mark.parametrize("netns", ["/run/netns//x", "/run/netns/../x", "/a b"])
def test_a_malformed_cni_netns_is_refused_at_once(netns: str) -> None:
    code, out = call({**ENV, "CNI_NETNS": netns}, CONF)
    assert (code, out and out["code"]) == (1, spec.INVALID_ENVIRONMENT)


def test_an_add_of_a_namespace_that_is_not_there_is_refused(tmp_path: Path) -> None:
    conf = {**CONF, "dataDir": str(tmp_path / "data"), "stateDir": str(tmp_path / "state")}
    code, out = call({**ENV, "CNI_NETNS": str(tmp_path / "gone")}, conf)
    assert (code, out and out["code"]) == (1, spec.INVALID_ENVIRONMENT)
    assert read_leases(tmp_path / "data", "t1") == []  # nothing leased


def test_a_topology_may_not_take_a_cni_networks_name() -> None:
    from netwrap.topology import files as topofile  # noqa: PLC0415

    with pytest.raises(NetwrapError, match="cni- are the CNI plugin"):
        topofile.loads('name = "cni-web"\n', "t.toml")


def test_version_takes_whatever_cni_netns_says() -> None:
    """podman asks VERSION with CNI_NETNS=dummy."""
    assert call({"CNI_COMMAND": "VERSION", "CNI_NETNS": "dummy"}, "")[0] == 0


def test_a_lease_file_others_may_write_or_a_link_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "t1"
    folder.mkdir(mode=0o700)
    (folder / "leases.json").write_text('{"format": 1, "leases": []}')
    (folder / "leases.json").chmod(0o666)
    with pytest.raises(CniError, match="may be written by others"), Leases(tmp_path, "t1"):
        pass
    (folder / "leases.json").unlink()
    (tmp_path / "elsewhere.json").write_text('{"format": 1, "leases": []}')
    (folder / "leases.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(CniError, match="cannot read"), Leases(tmp_path, "t1"):
        pass


def test_a_failures_msg_names_the_first_thing_in_the_way() -> None:
    listed = NetwrapError("nothing was changed; the host has conflicting objects:\n  - v0-x exists but is a bridge")
    assert (
        plugin._summary(listed) == "nothing was changed; the host has conflicting objects: v0-x exists but is a bridge"
    )
    assert plugin._summary(NetwrapError("one line")) == "one line"


def test_a_port_on_every_address_and_the_same_port_on_one_are_told_apart_as_the_topology_does() -> None:
    """0.0.0.0:8080 and 127.0.0.1:8080 overlap for the topology's check: the second lease is set aside, not
    left to fail the whole network."""
    conf = spec.netconf(CONF, "ADD")
    every = Lease("a", "eth0", ipaddress.IPv4Address("10.89.0.2"), "/x", (PortMapping(8080, 80),))
    local = Lease("b", "eth0", ipaddress.IPv4Address("10.89.0.3"), "/y", (PortMapping(8080, 80, host_ip="127.0.0.1"),))
    assert plugin._usable(conf, [every, local]) == [every]
    plugin.topology(conf, plugin._usable(conf, [every, local]))  # builds


def test_a_dual_stack_configuration_as_host_local_writes_it() -> None:
    ranges = [[{"subnet": "fd00:88::/64"}], [{"subnet": "10.88.0.0/24", "gateway": "10.88.0.254"}]]
    conf = spec.netconf({**CONF, "subnet": None, "ipam": {"type": "host-local", "ranges": ranges}}, "ADD")
    assert (str(conf.subnet), str(conf.gateway)) == ("10.88.0.0/24", "10.88.0.254")
    assert (str(conf.subnet6), str(conf.gateway6)) == ("fd00:88::/64", "fd00:88::1")
    top = spec.netconf({**CONF, "subnet6": "fd00:89::/64", "gateway6": "fd00:89::fe"}, "ADD")
    assert (str(top.subnet6), str(top.gateway6)) == ("fd00:89::/64", "fd00:89::fe")


def test_leases_of_a_dual_stack_network_take_and_keep_an_address_of_each_family(tmp_path: Path) -> None:
    both: dict[str, Any] = {
        "subnet": ipaddress.IPv4Network("10.88.0.0/24"),
        "gateway": ipaddress.IPv4Address("10.88.0.1"),
        "subnet6": ipaddress.IPv6Network("fd00:88::/64"),
        "gateway6": ipaddress.IPv6Address("fd00:88::1"),
    }
    with Leases(tmp_path, "n") as leases:
        given = [leases.take(container_id=c, ifname="eth0", netns=f"/{c}", ports=(), **both) for c in ("a", "b")]
        leases.save()
    assert [str(x.address6) for x in given] == ["fd00:88::2", "fd00:88::3"]
    with Leases(tmp_path, "n") as leases:
        assert leases.leases == given  # read back as written
        again = leases.take(container_id="b", ifname="eth0", netns="/b", ports=(), **both)
        assert again.address6 == given[1].address6 and again.address == given[1].address


def test_the_default_route_follows_is_default_gateway_else_eth0_alone() -> None:
    def default(extra: dict[str, Any], ifname: str) -> bool:
        return plugin.gets_default_route(spec.netconf({**CONF, **extra}, "ADD"), ifname)

    assert (default({}, "eth0"), default({}, "net1")) == (True, False)
    assert (default({"isDefaultGateway": True}, "net1"), default({"isDefaultGateway": False}, "eth0")) == (True, False)
    # default routes in ipam.routes (as podman writes them) are taken, and are what eth0 gets anyway: a second
    # network's would clash with the first's in the container
    routes = {"ipam": {"routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}, {"dst": "0.0.0.0/0", "gw": "10.89.0.1"}]}}
    assert (default(routes, "eth0"), default(routes, "net1")) == (True, False)


def test_what_only_an_add_refuses_never_stops_a_del_check_or_gc_of_what_an_earlier_netwrap_made() -> None:
    """An earlier netwrap took these and ignored them: its containers must still be deleted."""
    for extra in ({"isGateway": False}, {"hairpinMode": False}, {"ipam": {"type": "static"}},
                  {"ipam": {"routes": [{"dst": "10.200.0.0/16"}]}}, {"vlan": 5}):  # fmt: skip
        with pytest.raises(CniError) as caught:
            spec.netconf({**CONF, **extra}, "ADD")
        assert caught.value.code == spec.UNSUPPORTED_FIELD
        for command in ("DEL", "CHECK", "GC"):
            assert spec.netconf({**CONF, **extra}, command).name == "t1"


def test_gc_takes_the_key_the_specification_of_1_1_0_names_too() -> None:
    """libcni sends cni.dev/valid-attachments and cni.dev/attachments (the name SPEC.md of 1.1.0 gave it)."""
    listed = [{"containerID": "c1", "ifname": "eth0"}]
    for key in ("cni.dev/valid-attachments", "cni.dev/attachments"):
        assert spec.netconf({**CONF, key: listed}, "GC").valid_attachments == (("c1", "eth0"),)
    both = {**CONF, "cni.dev/valid-attachments": listed, "cni.dev/attachments": []}
    assert spec.netconf(both, "GC").valid_attachments == (("c1", "eth0"),)  # libcni's own key first
    assert spec.netconf(CONF, "GC").valid_attachments is None  # nothing said: nothing collected


def test_ipam_resolv_conf_as_host_local_reads_it_and_ipam_data_dir_is_not_netwraps(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 192.0.2.53\nnameserver 192.0.2.54 ; x\nsearch a.example b.example\n"
                      "options ndots:2 edns0\ndomain\n")  # fmt: skip
    read = spec.netconf({**CONF, "ipam": {"dataDir": str(tmp_path / "d"), "resolvConf": str(resolv)}}, "ADD")
    assert read.data_dir == spec.DEFAULT_DATA_DIR  # host-local's own folder, never netwrap's leases' (an earlier
    # netwrap ignored it: its leases are in dataDir, and a network read elsewhere would lose every container)
    assert plugin.resolv_conf(read.resolv_conf) == {
        "nameservers": ["192.0.2.53", "192.0.2.54"], "search": ["a.example", "b.example"],
        "options": ["ndots:2", "edns0"],
    }  # fmt: skip
    with pytest.raises(CniError) as caught:
        plugin.resolv_conf(str(tmp_path / "missing"))
    assert caught.value.code == spec.IO_FAILURE


def test_a_lease_lock_held_too_long_is_try_again_later(tmp_path: Path) -> None:
    with Leases(tmp_path, "t1"), pytest.raises(CniError) as caught, Leases(tmp_path, "t1", timeout=0.2):
        pass
    assert caught.value.code == spec.TRY_AGAIN_LATER


def test_only_a_network_namespace_of_another_than_the_plugin_is_added_to(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert "not a namespace file" in (netns_problem(str(tmp_path / "file")) or "")
    assert "another kind" in (netns_problem("/proc/self/ns/mnt") or "")
    assert "host's own" in (netns_problem("/proc/self/ns/net") or "")
    assert "cannot be opened" in (netns_problem(str(tmp_path / "gone")) or "")
    os.mkfifo(tmp_path / "fifo")
    assert "not a namespace file" in (netns_problem(str(tmp_path / "fifo")) or "")
    assert "not a namespace file" in (netns_problem("/dev/null") or "")


def test_a_file_that_is_no_namespace_is_looked_at_and_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a FIFO waits for a writer; opening a device can act (a watchdog, a tape): only a file of the
    namespaces' own file system is opened."""
    opened: list[str] = []
    real = os.open

    def watching(path: str, flags: int, *args: int) -> int:
        opened.append(str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", watching)
    os.mkfifo(tmp_path / "fifo")
    for path in (str(tmp_path / "fifo"), "/dev/null", str(tmp_path)):
        assert "not a namespace file" in (netns_problem(path) or "")
    assert opened == []
    assert "host's own" in (netns_problem("/proc/self/ns/net") or "")
    assert opened == ["/proc/self/ns/net"]
    conf = {**CONF, "dataDir": str(tmp_path / "data"), "stateDir": str(tmp_path / "state")}
    code, out = call({**ENV, "CNI_NETNS": "/proc/self/ns/net"}, conf)
    assert (code, out and out["code"]) == (1, spec.INVALID_ENVIRONMENT)
    assert read_leases(tmp_path / "data", "t1") == []  # nothing leased


def test_a_del_goes_by_the_container_whatever_cni_netns_says(tmp_path: Path) -> None:
    conf = {**CONF, "dataDir": str(tmp_path / "data"), "stateDir": str(tmp_path / "state")}
    assert call({**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": "/run/netns/a b"}, conf) == (0, None)  # nothing leased


def test_status_answers_while_an_add_holds_the_lease_lock(tmp_path: Path) -> None:
    """STATUS reads whether the data directory can be used without the lock: it never waits on an ADD."""
    conf = {**CONF, "cniVersion": "1.1.0", "dataDir": str(tmp_path / "data")}
    with Leases(tmp_path / "data", "t1"):  # another description of the lock: a STATUS that took it would fail
        assert call({"CNI_COMMAND": "STATUS"}, conf) == (0, None)
    (tmp_path / "data" / "t1" / "leases.json").write_text("{broken")
    code, out = call({"CNI_COMMAND": "STATUS"}, conf)
    assert (code, out and out["code"]) == (1, spec.NOT_AVAILABLE)


def test_version_with_a_cni_version_that_is_no_string_answers_with_one() -> None:
    code, out = call({"CNI_COMMAND": "VERSION"}, {"cniVersion": 5})
    assert (code, out and out["cniVersion"]) == (0, spec.SUPPORTED[-1])


def test_an_address_asked_for_as_podman_and_the_ips_capability_ask() -> None:
    """``podman run --ip`` passes CNI_ARGS ``IP``; the ``ips`` capability ``runtimeConfig.ips``."""
    six = {**CONF, "subnet6": "fd00:89::/64"}
    assert spec.netconf(CONF, "ADD", "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.89.0.50").requested == (
        ipaddress.IPv4Address("10.89.0.50"),
    )
    asked = spec.netconf({**six, "runtimeConfig": {"ips": ["10.89.0.9/24", "fd00:89::9/64"]}}, "ADD").requested
    assert [str(a) for a in asked] == ["10.89.0.9", "fd00:89::9"]
    assert [str(a) for a in spec.netconf({**CONF, "args": {"cni": {"ips": ["10.89.0.7"]}}}, "ADD").requested] == [
        "10.89.0.7"
    ]
    assert spec.netconf(CONF, "DEL", "IP=10.89.0.50").requested == ()  # read by ADD alone
    for conf, args, code, words in (
        (CONF, "IP=10.90.0.5", spec.INVALID_CONFIG, "10.90.0.5"),  # outside the subnet
        (CONF, "IP=10.89.0.1", spec.INVALID_CONFIG, "gateway"),
        (CONF, "IP=fd00:89::9", spec.INVALID_CONFIG, "fd00:89::9"),  # no subnet6
        (CONF, "IP=10.89.0.5,10.89.0.6", spec.UNSUPPORTED_FIELD, "one address per family"),
        (CONF, "IP=nothing", spec.INVALID_CONFIG, "CNI_ARGS IP"),
        (CONF, "MAC=02:00:00:00:00:01", spec.UNSUPPORTED_FIELD, "CNI_ARGS MAC"),
        ({**CONF, "runtimeConfig": {"mac": "02:00:00:00:00:01"}}, "", spec.UNSUPPORTED_FIELD, "runtimeConfig.mac"),
        (CONF, "IP", spec.INVALID_ENVIRONMENT, "CNI_ARGS"),
    ):
        with pytest.raises(CniError) as caught:
            spec.netconf(conf, "ADD", args)
        assert (caught.value.code, words in caught.value.msg) == (code, True), caught.value.msg


def test_a_lease_takes_the_address_asked_for_unless_another_has_it(tmp_path: Path) -> None:
    wanted = ipaddress.IPv4Address("10.89.0.50")
    with Leases(tmp_path, "t1") as leases:
        first = leases.take(container_id="a", ifname="eth0", netns="/a", ports=(), subnet=SUBNET, gateway=GATEWAY,
                            requested=(wanted,))  # fmt: skip
        assert first.address == wanted
        with pytest.raises(CniError, match="leased to a/eth0") as caught:
            leases.take(container_id="b", ifname="eth0", netns="/b", ports=(), subnet=SUBNET, gateway=GATEWAY,
                        requested=(wanted,))  # fmt: skip
        assert caught.value.code == spec.FAILED
        assert leases.find("b", "eth0") is None
        other = ipaddress.IPv4Address("10.89.0.60")  # the same attachment asking for another: it moves
        moved = leases.take(container_id="a", ifname="eth0", netns="/a", ports=(), subnet=SUBNET, gateway=GATEWAY,
                            requested=(other,))  # fmt: skip
        assert (moved.address, [x.address for x in leases.leases]) == (other, [other])


def test_a_lease_file_that_is_a_directory_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "t1" / "leases.json").mkdir(parents=True)
    (tmp_path / "t1").chmod(0o700)
    with pytest.raises(CniError) as caught, Leases(tmp_path, "t1"):
        pass
    assert caught.value.code == spec.IO_FAILURE
    assert str(tmp_path / "t1" / "leases.json") in caught.value.msg and "directory" in caught.value.msg


def test_check_with_a_damaged_record_is_the_specs_error_not_an_internal_one(tmp_path: Path) -> None:
    conf = {**CONF, "dataDir": str(tmp_path / "data"), "stateDir": str(tmp_path / "state")}
    with Leases(tmp_path / "data", "t1") as leases:
        leases.leases = [Lease("abc", "eth0", ipaddress.IPv4Address("10.89.0.2"), "/proc/self/ns/net",
                               identity=plugin.identity("/proc/self/ns/net"))]  # fmt: skip
        leases.save()
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "topology-cni-t1.json").write_text("{truncated")
    (tmp_path / "state" / "topology-cni-t1.json").chmod(0o600)
    code, out = call({**ENV, "CNI_COMMAND": "CHECK", "CNI_NETNS": "/proc/self/ns/net"}, conf)
    assert (code, out and out["code"]) == (1, spec.FAILED), out
    assert "topology-cni-t1.json" in (out or {}).get("msg", ""), out


def test_a_file_where_the_state_or_data_directory_should_be_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    state = spec.netconf({**CONF, "stateDir": str(tmp_path / "file")}, "ADD")
    with pytest.raises(CniError, match="a file is in the way of the directory"), plugin._turns(state):
        pass
    with (
        pytest.raises(CniError, match="a file is in the way of the directory") as caught,
        Leases(tmp_path / "file", "t1"),
    ):
        pass
    assert caught.value.code == spec.IO_FAILURE


def test_a_configuration_list_with_cni_versions_alone_is_read_at_the_highest_it_shares(tmp_path: Path) -> None:
    """1.1.0 lets a list name its versions (``cniVersions``) instead of one ``cniVersion``."""
    path = tmp_path / "apps.conflist"
    ours = {k: v for k, v in CONF.items() if k not in ("cniVersion", "name")}
    path.write_text(json.dumps({"cniVersions": ["0.4.0", "1.0.0", "1.1.0", "9.0.0"], "name": "t1",
                                "plugins": [ours, {"type": "portmap"}]}))  # fmt: skip
    path.chmod(0o600)
    tmp_path.chmod(0o700)
    assert plugin.config_from_file(path).version == "1.1.0"
    path.write_text(json.dumps({"cniVersions": ["0.4.0"], "name": "t1", "plugins": [ours]}))
    with pytest.raises(NetwrapError, match="not supported"):
        plugin.config_from_file(path)


def test_an_add_whose_resolv_conf_cannot_be_read_fails_before_anything_is_leased(tmp_path: Path) -> None:
    conf = {**CONF, "dataDir": str(tmp_path / "data"), "stateDir": str(tmp_path / "state"),
            "ipam": {"resolvConf": str(tmp_path / "missing")}}  # fmt: skip
    code, out = call({**ENV, "CNI_NETNS": "/proc/self/ns/net"}, conf)  # refused later anyway: this comes first
    assert (code, out and out["code"]) == (1, spec.IO_FAILURE), out
    assert "resolvConf" in (out or {}).get("msg", "")
    assert read_leases(tmp_path / "data", "t1") == []


def test_an_add_the_runtime_gave_up_on_makes_nothing(tmp_path: Path) -> None:
    """Run in the warm helper, a call outlives the plugin process a runtime kills on its timeout: an ADD that
    finds its caller gone once it holds the network's lock (the runtime's DEL may have come and gone while it
    waited) leases nothing and makes nothing."""
    from netwrap.cni import caller  # noqa: PLC0415

    conf = {**CONF, "dataDir": str(tmp_path / "data"), "stateDir": str(tmp_path / "state")}
    with caller.watched(lambda: True):
        code, out = call({**ENV, "CNI_NETNS": "/proc/self/ns/net"}, conf)
    assert (code, out and out["code"]) == (1, spec.TRY_AGAIN_LATER)
    assert out is not None and "stopped waiting" in out["msg"]
    assert read_leases(tmp_path / "data", "t1") == []
    assert not caller.gone()  # only for the block's time


SUBNET6 = ipaddress.IPv6Network("fd00:9::/120")
V4 = ipaddress.IPv4Network("10.9.0.0/24")


@given(
    st.lists(st.one_of(st.none(), st.integers(0, 300)), max_size=12),
    st.sampled_from([None, ipaddress.IPv6Address("fd00:9::1")]),
)
def test_leases_fitted_to_an_edited_subnet6_each_keep_one_or_take_a_free_one_in_their_order(
    held: list[int | None], gateway6: ipaddress.IPv6Address | None
) -> None:
    """Whatever IPv6 addresses the leases held (none, one of the subnet, one outside it, the gateway, twice
    the same), fitted to a network with ``subnet6`` each has one of its host addresses, none twice, never the
    gateway; one that fitted keeps it (the first of two that hold one), the others take the lowest free ones in
    their order. Fitted to a network without IPv6, none has one."""
    base = ipaddress.IPv6Address("fd00:9::")
    leases = [
        Lease(
            f"c{i}",
            "eth0",
            ipaddress.IPv4Address(f"10.9.0.{i + 2}"),
            f"/run/netns/c{i}",
            address6=None if n is None else base + n,
        )
        for i, n in enumerate(held)
    ]
    now = fitted(leases, V4, V4[1], SUBNET6, gateway6)
    assert [x.attachment for x in now] == [x.attachment for x in leases]
    got = [x.address6 for x in now]
    assert all(a is not None and a in SUBNET6 and a not in (base, gateway6) for a in got)
    assert len(set(got)) == len(got)
    kept: set[ipaddress.IPv6Address | None] = {gateway6}
    for old in leases:
        if old.address6 is not None and old.address6 in SUBNET6 and old.address6 not in (base, *kept):
            assert old in now
            kept.add(old.address6)
    taken = [x.address6 for x in now if x not in leases]
    free = [a for a in SUBNET6 if a != base and a not in kept]
    assert taken == free[: len(taken)]  # the lowest free, in the leases' order
    assert all(x.address6 is None for x in fitted(leases, V4, V4[1]))
    assert [x.address for x in now] == [x.address for x in leases]  # each IPv4 address fitted already


def test_leases_fitted_to_an_edited_subnet_take_its_lowest_free_addresses_in_their_order() -> None:
    """A subnet edited while containers run: each lease outside it (or on its new gateway) takes the lowest free
    address of the new one, in the leases' order, around those that still fit; none is left off the network."""
    old = [ipaddress.IPv4Address(a) for a in ("10.9.0.2", "10.8.0.3", "10.8.0.1", "10.8.0.4", "10.8.0.3")]
    leases = [Lease(f"c{i}", "eth0", address, f"/run/netns/c{i}") for i, address in enumerate(old)]
    now = fitted(leases, ipaddress.IPv4Network("10.8.0.0/24"), ipaddress.IPv4Address("10.8.0.1"))
    assert [str(x.address) for x in now] == ["10.8.0.2", "10.8.0.3", "10.8.0.5", "10.8.0.4", "10.8.0.6"]
    assert now[1] is leases[1] and now[3] is leases[3]  # those that fit are kept as they are
