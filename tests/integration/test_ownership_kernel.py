"""Conflicts, crashes and ownership on the real kernel, each test in its own sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netwrap import ConflictError, Sandbox, StateFile, build, teardown, tutorial
from netwrap.command import Command
from netwrap.engine.clean import clean, survey
from netwrap.engine.state import Writer
from netwrap.host import snapshot
from tests.integration.test_tutorial_kernel import cli, plus_lines
from tests.test_tutorial import DOCUMENT

pytestmark = pytest.mark.integration

MASQUERADE = ("-s", "172.18.0.0/24", "!", "-o", "Tbr0", "-j", "MASQUERADE")


def sh(sandbox: Sandbox, tool: str, *args: str) -> None:
    sandbox.runner.run(Command(tool, args))


def nat_rules(sandbox: Sandbox) -> list[str]:
    out = sandbox.runner.run(Command("iptables", ("-t", "nat", "-S"), mutates=False)).stdout
    return [line for line in out.splitlines() if line.startswith("-A ")]


CONFLICTS: dict[str, tuple[list[tuple[str, ...]], str]] = {
    "Tbr0 is a veth": (
        [("ip", "link", "add", "Tbr0", "type", "veth", "peer", "name", "Tbrx")],
        "Tbr0 exists on the host but is a veth, not a bridge",
    ),
    "Tveth1 has another peer, in another bridge": (
        [
            ("ip", "link", "add", "Tother", "type", "bridge"),
            ("ip", "link", "add", "Tveth1", "type", "veth", "peer", "name", "Tvethy"),
            ("ip", "link", "set", "Tveth1", "master", "Tother"),
        ],
        "Tveth1 exists on the host but its peer is Tvethy, not Tveth0",
    ),
    "Tveth0 has another peer": (
        [("ip", "link", "add", "Tveth0", "type", "veth", "peer", "name", "Tvethz")],
        "Tveth0 exists on the host but its peer is Tvethz, not Tveth1",
    ),
    "the gateway address is taken": (
        [("ip", "link", "add", "Tother", "type", "bridge"), ("ip", "addr", "add", "172.18.0.1/24", "dev", "Tother")],
        "172.18.0.1 is already on Tother on the host, not on Tbr0",
    ),
    "port 80 is published elsewhere": (
        [("iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "80",
          "-j", "DNAT", "--to-destination", "192.0.2.80:80")],
        "tcp port 80 is already published to 192.0.2.80:80",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CONFLICTS))
def test_a_conflict_stops_up_with_nothing_changed(sandbox: Sandbox, tmp_path: Path, case: str) -> None:
    setup, message = CONFLICTS[case]
    for argv in setup:
        sh(sandbox, *argv)
    before = snapshot.take(sandbox.runner)
    store = StateFile(tmp_path / "t.json")
    with pytest.raises(ConflictError, match=message):
        build(tutorial.objects(), sandbox.runner, store)
    assert snapshot.take(sandbox.runner) == before
    assert store.load() is None


def test_a_port_of_another_bridge_is_a_conflict(sandbox: Sandbox, tmp_path: Path) -> None:
    """Tveth1 made as the tutorial makes it, but plugged into someone else's bridge."""
    sh(sandbox, "ip", "link", "add", "Tother", "type", "bridge")
    sh(sandbox, "ip", "link", "add", "Tveth0", "type", "veth", "peer", "name", "Tveth1")
    sh(sandbox, "ip", "link", "set", "Tveth1", "master", "Tother")
    before = snapshot.take(sandbox.runner)
    with pytest.raises(ConflictError, match="Tveth1 is already a port of Tother, not of Tbr0"):
        build(tutorial.objects(), sandbox.runner, StateFile(tmp_path / "t.json"))
    assert snapshot.take(sandbox.runner) == before


