"""Chains written whole and jumps placed first, judged on captured iptables-save output (no processes)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import attrs
import pytest

from netwrap import OwnedChain, Rule, ValidationError
from netwrap.engine import serial
from netwrap.engine.batch import Step, batches
from netwrap.engine.build import _removal
from netwrap.engine.plan import assess, plan
from netwrap.engine.state import MemoryStore, Record
from netwrap.host import parse
from netwrap.host.observe import HostState
from netwrap.kinds import NatRule
from netwrap.topology import compose
from netwrap.topology import files as topofile
from netwrap.topology.apply import desired
from tests.conftest import fixture_text
from tests.test_chain_edits import apply_lines

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def saved_state(text: str) -> HostState:
    tables = parse.iptables_save(text)
    return HostState(
        rules={t: tuple(rules) for t, (rules, _) in tables.items()},
        chains={t: tuple(chains) for t, (_, chains) in tables.items()},
    )


def two_networks() -> dict[tuple[str, str], OwnedChain | Rule]:
    """Its chains by (table, name); its jumps by (table, built-in chain), in FORWARD by ("jump", chain entered)."""
    topo = topofile.load(EXAMPLES / "two-networks.toml")
    found: dict[tuple[str, str], OwnedChain | Rule] = {}
    for obj in compose.objects(topo, compose.allocate(topo)):
        if isinstance(obj, OwnedChain):
            found[(obj.table, obj.name)] = obj
        elif isinstance(obj, Rule) and obj.insert:
            found[("jump", obj.jump) if obj.chain == "FORWARD" else (obj.table, obj.chain)] = obj
    return found


FORWARD = ("jump", "NETWRAP-twonets")
ISOLATION = ("jump", "NETWRAP-twonets-ISO")


HOST = saved_state(fixture_text("owned_chains_save.txt"))


def test_chains_as_applied_are_present_rule_for_rule() -> None:
    wanted = two_networks()
    chains = [key for key, obj in wanted.items() if isinstance(obj, OwnedChain)]
    assert len(chains) == 4
    for key in chains:
        verdict = assess(wanted[key], HOST)
        assert verdict.status == "present", verdict.reason


def test_a_jump_pushed_below_a_foreign_rule_is_moved_back_to_the_top() -> None:
    """The user inserted `-s 192.0.2.9/32 -j DROP` first in FORWARD after the apply."""
    jump = two_networks()[FORWARD]
    verdict = assess(jump, HOST)
    assert verdict.status == "missing"
    assert "below -s 192.0.2.9/32 -j DROP" in verdict.reason
    (item,) = plan([jump], HOST).items
    assert [c.shell() for c in item.commands] == [
        "iptables -t filter -D FORWARD -j NETWRAP-twonets",
        "iptables -t filter -I FORWARD 1 -j NETWRAP-twonets",
    ]
    # the isolation jump too is below the user's rule; it goes back first, above the other jump
    (isolation,) = plan([two_networks()[ISOLATION]], HOST).items
    assert [c.shell() for c in isolation.commands] == [
        "iptables -t filter -D FORWARD -j NETWRAP-twonets-ISO",
        "iptables -t filter -I FORWARD 1 -j NETWRAP-twonets-ISO",
    ]
    # the user's rule after ours (the FORWARD -j ACCEPT appended before apply) does not matter
    for entry in ("PREROUTING", "OUTPUT", "POSTROUTING"):
        assert assess(two_networks()[("nat", entry)], HOST).status == "present"


def test_a_jump_goes_below_every_isolation_jump_and_an_isolation_jump_above_every_other() -> None:
    """Another topology's isolation must be passed before this one's accepts, whichever applied first."""
    text = fixture_text("owned_chains_save.txt")
    text = text.replace("-A FORWARD -s 192.0.2.9/32 -j DROP\n", "-A FORWARD -j NETWRAP-other-ISO\n")
    text = text.replace("-A FORWARD -j NETWRAP-twonets\n", "")
    (item,) = plan([two_networks()[FORWARD]], saved_state(text)).items
    assert [c.shell() for c in item.commands] == ["iptables -t filter -I FORWARD 3 -j NETWRAP-twonets"]
    below = text.replace("-A FORWARD -j NETWRAP-other-ISO\n", "-A FORWARD -j NETWRAP-other\n")
    verdict = assess(two_networks()[ISOLATION], saved_state(below))
    assert verdict.status == "missing"
    assert "below -j NETWRAP-other" in verdict.reason


def test_another_netwraps_jump_before_ours_is_no_intruder() -> None:
    text = fixture_text("owned_chains_save.txt").replace(
        "-A FORWARD -s 192.0.2.9/32 -j DROP", "-A FORWARD -j NETWRAP-other-ISO"
    )
    assert assess(two_networks()[FORWARD], saved_state(text)).status == "present"
    assert assess(two_networks()[ISOLATION], saved_state(text)).status == "present"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda rules: rules[1:], "1 missing (first: -o twonets-front -m conntrack"),
        (lambda rules: [*rules, rules[0]], "its rules are in another order"),
        (lambda rules: list(reversed(rules)), "its rules are in another order"),
    ],
)
def test_a_chain_that_differs_in_any_way_is_edited_into_the_wanted_rules(edit: object, reason: str) -> None:
    chain = two_networks()[("filter", "NETWRAP-twonets")]
    assert isinstance(chain, OwnedChain)
    lines = fixture_text("owned_chains_save.txt").splitlines()
    end = lines.index("COMMIT")  # the filter table comes first
    ours = [line for line in lines[:end] if line.startswith("-A NETWRAP-twonets ")]
    assert callable(edit)
    kept = [line for line in lines[:end] if line not in ours]
    text = "\n".join([*kept, *edit(ours), *lines[end:]]) + "\n"
    verdict = assess(chain, saved_state(text))
    assert verdict.status == "missing"
    assert reason in verdict.reason
    (item,) = plan([chain], saved_state(text)).items
    (command,) = item.commands
    assert command.argv == ("iptables-restore", "--noflush")
    assert command.input is not None
    first, *edits, last = command.input.splitlines()
    assert (first, last) == ("*filter", "COMMIT")  # one transaction, the chain not flushed: edited in place
    listed = [tuple(line.split()[2:]) for line in edit(ours)]
    assert apply_lines(listed, edits, "NETWRAP-twonets") == [tuple(line.split()[2:]) for line in ours]


def test_a_chain_that_is_not_there_is_missing_and_a_differing_one_is_still_removed() -> None:
    chain = two_networks()[("filter", "NETWRAP-twonets")]
    assert isinstance(chain, OwnedChain)
    assert assess(chain, HostState(rules={"filter": ()}, chains={"filter": ()})).status == "missing"
    assert assess(chain, HostState()).reason == "the filter table was not read"
    flushed = attrs.evolve(chain, rules=chain.rules[:1])
    assert assess(flushed, HOST).status == "missing"
    assert flushed.exists(HOST)
    commands, note = _removal(flushed, Record(), HOST)
    assert [c.shell() for c in commands] == [
        "iptables -t filter -F NETWRAP-twonets",
        "iptables -t filter -X NETWRAP-twonets",
    ]
    assert note is None
    misplaced = two_networks()[FORWARD]
    assert [c.shell() for c in _removal(misplaced, Record(), HOST)[0]] == [
        "iptables -t filter -D FORWARD -j NETWRAP-twonets"
    ]


def test_batched_a_rewrite_and_a_jump_fix_are_one_transaction() -> None:
    wanted = two_networks()
    chain, jump = wanted[("nat", "NETWRAP-twonets-POST")], wanted[FORWARD]
    steps = [Step(1, c) for c in chain.create_commands()] + [
        Step(2, c) for c in (*jump.delete_commands(), *jump.create_commands())
    ]
    (batch,) = batches(steps)
    assert batch.command.argv == ("iptables-restore", "--noflush")
    assert batch.command.input is not None
    lines = batch.command.input.splitlines()
    assert lines == [
        "*nat",
        ":NETWRAP-twonets-POST - [0:0]",
        "-A NETWRAP-twonets-POST -s 10.10.0.0/24 ! -o twonets-front -j MASQUERADE",
        "-A NETWRAP-twonets-POST -s 127.0.0.0/8 -o twonets-front -j MASQUERADE",
        "-A NETWRAP-twonets-POST -s 10.10.0.0/24 -o twonets-front -m conntrack --ctstate DNAT -j MASQUERADE",
        "COMMIT",
        "*filter",
        "-D FORWARD -j NETWRAP-twonets",
        "-I FORWARD 1 -j NETWRAP-twonets",
        "COMMIT",
    ]
    assert batch.lines == (0, 1, 1, 1, 1, 0, 0, 2, 2, 0)  # each line maps back to its plan item


def test_a_comment_with_spaces_is_quoted_in_the_transaction() -> None:
    rule = Rule("NETWRAP-x", "ACCEPT", in_interface="br0", comment="from the front")
    text = OwnedChain("NETWRAP-x", "filter", (rule,)).restore_text()
    assert '-A NETWRAP-x -i br0 -m comment --comment "from the front" -j ACCEPT' in text.splitlines()


def test_an_owned_chain_round_trips_through_the_record() -> None:
    chain = two_networks()[("nat", "NETWRAP-twonets")]
    again = serial.from_dict(serial.to_dict(chain))
    assert again == chain
    assert again.key == chain.key == "chain:nat:NETWRAP-twonets"


def test_a_rule_of_another_chain_is_refused_naming_the_field() -> None:
    stray = NatRule("NETWRAP-y", "MASQUERADE", source="10.0.0.0/24")
    with pytest.raises(ValidationError, match=r"OwnedChain.rules\[0\].*belongs to nat NETWRAP-y"):
        OwnedChain("NETWRAP-x", "nat", (stray,))
    with pytest.raises(ValidationError, match=r"OwnedChain.name.*built-in"):
        OwnedChain("FORWARD", "filter")


def test_a_long_topology_name_gives_chain_names_iptables_accepts() -> None:
    topo = topofile.loads(f'name = "{"a" * 20}"\n[networks.n]\nsubnet = "10.1.0.0/24"\n')
    names = {o.name for o in compose.objects(topo, compose.allocate(topo)) if isinstance(o, OwnedChain)}
    assert all(len(name) <= 28 for name in names), names
    assert len(names) == 3  # one nat and filter name, its -ISO and its -POST


def test_a_shared_object_concerns_the_containers_whose_devices_or_addresses_it_names() -> None:
    """What ``status`` counts on a container's path: the jumps for every one, a rule or chain when it names it."""
    wanted = two_networks()
    web = (frozenset({"v0-web", "twonets-front"}), frozenset({ipaddress.IPv4Address("10.10.0.2")}))
    db = (frozenset({"v0-db", "twonets-back"}), frozenset({ipaddress.IPv4Address("10.20.0.2")}))
    for jump in (FORWARD, ISOLATION, ("nat", "PREROUTING"), ("nat", "POSTROUTING")):
        assert wanted[jump].concerns(*web) and wanted[jump].concerns(*db), jump
    ports = wanted[("nat", "NETWRAP-twonets")]  # web's published port only
    assert ports.concerns(*web)
    assert not ports.concerns(*db)
    post = wanted[("nat", "NETWRAP-twonets-POST")]  # front has NAT, back (nat = false) has none
    assert post.concerns(*web)
    assert not post.concerns(*db)
    assert wanted[("filter", "NETWRAP-twonets")].concerns(*db)
    assert not OwnedChain("NETWRAP-x", "nat").concerns(*web)  # an empty chain concerns nobody
    assert Rule("NETWRAP-x", "ACCEPT", destination="10.10.0.2").concerns(*web)
    assert not Rule("NETWRAP-x", "ACCEPT", destination="10.10.0.0/24").concerns(*web)  # a range names no one


def test_a_container_that_comes_or_goes_changes_the_nat_table_alone() -> None:
    """Published ports are let through the filter chain by one rule per network (what was DNAT'd into its
    bridge), so that a container's ADD or DEL is one transaction for the kernel to wait for, not two."""
    base = '[networks.n]\nsubnet = "10.7.0.0/24"\nsubnet6 = "fd00:7::/64"\n[containers.a]\nnetworks = ["n"]\n'

    def chains(text: str) -> dict[tuple[str, str], OwnedChain]:
        objects, _ = desired(topofile.loads('name = "t"\n' + text, "t.toml"), MemoryStore())
        return {(o.where, o.name): o for o in objects if isinstance(o, OwnedChain)}

    one = chains(base + 'ports = ["8080:80"]\n')
    two = chains(base + 'ports = ["8080:80"]\n[containers.b]\nnetworks = ["n"]\nports = ["8081:80"]\n')
    changed = {where for key, chain in two.items() if one[key] != chain for where in [key[0]]}
    assert changed == {"nat", "ip6:nat"}
    accepts = [" ".join(rule.body()) for rule in two[("filter", "NETWRAP-t")].rules if rule.jump == "ACCEPT"]
    assert "-o t-n -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT" in accepts
