"""ensure/remove with faked processes: the exact argv, in order; nothing unexpected runs.

pytest-subprocess raises on any command that is not registered, so a test that
registers only the check proves that no mutating command ran.
"""

from __future__ import annotations

import pytest
from pytest_subprocess import FakeProcess

from netwrap import (
    Address,
    Bridge,
    BridgePort,
    CommandError,
    ConflictError,
    LinkNetns,
    LinkUp,
    Namespace,
    NatRule,
    NetObject,
    Route,
    Sysctl,
    VethPair,
    check,
    ensure,
    remove,
    restore,
)
from netwrap.host.runner import SubprocessRunner
from tests.conftest import fixture_text

# observe reads each namespace's facts in one `ip -d -json [-n NS] -batch -`
LINKS = ADDRS = ["ip", "-d", "-json", "-batch", "-"]
D0 = ["nsenter", "--net=/run/netns/Tdocker0", "--", "ip", "-d", "-json", "-batch", "-"]


def calls(fp: FakeProcess) -> list[list[str]]:
    return [[str(word) for word in call] for call in fp.calls]


def test_ensure_creates_a_missing_namespace(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["ip", "netns", "list"], stdout=fixture_text("empty_netns_list.txt"))
    fp.register(["ip", "netns", "add", "Tdocker0"])
    assert ensure(Namespace("Tdocker0"), runner) is True
    assert calls(fp) == [["ip", "netns", "list"], ["ip", "netns", "add", "Tdocker0"]]


def test_ensure_finds_a_namespace_with_an_id(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["ip", "netns", "list"], stdout=fixture_text("tutorial_netns_list.txt"))
    assert ensure(Namespace("Tdocker0"), runner) is False
    assert calls(fp) == [["ip", "netns", "list"]]


NETNS = ["ip", "netns", "list"]
ROUTES = LINKS
NAT = ["iptables", "-t", "nat", "-S"]
SYSCTL = ["sysctl", "-n", "net.ipv4.ip_forward"]


@pytest.mark.parametrize(
    ("obj", "reads"),
    [
        (VethPair("Tveth0", "Tveth1"), [(NETNS, "tutorial_netns_list.txt"), (LINKS, "tutorial_host_links.json")]),
        (LinkNetns("Tveth0", "Tdocker0"), [(D0, "tutorial_docker0_links.json")]),
        (Bridge("Tbr0"), [(LINKS, "tutorial_host_links.json")]),
        (Bridge("Tbr0", tool="ip"), [(LINKS, "tutorial_host_links.json")]),
        (BridgePort("Tbr0", "Tveth3"), [(LINKS, "tutorial_host_links.json")]),
        (Address("Tveth0", "172.18.0.2/24", netns="Tdocker0"), [(D0, "tutorial_docker0_addr.json")]),
        (Address("Tbr0", "172.18.0.1/24"), [(ADDRS, "tutorial_host_addr.json")]),
        (LinkUp("Tveth0", netns="Tdocker0"), [(D0, "tutorial_docker0_links.json")]),
        (LinkUp("Tbr0"), [(LINKS, "tutorial_host_links.json")]),
        (Route("default", "172.18.0.1", "Tveth0", netns="Tdocker0"),
         [(D0, "tutorial_docker0_routes.json")]),
        (Sysctl("net.ipv4.ip_forward", "1"), [(SYSCTL, "ip_forward_1.txt")]),
        (NatRule.masquerade("172.18.0.0/24", not_out="Tbr0"), [(NAT, "tutorial_nat_S.txt")]),
        (NatRule.publish(80, "172.18.0.2:80", not_in="Tbr0"), [(NAT, "foreign_nat_S.txt")]),
    ],
)  # fmt: skip
def test_ensure_only_reads_when_present(
    fp: FakeProcess, runner: SubprocessRunner, obj: NetObject, reads: list[tuple[list[str], str]]
) -> None:
    for argv, fixture in reads:
        fp.register(argv, stdout=fixture_text(fixture))
    assert ensure(obj, runner) is False
    assert calls(fp) == [argv for argv, _ in reads]


