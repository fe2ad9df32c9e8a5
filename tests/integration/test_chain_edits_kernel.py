"""A chain that differs is edited in place on the real kernel: every sequence of versions ends with exactly
the wanted rules, in order, and a version that only adds rules deletes none."""

from __future__ import annotations

import pytest

from netwrap import MemoryStore, OwnedChain, Rule, Sandbox, build
from netwrap.command import Command
from netwrap.host.observe import observe
from netwrap.host.runner import Runner
from netwrap.kinds.chains import edit_lines

pytestmark = pytest.mark.integration

CHAIN = "NW-EDIT"
POOL = [Rule(CHAIN, "ACCEPT", source=f"10.0.0.{n}/32", table="nat") for n in range(6)]
VERSIONS = [[0, 1, 2], [0, 3, 1, 2, 4], [4, 0], [0, 0, 5, 0], [], [2, 1, 0], [2, 1, 0, 3, 4, 5], [5]]


def _listed(runner: Runner) -> list[tuple[str, ...]]:
    out = runner.run(Command("iptables", ("-t", "nat", "-S", CHAIN), mutates=False)).stdout
    return [tuple(line.split()[2:]) for line in out.splitlines() if line.startswith(f"-A {CHAIN} ")]


def _within(short: list[tuple[str, ...]], long: list[tuple[str, ...]]) -> bool:
    rest = iter(long)
    return all(any(item == other for other in rest) for item in short)


def test_every_edit_ends_with_the_wanted_rules_in_order(sandbox: Sandbox) -> None:
    store = MemoryStore()
    for version in VERSIONS:
        chain = OwnedChain(CHAIN, "nat", [POOL[i] for i in version])
        state = observe(sandbox.runner, [chain])
        (command,) = chain.plan_commands(state)
        listed = [r.words for r in state.rules["nat"] if r.chain == CHAIN]
        if CHAIN in state.chains["nat"] and version:
            assert command.input is not None and f":{CHAIN} " not in command.input  # edited, never flushed
            if _within(listed, [POOL[i].body() for i in version]):  # only additions: nothing deleted
                assert "\n-D " not in command.input
        build([chain], sandbox.runner, store, mode="batch")
        assert _listed(sandbox.runner) == [POOL[i].body() for i in version], version


def test_inserting_at_the_end_and_in_between_is_taken_by_the_kernel(sandbox: Sandbox) -> None:
    build([OwnedChain(CHAIN, "nat", [POOL[1], POOL[3]])], sandbox.runner, MemoryStore(), mode="batch")
    lines = edit_lines(CHAIN, _listed(sandbox.runner), [POOL[0], POOL[1], POOL[2], POOL[3], POOL[4]])
    assert [line.split()[0] for line in lines] == ["-I", "-I", "-A"]
    text = "\n".join(["*nat", *lines, "COMMIT"]) + "\n"
    sandbox.runner.run(Command("iptables-restore", ("--noflush",), input=text))
    assert _listed(sandbox.runner) == [POOL[i].body() for i in range(5)]
