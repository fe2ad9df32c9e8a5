"""ip6tables: a rule's addresses pick its family and its tool; IPv6 tables are read with ip6tables-save and kept
apart from IPv4's; batches make one transaction per family; bad IPv6 values are refused naming the field."""

from __future__ import annotations

import ipaddress

import pytest
from pytest_subprocess import FakeProcess

from netwrap.command import Command
from netwrap.engine.batch import Step, batches
from netwrap.engine.plan import plan
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, observe
from netwrap.host.parse import iptables_save
from netwrap.host.runner import SubprocessRunner
from netwrap.host.snapshot import table
from netwrap.kinds import NatRule, OwnedChain, Rule
from netwrap.kinds.base import Claim
from tests.conftest import fixture_text

SAVED = fixture_text("ip6tables_save.txt")


def _state() -> HostState:
    every = iptables_save(SAVED)
    return HostState(
        rules={f"ip6:{t}": tuple(rules) for t, (rules, _) in every.items()},
        chains={f"ip6:{t}": tuple(chains) for t, (_, chains) in every.items()},
    )


PUBLISHED = Rule(
    "NW6", "DNAT", destination="2001:db8::1/128", protocol="tcp", dport=8080, to="[fd00:10::2]:80",
    dst_type="LOCAL", table="nat",
)  # fmt: skip


def test_an_ipv6_rule_is_ip6tables_and_reads_as_ip6tables_prints_it() -> None:
    assert PUBLISHED.family == 6
    assert PUBLISHED.where == "ip6:nat"
    assert PUBLISHED.key.startswith("ip6:nat:NW6:")
    assert PUBLISHED.create_commands()[0].argv[0] == "ip6tables"
    assert PUBLISHED.assess(_state()).status == "present"
    masquerade = NatRule.masquerade("fd00:10::/64", not_out="br0")
    assert masquerade.family == 6 and masquerade.assess(_state()).status == "present"
    bare = Rule("NW6", "DNAT", protocol="tcp", dport=8081, to="fd00:10::3", table="nat")
    assert bare.assess(_state()).status == "present"


def test_the_same_rule_in_each_family_is_two_objects() -> None:
    v4 = Rule("PREROUTING", "NW6", dst_type="LOCAL", table="nat", insert=True)
    v6 = Rule("PREROUTING", "NW6", dst_type="LOCAL", table="nat", insert=True, family=6)
    assert v4.family == 4 and v6.family == 6
    assert v4.body() == v6.body() and v4.key != v6.key and v4 != v6
    assert v6.assess(_state()).status == "present"
    assert v4.assess(_state()).status == "missing"  # the IPv4 table was not read: nothing of IPv6's counts


@pytest.mark.parametrize(
    ("given", "normal"),
    [("[fd00:10::2]:80", "[fd00:10::2]:80"), ("fd00:10::3", "fd00:10::3"), ("[FD00::0002]:8080", "[fd00::2]:8080")],
)
def test_ipv6_dnat_targets_are_written_as_ip6tables_prints_them(given: str, normal: str) -> None:
    assert Rule("NW6", "DNAT", protocol="tcp", dport=1, to=given, table="nat").to == normal


@pytest.mark.parametrize(
    ("build", "field", "reason"),
    [
        (lambda: Rule("X", "ACCEPT", source="10.0.0.0/8", destination="fd00::/64"), "Rule.source", "mixes"),
        (lambda: Rule("X", "DNAT", source="10.0.0.0/8", to="[fd00::2]:80", table="nat"), "Rule.source", "mixes"),
        (lambda: Rule("X", "ACCEPT", source="fd00::1/64"), "Rule.source", "host bits"),
        (lambda: Rule("X", "ACCEPT", source="fe80::1%eth0/128"), "Rule.source", ""),
        (lambda: Rule("X", "DNAT", to="[fd00::2]:", table="nat"), "Rule.to", "port"),
        (lambda: Rule("X", "DNAT", to="[fd00::2]:http", table="nat"), "Rule.to", "number"),
        (lambda: Rule("X", "DNAT", to="[fd00::2", table="nat"), "Rule.to", ""),
        (lambda: Rule("X", "ACCEPT", family=5), "Rule.family", "4 (iptables) or 6"),
        (lambda: Rule("X", "ACCEPT", source="10.0.0.0/8", family=6), "Rule.source", "mixes"),
        (lambda: OwnedChain("NW6", "nat", [Rule("NW6", "MASQUERADE", table="nat")], family=6), r"rules\[0\]", "IPv4"),
    ],
)
def test_bad_ipv6_rule_values_are_refused_naming_the_field(build: object, field: str, reason: str) -> None:
    assert callable(build)
    with pytest.raises(ValidationError, match=field) as caught:
        build()
    assert reason in str(caught.value)