@pytest.mark.parametrize(
    ("obj", "reads"),
    [
        (VethPair("Tveth0", "Tveth1"), [(NETNS, "empty_netns_list.txt"), (LINKS, "empty_links.json")]),
        (Bridge("Tbr0"), [(LINKS, "empty_links.json")]),
        (BridgePort("Tbr0", "Tveth1"), [(LINKS, "tutorial_docker0_links.json")]),
        (Address("Tbr0", "172.18.0.1/24"), [(ADDRS, "empty_addr.json")]),
        (LinkUp("lo"), [(LINKS, "empty_links.json")]),
        (Route("default", "172.18.0.1", "Tveth0"), [(ROUTES, "empty_routes.json")]),
        (Sysctl("net.ipv4.ip_forward", "1"), [(SYSCTL, "ip_forward_0.txt")]),
        (NatRule.masquerade("172.18.0.0/24", not_out="Tbr0"), [(NAT, "legacy_nat_S.txt")]),
        (NatRule.masquerade("10.0.0.0/8", out="eth0"), [(NAT, "foreign_nat_S.txt")]),  # a negated one is there
    ],
)
def test_ensure_creates_when_missing(
    fp: FakeProcess, runner: SubprocessRunner, obj: NetObject, reads: list[tuple[list[str], str]]
) -> None:
    for argv, fixture in reads:
        fp.register(argv, stdout=fixture_text(fixture))
    creates = [list(c.argv) for c in obj.create_commands()]
    for argv in creates:
        fp.register(argv)
    assert ensure(obj, runner) is True
    assert calls(fp) == [argv for argv, _ in reads] + creates


@pytest.mark.parametrize(
    ("obj", "reads", "message"),
    [
        (Bridge("Tbr0"), [(LINKS, "conflict_links.json")], "Tbr0 exists on the host but is a veth, not a bridge"),
        (BridgePort("Tbr0", "Tveth1"), [(LINKS, "conflict_links.json")], "Tveth1 is already a port of Tother"),
        (VethPair("Tveth0", "Tveth1"), [(NETNS, "empty_netns_list.txt"), (LINKS, "conflict_links.json")],
         "Tveth0 exists on the host but its peer is Tvethz, not Tveth1"),
        (VethPair("Tother", "Tveth9"), [(NETNS, "empty_netns_list.txt"), (LINKS, "conflict_links.json")],
         "Tother exists on the host but is a bridge, not a veth"),
        (Address("Tbr0", "172.18.0.1/24"), [(ADDRS, "conflict_addr.json")], "172.18.0.1 is already on Tother"),
        (Route("default", "172.18.0.9", "Tveth0", netns="Tdocker0"),
         [(D0, "tutorial_docker0_routes.json")],
         "a route to default via 172.18.0.1 dev Tveth0 already exists in namespace Tdocker0"),
        (NatRule.publish(80, "172.18.0.3:80", not_in="Tbr0"), [(NAT, "tutorial_nat_S.txt")],
         "tcp port 80 is already published to 172.18.0.2:80"),
    ],
)  # fmt: skip
def test_conflicts_are_errors_and_nothing_runs(
    fp: FakeProcess, runner: SubprocessRunner, obj: NetObject, reads: list[tuple[list[str], str]], message: str
) -> None:
    for argv, fixture in reads:
        fp.register(argv, stdout=fixture_text(fixture))
    with pytest.raises(ConflictError, match=message):
        ensure(obj, runner)
    assert calls(fp) == [argv for argv, _ in reads]


def test_a_port_published_by_someone_else_is_a_conflict(fp: FakeProcess, runner: SubprocessRunner) -> None:
    theirs = "\n".join(line for line in fixture_text("foreign_nat_S.txt").splitlines() if "Tbr0" not in line)
    fp.register(NAT, stdout=theirs)
    with pytest.raises(ConflictError, match=r"tcp port 80 is already published to 10\.1\.1\.1:8080 \(nat PREROUTING"):
        ensure(NatRule.publish(80, "172.18.0.2:80", not_in="Tbr0"), runner)
    assert len(fp.calls) == 1