def start_up(sandbox: Sandbox, state: Path) -> subprocess.Popen[str]:
    argv = [*sandbox.prefix, sys.executable, "-m", "netwrap", "tutorial", "up", "--bridge-tool", "brctl",
            "--state-dir", str(state)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def kill_after(process: subprocess.Popen[str], lines: int) -> list[str]:
    """Read `+ ` lines until ``lines`` were printed, then SIGKILL: the last command may or may not have run."""
    assert process.stdout is not None
    printed: list[str] = []
    for line in process.stdout:
        if line.startswith("+ "):
            printed.append(line[2:].rstrip("\n"))
        if len(printed) == lines:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    process.stdout.close()
    return printed


@pytest.mark.parametrize("point", [1, 4, 7, 10, 17, 20, 21])
def test_up_killed_in_the_middle_converges_and_down_cleans(sandbox: Sandbox, tmp_path: Path, point: int) -> None:
    before = snapshot.take(sandbox.runner)
    first = kill_after(start_up(sandbox, tmp_path), point)
    assert first == DOCUMENT[:point]
    (leftover,) = survey(tmp_path)
    assert leftover.status == "crashed"

    again = cli(sandbox, "tutorial", "up", "--bridge-tool", "brctl", "--state-dir", str(tmp_path))
    assert again.returncode == 0, again.stderr
    rest = plus_lines(again.stdout)
    assert rest in (DOCUMENT[point:], DOCUMENT[point - 1 :])
    third = cli(sandbox, "tutorial", "up", "--state-dir", str(tmp_path))
    assert plus_lines(third.stdout) == []
    assert survey(tmp_path)[0].status == "kept"

    down = cli(sandbox, "tutorial", "down", "--state-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert snapshot.take(sandbox.runner) == before


@pytest.mark.parametrize("point", [3, 9, 22])
def test_clean_removes_what_a_killed_up_left(sandbox: Sandbox, tmp_path: Path, point: int) -> None:
    before = snapshot.take(sandbox.runner)
    kill_after(start_up(sandbox, tmp_path), point)
    dry = cli(sandbox, "clean", "--dry-run", "--state-dir", str(tmp_path))
    assert dry.returncode == 0
    assert "tutorial: crashed" in dry.stdout
    assert snapshot.take(sandbox.runner) != before  # the dry run changed nothing
    cleaned = cli(sandbox, "clean", "--state-dir", str(tmp_path))
    assert cleaned.returncode == 0, cleaned.stderr
    assert snapshot.take(sandbox.runner) == before
    assert survey(tmp_path) == []


def test_foreign_objects_survive_down_and_clean(sandbox: Sandbox, tmp_path: Path) -> None:
    """A user's own bridge and their own MASQUERADE rule, identical to step 21, are not netwrap's."""
    sh(sandbox, "ip", "link", "add", "Tforeign", "type", "bridge")
    sh(sandbox, "iptables", "-t", "nat", "-A", "POSTROUTING", *MASQUERADE)
    before = snapshot.take(sandbox.runner)
    store = StateFile.in_dir(tmp_path, "tutorial")

    outcome = build(tutorial.objects(), sandbox.runner, store)
    assert "nat:POSTROUTING:" + " ".join(MASQUERADE) not in outcome.changed  # it was there: not ours
    teardown(sandbox.runner, store)
    assert snapshot.take(sandbox.runner) == before

    build(tutorial.objects(), sandbox.runner, store)
    record = store.load()
    assert record is not None
    record.complete = False  # as if the run had died
    record.writer = Writer(2**22 + 7, 1)  # a process that is not running
    store.save(record)
    assert [item.status for item, _ in clean(sandbox.runner, tmp_path)] == ["crashed"]
    assert snapshot.take(sandbox.runner) == before


def test_an_identical_rule_added_after_up_survives_down(sandbox: Sandbox, tmp_path: Path) -> None:
    store = StateFile(tmp_path / "t.json")
    build(tutorial.objects(), sandbox.runner, store)
    sh(sandbox, "iptables", "-t", "nat", "-A", "POSTROUTING", *MASQUERADE)  # the user's, after ours
    assert nat_rules(sandbox).count("-A POSTROUTING " + " ".join(MASQUERADE)) == 2
    teardown(sandbox.runner, store)
    assert nat_rules(sandbox) == ["-A POSTROUTING " + " ".join(MASQUERADE)]
