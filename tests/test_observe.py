"""Bulk observation: one read per namespace and fact, and the fallback for an ip without -json."""

from __future__ import annotations

import threading
import time

from pytest_subprocess import FakeProcess

from netwrap import LinkUp, Namespace, Sysctl, VethPair, observe, tutorial
from netwrap.host import parse
from netwrap.host.runner import RecordingRunner, SubprocessRunner
from netwrap.kinds import Address, Rule
from tests.conftest import fixture_text

LINKS_JSON = ["ip", "-d", "-json", "link", "show"]
LINKS_TEXT = ["ip", "-o", "-d", "link", "show"]
HOST = ["ip", "-d", "-json", "-batch", "-"]
# What iproute2 releases before -json (4.x) print: captured from their source's messages.
NO_JSON = 'Option "-json" is unknown, try "ip -help".\n'


def test_an_ip_without_json_is_read_in_its_text_form(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(HOST, returncode=255, stderr=NO_JSON)
    fp.register(LINKS_JSON, returncode=255, stderr=NO_JSON)
    fp.register(LINKS_TEXT, stdout=fixture_text("tutorial_host_links_o.txt"))
    state = observe(runner, [LinkUp("Tbr0")])
    link = state.view(None).link("Tbr0")
    assert link is not None
    assert link.kind == "bridge"
    assert link.up


def test_an_ip_that_ignores_json_is_read_in_its_text_form(fp: FakeProcess, runner: SubprocessRunner) -> None:
    """Some old releases accept -json and print plain text with exit 0."""
    plain = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n"
    fp.register(HOST, stdout=plain)
    fp.register(LINKS_JSON, stdout=plain)
    fp.register(LINKS_TEXT, stdout=fixture_text("tutorial_host_links_o.txt"))
    state = observe(runner, [LinkUp("Tveth1")])
    link = state.view(None).link("Tveth1")
    assert link is not None
    assert link.master == "Tbr0"


def _facts(*names: str) -> str:
    return "\n".join(fixture_text(name).strip() for name in names) + "\n"


def test_the_tutorial_is_observed_with_one_read_per_namespace_and_fact(
    fp: FakeProcess, runner: SubprocessRunner
) -> None:
    fp.register(["ip", "netns", "list"], stdout=fixture_text("tutorial_netns_list.txt"))
    fp.register(HOST, stdout=_facts("tutorial_host_addr.json"))
    for ns, n in (("Tdocker0", 0), ("Tdocker1", 1)):
        names = (f"tutorial_docker{n}_addr.json", f"tutorial_docker{n}_routes.json")
        fp.register(["nsenter", f"--net=/run/netns/{ns}", "--", "ip", "-d", "-json", "-batch", "-"],
                    stdout=_facts(*names))  # fmt: skip
    fp.register(["iptables", "-t", "nat", "-S"], stdout=fixture_text("tutorial_nat_S.txt"))
    fp.register(["sysctl", "-n", "net.ipv4.ip_forward"], stdout="1\n")
    state = observe(runner, tutorial.objects())
    assert len(fp.calls) == 6  # namespaces; the host; each container; nat; ip_forward
    assert state.namespaces == ("Tdocker1", "Tdocker0")
    # the host end's peer is found across namespaces, through the netns id
    host_end = state.view(None).link("Tveth1")
    assert host_end is not None
    assert state.peer_name(host_end, None) == ("Tdocker0", "Tveth0")
    assert state.view("Tdocker0").routes is not None


def test_namespaces_that_do_not_exist_are_not_entered(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["ip", "netns", "list"], stdout="")
    fp.register(HOST, stdout=fixture_text("empty_links.json"))
    state = observe(runner, [Namespace("Tdocker0"), VethPair("Tveth0", "Tveth1"), LinkUp("Tveth0", netns="Tdocker0")])
    assert len(fp.calls) == 2
    assert state.view("Tdocker0").link("Tveth0") is None


def test_the_settings_of_a_namespace_are_read_in_one_process(fp: FakeProcess, runner: SubprocessRunner) -> None:
    names = ("net.ipv4.ip_forward", "net.ipv4.conf.Tbr0.route_localnet", "net.ipv4.conf.Tnothing.route_localnet")
    # a device's setting is read with the value a new device starts with (what giving it back restores)
    read = (*names[:2], "net.ipv4.conf.default.route_localnet", names[2])
    out = fixture_text("sysctl_several.txt") + "net.ipv4.conf.default.route_localnet = 0\n"
    fp.register(["sysctl", "-e", *read], stdout=out)
    state = observe(runner, [Sysctl(name, "1") for name in names])
    assert len(fp.calls) == 1
    assert state.sysctls == {
        (None, names[0]): "1",
        (None, names[1]): "0",
        (None, read[2]): "0",
    }  # the missing device's is left out


def test_reads_that_need_no_listing_run_beside_it(fp: FakeProcess, runner: SubprocessRunner) -> None:
    """The host, the rule tables and the settings are read while the namespaces are being listed."""
    listing_done = threading.Event()

    def slow_listing(process: FakeProcess) -> None:
        time.sleep(0.3)
        listing_done.set()

    fp.register(["ip", "netns", "list"], stdout="", callback=slow_listing)
    early: list[str] = []
    for argv, out in (
        (HOST, fixture_text("empty_links.json")),
        (["iptables", "-t", "nat", "-S"], "-P PREROUTING ACCEPT\n"),
    ):
        fp.register(
            argv,
            stdout=out,
            callback=lambda _p, tool=argv[0]: early.append(tool) if not listing_done.is_set() else None,
        )
    observe(runner, [Namespace("Tdocker0"), LinkUp("Tbr0"), Rule("POSTROUTING", "MASQUERADE", table="nat")])
    assert sorted(early) == ["ip", "iptables"]


def test_several_tables_are_read_by_one_iptables_save(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["iptables-save"], stdout=fixture_text("foreign_save_all.txt"))
    wanted = [Rule("POSTROUTING", "MASQUERADE", table="nat"), Rule("FORWARD", "ACCEPT"), Rule("INPUT", "ACCEPT")]
    state = observe(runner, [*wanted, Rule("PREROUTING", "ACCEPT", table="raw")])
    assert len(fp.calls) == 1
    assert state.chains == {"filter": ("MINE",), "nat": (), "raw": ()}  # raw: a table not made yet lists nothing
    assert state.has_rule("filter", "MINE", ("-s", "10.9.0.0/16", "-j", "ACCEPT"))
    assert len(state.rules["nat"]) == 4


def test_one_dump_gives_the_devices_and_their_addresses() -> None:
    """``ip -d addr show`` lists every device as ``ip -d link show`` does: links are not dumped twice."""
    recorder = RecordingRunner()
    observe(recorder, [LinkUp("Tbr0"), Address("Tbr0", "172.18.0.1/24"), LinkUp("eth0", netns="c1")])
    batches = [c for c in recorder.commands if "-batch" in c.args]
    asked = {c.netns: c.input for c in batches}
    assert asked == {None: "addr show\n", "c1": "link show\n"}  # nothing is wanted of c1's addresses
    links = parse.links(fixture_text("tutorial_host_links.json"))
    devices = parse.links(fixture_text("tutorial_host_addr.json"))
    assert [(x.name, x.kind, x.master, x.up) for x in links] == [(x.name, x.kind, x.master, x.up) for x in devices]