def test_an_ipv6_chain_is_ip6tables_restore_and_edited_in_place() -> None:
    rules = [
        PUBLISHED,
        Rule("NW6", "DNAT", protocol="tcp", dport=8082, to="[fd00:10::4]:80", table="nat"),
        Rule("NW6", "DNAT", protocol="tcp", dport=8081, to="fd00:10::3", table="nat"),
    ]
    chain = OwnedChain("NW6", "nat", rules, family=6)
    assert chain.key == "chain:ip6:nat:NW6"
    assert chain.create_commands()[0].argv == ("ip6tables-restore", "--noflush")
    (item,) = plan([chain], _state()).items
    assert item.status == "missing"
    (command,) = item.commands
    assert command.argv == ("ip6tables-restore", "--noflush")
    inserted = "-I NW6 2 -p tcp -m tcp --dport 8082 -j DNAT --to-destination [fd00:10::4]:80"
    assert command.input == f"*nat\n{inserted}\nCOMMIT\n"
    assert [c.argv for c in chain.delete_commands()] == [
        ("ip6tables", "-t", "nat", "-F", "NW6"),
        ("ip6tables", "-t", "nat", "-X", "NW6"),
    ]


def test_batched_each_family_is_its_own_transaction() -> None:
    v4 = NatRule.masquerade("10.0.0.0/24", not_out="br0")
    v6 = NatRule.masquerade("fd00:10::/64", not_out="br0")
    chain = OwnedChain("NW6", "nat", [PUBLISHED], family=6)
    steps = [Step(1, v4.create_commands()[0]), Step(2, v6.create_commands()[0]), Step(3, chain.create_commands()[0])]
    found = batches(steps)
    assert [b.command.argv for b in found] == [("iptables-restore", "--noflush"), ("ip6tables-restore", "--noflush")]
    assert found[1].command.input is not None
    assert found[1].command.input.splitlines() == [
        "*nat",
        "-A POSTROUTING -s fd00:10::/64 ! -o br0 -j MASQUERADE",
        ":NW6 - [0:0]",
        "-A NW6 " + " ".join(PUBLISHED.body()),
        "COMMIT",
    ]
    assert found[1].lines == (0, 2, 3, 3, 0)


def test_ipv6_tables_are_read_with_ip6tables_save(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["ip6tables-save"], stdout=SAVED)
    fp.register(["iptables", "-t", "nat", "-S"], stdout="-P PREROUTING ACCEPT\n")
    chain = OwnedChain("NW6", "nat", [PUBLISHED], family=6)
    state = observe(runner, [chain, NatRule.masquerade("fd00:10::/64", not_out="br0"),
                             Rule("FORWARD", "DROP", family=6), NatRule.masquerade("10.0.0.0/8")])  # fmt: skip
    assert set(state.rules) == {"ip6:nat", "ip6:filter", "nat"}
    assert state.chains["ip6:nat"] == ("NW6",) and state.rules["nat"] == ()
    assert fp.call_count(["ip6tables-save"]) == 1


def test_ports_of_two_families_are_two_ports() -> None:
    v4, v6 = Claim.port("tcp", None, 8080), Claim.port("tcp", None, 8080, 6)
    assert not v4.clashes(v6) and not v6.clashes(v4)
    assert v6.clashes(Claim.port("tcp", ipaddress.IPv6Network("2001:db8::1/128"), 8080, 6))
    assert not v6.clashes(Claim.port("tcp", None, 8081, 6))
    assert v6.describe() == "host port 8080/tcp (IPv6)"
    assert Claim("subnet", "", "fd00::/64").clashes(Claim("subnet", "", "fd00::/48"))
    assert not Claim("subnet", "", "fd00::/64").clashes(Claim("subnet", "", "10.0.0.0/8"))


def test_a_snapshot_reads_ip6tables_save_tables() -> None:
    nat = table(SAVED.split("*nat", 1)[1].join(["*nat", ""]))
    assert ("NW6", "-", (f"-A NW6 {' '.join(PUBLISHED.body())}", "-A NW6 " + " ".join(
        Rule("NW6", "DNAT", protocol="tcp", dport=8081, to="fd00:10::3", table="nat").body()))) in nat  # fmt: skip


def test_commands_are_argv_of_the_family_tool() -> None:
    assert Rule("FORWARD", "DROP", source="fd00::/64").check_command() == Command(
        "ip6tables", ("-t", "filter", "-C", "FORWARD", "-s", "fd00::/64", "-j", "DROP"), mutates=False,
        ok_codes=frozenset({0, 1}),
    )  # fmt: skip
