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
    Route,
    Sysctl,
    VethPair,
    check,
    ensure,
    remove,
    restore,
)
from netwrap.runner import SubprocessRunner
from tests.conftest import fixture_text

LINKS = ["ip", "-d", "-json", "link", "show"]
ADDRS = ["ip", "-json", "addr", "show"]
IN_DOCKER0 = ["ip", "netns", "exec", "Tdocker0"]


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


@pytest.mark.parametrize(
    ("obj", "check_argv", "fixture"),
    [
        (VethPair("Tveth0", "Tveth1"), LINKS, "tutorial_host_links.json"),
        (LinkNetns("Tveth0", "Tdocker0"), IN_DOCKER0 + LINKS, "tutorial_docker0_links.json"),
        (Bridge("Tbr0"), LINKS, "tutorial_host_links.json"),
        (Bridge("Tbr0", tool="ip"), LINKS, "tutorial_host_links.json"),
        (BridgePort("Tbr0", "Tveth3"), LINKS, "tutorial_host_links.json"),
        (Address("Tveth0", "172.18.0.2/24", netns="Tdocker0"), IN_DOCKER0 + ADDRS, "tutorial_docker0_addr.json"),
        (Address("Tbr0", "172.18.0.1/24"), ADDRS, "tutorial_host_addr.json"),
        (LinkUp("Tveth0", netns="Tdocker0"), IN_DOCKER0 + LINKS, "tutorial_docker0_links.json"),
        (LinkUp("Tbr0"), LINKS, "tutorial_host_links.json"),
        (
            Route("default", "172.18.0.1", "Tveth0", netns="Tdocker0"),
            [*IN_DOCKER0, "ip", "-json", "route", "show"],
            "tutorial_docker0_routes.json",
        ),
        (Sysctl("net.ipv4.ip_forward", "1"), ["sysctl", "-n", "net.ipv4.ip_forward"], "ip_forward_1.txt"),
    ],
)
def test_ensure_runs_only_the_check_when_present(
    fp: FakeProcess, runner: SubprocessRunner, obj: object, check_argv: list[str], fixture: str
) -> None:
    fp.register(check_argv, stdout=fixture_text(fixture))
    assert ensure(obj, runner) is False  # type: ignore[arg-type]
    assert calls(fp) == [check_argv]


@pytest.mark.parametrize(
    ("obj", "check_argv", "fixture"),
    [
        (VethPair("Tveth0", "Tveth1"), LINKS, "empty_links.json"),
        (Bridge("Tbr0"), LINKS, "empty_links.json"),
        (BridgePort("Tbr0", "Tveth1"), LINKS, "empty_links.json"),
        (Address("Tbr0", "172.18.0.1/24"), ADDRS, "empty_addr.json"),
        (LinkUp("lo"), LINKS, "empty_links.json"),
        (Route("default", "172.18.0.1", "Tveth0"), ["ip", "-json", "route", "show"], "empty_routes.json"),
        (Sysctl("net.ipv4.ip_forward", "1"), ["sysctl", "-n", "net.ipv4.ip_forward"], "ip_forward_0.txt"),
    ],
)
def test_ensure_creates_when_missing(
    fp: FakeProcess, runner: SubprocessRunner, obj: Bridge, check_argv: list[str], fixture: str
) -> None:
    fp.register(check_argv, stdout=fixture_text(fixture))
    creates = [list(c.argv) for c in obj.create_commands()]
    for argv in creates:
        fp.register(argv)
    assert ensure(obj, runner) is True
    assert calls(fp) == [check_argv, *creates]


def test_nat_rule_check_exit_1_means_absent(fp: FakeProcess, runner: SubprocessRunner) -> None:
    rule = NatRule.masquerade("172.18.0.0/24", not_out="Tbr0")
    body = ["POSTROUTING", "-s", "172.18.0.0/24", "!", "-o", "Tbr0", "-j", "MASQUERADE"]
    absent = "iptables: Bad rule (does a matching rule exist in that chain?).\n"
    fp.register(["iptables", "-t", "nat", "-C", *body], returncode=1, stderr=absent)
    fp.register(["iptables", "-t", "nat", "-A", *body])
    assert ensure(rule, runner) is True
    fp.register(["iptables", "-t", "nat", "-C", *body])
    assert ensure(rule, runner) is False
    assert calls(fp)[-1][3] == "-C"


