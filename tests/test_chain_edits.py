"""A chain that differs is edited in place: the lines, applied as iptables applies them, give exactly the
wanted rules, and adding rules never deletes one (no flush)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netwrap.host.observe import HostState
from netwrap.host.parse import IptablesRule
from netwrap.kinds import OwnedChain, Rule
from netwrap.kinds.chains import edit_lines

CHAIN = "NW-TEST"
POOL = [Rule(CHAIN, "ACCEPT", source=f"10.0.0.{n}/32", table="nat") for n in range(6)]


def apply_lines(listed: list[tuple[str, ...]], lines: list[str], chain: str = CHAIN) -> list[tuple[str, ...]]:
    """What iptables does with the lines, one after another (-D n, -I n, -A), checking each position."""
    result = list(listed)
    for line in lines:
        words = line.replace('"', "").split()
        verb = words[0]
        assert words[1] == chain
        if verb == "-D":
            position = int(words[2])
            assert 1 <= position <= len(result), line
            del result[position - 1]
        elif verb == "-I":
            position = int(words[2])
            assert 1 <= position <= len(result), line  # iptables refuses an index past the end: -A appends
            result.insert(position - 1, tuple(words[3:]))
        else:
            assert verb == "-A", line
            result.append(tuple(words[2:]))
    return result


@settings(max_examples=300)
@given(
    before=st.lists(st.integers(0, len(POOL) - 1), max_size=8),
    after=st.lists(st.integers(0, len(POOL) - 1), max_size=8),
)
def test_edit_lines_turn_any_listing_into_the_wanted_rules(before: list[int], after: list[int]) -> None:
    listed = [POOL[i].body() for i in before]
    wanted = [POOL[i] for i in after]
    lines = edit_lines(CHAIN, listed, wanted)
    assert apply_lines(listed, lines) == [rule.body() for rule in wanted]
    if listed == [rule.body() for rule in wanted]:
        assert lines == []


@settings(max_examples=300)
@given(st.lists(st.integers(0, len(POOL) - 1), max_size=8), st.data())
def test_adding_rules_deletes_none(after: list[int], data: st.DataObject) -> None:
    kept = sorted(data.draw(st.sets(st.integers(0, max(len(after) - 1, 0)))) & set(range(len(after))))
    listed = [POOL[after[i]].body() for i in kept]  # a subsequence of what is wanted: only additions
    lines = edit_lines(CHAIN, listed, [POOL[i] for i in after])
    assert not any(line.startswith("-D") for line in lines)


def _state(rules: list[Rule]) -> HostState:
    return HostState(rules={"nat": tuple(IptablesRule(CHAIN, rule.body()) for rule in rules)}, chains={"nat": (CHAIN,)})


def test_a_chain_that_lacks_a_rule_gets_it_inserted_at_its_place() -> None:
    chain = OwnedChain(CHAIN, "nat", [POOL[0], POOL[1], POOL[2]])
    (command,) = chain.plan_commands(_state([POOL[0], POOL[2]]))
    assert command.argv == ("iptables-restore", "--noflush")
    assert command.input == "*nat\n-I NW-TEST 2 -s 10.0.0.1/32 -j ACCEPT\nCOMMIT\n"


def test_a_chain_with_a_rule_too_many_loses_it_by_position() -> None:
    chain = OwnedChain(CHAIN, "nat", [POOL[0], POOL[2]])
    (command,) = chain.plan_commands(_state([POOL[0], POOL[1], POOL[2]]))
    assert command.input == "*nat\n-D NW-TEST 2\nCOMMIT\n"


def test_a_chain_not_there_or_not_read_is_written_whole() -> None:
    chain = OwnedChain(CHAIN, "nat", [POOL[0]])
    whole = chain.create_commands()
    assert chain.plan_commands(HostState()) == whole
    assert chain.plan_commands(HostState(rules={"nat": ()}, chains={"nat": ()})) == whole
    assert whole[0].input is not None and f":{CHAIN} - [0:0]" in whole[0].input