def test_a_published_port_on_another_port_or_protocol_is_no_conflict(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(NAT, stdout=fixture_text("foreign_nat_S.txt"), occurrences=2)
    rules = [NatRule.publish(8080, "172.18.0.2:80", not_in="Tbr0"), NatRule.publish(80, "172.18.0.2", protocol="udp")]
    for rule in rules:
        fp.register(list(rule.create_commands()[0].argv))
        assert ensure(rule, runner) is True


def host_everything(fp: FakeProcess, devices: str, netns: str = "empty_netns_list.txt") -> None:
    """What remove() of a veth reads: the namespaces and every fact of each (one process each): the devices
    with their addresses (``ip -d addr show`` lists both), and the routes."""
    fp.register(NETNS, stdout=fixture_text(netns))
    facts = [fixture_text(devices), fixture_text("empty_routes.json")]
    fp.register(LINKS, stdout="\n".join(f.strip() for f in facts))


def test_remove_deletes_the_veth_through_the_end_that_is_left(fp: FakeProcess, runner: SubprocessRunner) -> None:
    host_everything(fp, "tutorial_host_addr.json")
    fp.register(["ip", "link", "del", "Tveth1"])
    assert remove(VethPair("Tveth0", "Tveth1"), runner) is True
    host_everything(fp, "tutorial_host_addr.json")
    fp.register(["ip", "link", "del", "Tveth1"])
    # named the other way round, the end on the host is still the one deleted
    assert remove(VethPair("Tveth1", "Tveth0"), runner) is True
    deletes = [c for c in calls(fp) if c[:3] == ["ip", "link", "del"]]
    assert deletes == [["ip", "link", "del", "Tveth1"]] * 2


def test_remove_of_what_is_gone_changes_nothing(fp: FakeProcess, runner: SubprocessRunner) -> None:
    host_everything(fp, "empty_addr.json")
    fp.register(NETNS, stdout="")
    assert remove(VethPair("Tveth0", "Tveth1"), runner) is False
    assert remove(Namespace("Tdocker0"), runner) is False
    assert all(c[:3] != ["ip", "link", "del"] for c in calls(fp))


def test_remove_leaves_a_conflicting_device_alone(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(LINKS, stdout=fixture_text("conflict_links.json"))
    assert remove(Bridge("Tbr0"), runner) is False  # Tbr0 is a veth here: not ours to delete
    assert len(fp.calls) == 1


def test_objects_in_a_missing_namespace_are_absent(fp: FakeProcess, runner: SubprocessRunner) -> None:
    stderr = 'Cannot open network namespace "Tdocker0": No such file or directory\n'
    fp.register(D0, returncode=255, stderr=stderr)
    assert check(Address("Tveth0", "172.18.0.2/24", netns="Tdocker0"), runner) is False
    fp.register(D0, returncode=255, stderr=stderr)
    assert remove(LinkNetns("Tveth0", "Tdocker0"), runner) is False


def test_other_errors_of_a_read_are_not_swallowed(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(LINKS, returncode=1, stderr="RTNETLINK answers: Invalid argument\n")
    with pytest.raises(CommandError, match="Invalid argument"):
        check(LinkUp("Tbr0"), runner)


def test_bridge_removal_is_the_documents_cleanup(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(LINKS, stdout=fixture_text("tutorial_host_links.json"))
    fp.register(["ip", "link", "set", "Tbr0", "down"])
    fp.register(["brctl", "delbr", "Tbr0"])
    assert remove(Bridge("Tbr0"), runner) is True
    assert calls(fp)[1:] == [["ip", "link", "set", "Tbr0", "down"], ["brctl", "delbr", "Tbr0"]]


def test_restore_puts_a_sysctl_back(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(SYSCTL, stdout="1\n")
    fp.register(["sysctl", "net.ipv4.ip_forward=0"])
    assert restore(Sysctl("net.ipv4.ip_forward", "1"), "0", runner) is True
    fp.register(SYSCTL, stdout="0\n")
    assert restore(Sysctl("net.ipv4.ip_forward", "1"), "0", runner) is False
    with pytest.raises(TypeError, match="restore"):
        remove(Sysctl("net.ipv4.ip_forward", "1"), runner)