def test_nat_rule_check_other_exit_code_is_an_error(fp: FakeProcess, runner: SubprocessRunner) -> None:
    rule = NatRule.masquerade("172.18.0.0/24", not_out="Tbr0")
    fp.register(["iptables", fp.any()], returncode=2, stderr="iptables v1.8.9 (nf_tables): unknown option\n")
    with pytest.raises(CommandError) as caught:
        ensure(rule, runner)
    assert caught.value.returncode == 2
    assert caught.value.argv[:4] == ("iptables", "-t", "nat", "-C")
    assert "unknown option" in caught.value.stderr


@pytest.mark.parametrize(
    ("obj", "check_argv", "fixture", "message"),
    [
        (Bridge("Tbr0"), LINKS, "conflict_links.json", "Tbr0 exists on the host but is a veth, not a bridge"),
        (BridgePort("Tbr0", "Tveth1"), LINKS, "conflict_links.json", "Tveth1 is already a port of Tother"),
        (VethPair("Tveth0", "Tveth1"), LINKS, "conflict_links.json", "Tveth0 exists on the host but its peer is"),
        (VethPair("Tother", "Tveth9"), LINKS, "conflict_links.json", "Tother exists on the host but is a bridge"),
        (Address("Tbr0", "172.18.0.1/24"), ADDRS, "conflict_addr.json", "172.18.0.1 is already on Tother"),
    ],
)
def test_conflicts_are_errors_and_nothing_runs(
    fp: FakeProcess, runner: SubprocessRunner, obj: Bridge, check_argv: list[str], fixture: str, message: str
) -> None:
    fp.register(check_argv, stdout=fixture_text(fixture))
    with pytest.raises(ConflictError, match=message):
        ensure(obj, runner)
    assert calls(fp) == [check_argv]


def test_remove_deletes_the_veth_through_the_end_that_is_left(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(LINKS, stdout=fixture_text("tutorial_host_links.json"))
    fp.register(["ip", "link", "del", "Tveth1"])
    assert remove(VethPair("Tveth0", "Tveth1"), runner) is True
    fp.register(LINKS, stdout=fixture_text("tutorial_host_links.json"))
    fp.register(["ip", "link", "del", "Tveth1"])
    # named the other way round, the end on the host is still the one deleted
    assert remove(VethPair("Tveth1", "Tveth0"), runner) is True
    assert calls(fp)[1] == calls(fp)[3] == ["ip", "link", "del", "Tveth1"]


def test_remove_of_what_is_gone_changes_nothing(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(LINKS, stdout=fixture_text("empty_links.json"))
    fp.register(["ip", "netns", "list"], stdout="")
    assert remove(VethPair("Tveth0", "Tveth1"), runner) is False
    assert remove(Namespace("Tdocker0"), runner) is False
    assert len(fp.calls) == 2


def test_objects_in_a_missing_namespace_are_absent(fp: FakeProcess, runner: SubprocessRunner) -> None:
    stderr = 'Cannot open network namespace "Tdocker0": No such file or directory\n'
    fp.register([*IN_DOCKER0, *ADDRS], returncode=255, stderr=stderr)
    assert check(Address("Tveth0", "172.18.0.2/24", netns="Tdocker0"), runner) is False
    fp.register([*IN_DOCKER0, *LINKS], returncode=255, stderr=stderr)
    assert remove(LinkNetns("Tveth0", "Tdocker0"), runner) is False


def test_bridge_removal_is_the_documents_cleanup(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(LINKS, stdout=fixture_text("tutorial_host_links.json"))
    fp.register(["ip", "link", "set", "Tbr0", "down"])
    fp.register(["brctl", "delbr", "Tbr0"])
    assert remove(Bridge("Tbr0"), runner) is True
    assert calls(fp)[1:] == [["ip", "link", "set", "Tbr0", "down"], ["brctl", "delbr", "Tbr0"]]


def test_restore_puts_a_sysctl_back(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["sysctl", "-n", "net.ipv4.ip_forward"], stdout="1\n")
    fp.register(["sysctl", "net.ipv4.ip_forward=0"])
    assert restore(Sysctl("net.ipv4.ip_forward", "1"), "0", runner) is True
    fp.register(["sysctl", "-n", "net.ipv4.ip_forward"], stdout="0\n")
    assert restore(Sysctl("net.ipv4.ip_forward", "1"), "0", runner) is False
    with pytest.raises(TypeError, match="restore"):
        remove(Sysctl("net.ipv4.ip_forward", "1"), runner)
