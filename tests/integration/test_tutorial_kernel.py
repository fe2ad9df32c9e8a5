"""The tutorial on the real kernel, each test in its own throwaway sandbox.

Every test here runs inside a fresh network namespace with a private /run
(see netwrap.host.sandbox); the machine's own network is never changed, and all
traffic goes to addresses inside namespaces the test made.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from netwrap import MemoryStore, NatRule, Sandbox, SandboxError, StateFile, build, remove, teardown, tutorial
from netwrap.command import Command
from netwrap.host import snapshot
from netwrap.host.runner import Result, SubprocessRunner
from netwrap.tutorial.verify import verify
from tests.conftest import Counting, require_root
from tests.test_tutorial import DOCUMENT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("tool", ["brctl", "ip"])
def test_up_verify_up_again_down(sandbox: Sandbox, tool: str) -> None:
    before = snapshot.take(sandbox.runner)
    store = MemoryStore()
    objects = tutorial.objects(tool)  # type: ignore[arg-type]

    first = Counting(sandbox.runner)
    build(objects, first, store)
    expected = DOCUMENT if tool == "brctl" else None
    if expected is not None:
        assert first.mutating_shells == expected
    assert len(first.mutating) == 22

    results = verify(sandbox.runner)
    assert [(r.number, r.passed) for r in results] == [(1, True), (2, True), (3, True), (4, True)], results

    again = Counting(sandbox.runner)
    assert build(objects, again, store).changed == ()
    assert again.mutating_shells == []

    teardown(sandbox.runner, store)
    after = snapshot.take(sandbox.runner)
    assert before.differences(after) == []


def test_scenarios_fail_without_the_nat_rules(sandbox: Sandbox) -> None:
    """The checks can fail: without MASQUERADE the outside is unreachable; without DNAT nothing answers."""
    build(tutorial.objects(), sandbox.runner, MemoryStore())
    masquerade, dnat = (s.obj for s in tutorial.steps() if isinstance(s.obj, NatRule))
    assert remove(masquerade, sandbox.runner)
    passed = {r.number: r.passed for r in verify(sandbox.runner)}
    assert passed == {1: True, 2: True, 3: False, 4: True}
    assert remove(dnat, sandbox.runner)
    results = verify(sandbox.runner)
    assert {r.number: r.passed for r in results} == {1: True, 2: True, 3: False, 4: False}
    assert "MASQUERADE" in results[2].detail and "DNAT" in results[3].detail


def test_verify_on_an_empty_host_fails_cleanly_and_leaves_nothing(sandbox: Sandbox) -> None:
    before = snapshot.take(sandbox.runner)
    results = verify(sandbox.runner)
    assert not any(r.passed for r in results)
    assert "Cannot open network namespace" in results[0].detail
    assert snapshot.take(sandbox.runner) == before


def test_a_second_down_is_a_no_op(sandbox: Sandbox, tmp_path: Path) -> None:
    store = StateFile(tmp_path / "t.json")
    build(tutorial.objects(), sandbox.runner, store)
    teardown(sandbox.runner, store)
    second = Counting(sandbox.runner)
    assert teardown(second, store).changed == ()
    assert second.mutating_shells == []


def test_down_keeps_ip_forward_that_was_already_on(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.runner.run(Command("sysctl", ("net.ipv4.ip_forward=1",)))
    before = snapshot.take(sandbox.runner)
    store = StateFile(tmp_path / "t.json")
    build(tutorial.objects(), sandbox.runner, store)
    teardown(sandbox.runner, store)
    assert snapshot.take(sandbox.runner) == before
    assert before.ip_forward == "1"


# --- the command line, run inside the sandbox ------------------------------------------------


def cli(sandbox: Sandbox, *args: str) -> Result:
    command = Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset({0, 1, 2}))
    return sandbox.runner.run(command)


def plus_lines(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("+ ")]


def test_cli_up_up_verify_down_down(sandbox: Sandbox, tmp_path: Path) -> None:
    state = ("--state-dir", str(tmp_path))
    before = snapshot.take(sandbox.runner)

    up = cli(sandbox, "tutorial", "up", *state)
    assert up.returncode == 0, up.stderr
    assert plus_lines(up.stdout) == DOCUMENT
    assert not [line for line in up.stdout.splitlines() if not line.startswith("+ ")]

    again = cli(sandbox, "tutorial", "up", *state)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert "nothing to do" in again.stderr

    verbose = cli(sandbox, "tutorial", "up", "-v", *state)
    assert plus_lines(verbose.stdout) == []
    assert "# ip netns list" in verbose.stdout.splitlines()

    checked = cli(sandbox, "tutorial", "verify", *state)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 of 4 scenarios passed" in checked.stdout

    down = cli(sandbox, "tutorial", "down", *state)
    assert down.returncode == 0, down.stderr
    assert plus_lines(down.stdout)[-2:] == ["ip netns del Tdocker1", "ip netns del Tdocker0"]
    assert "sysctl net.ipv4.ip_forward=0" in plus_lines(down.stdout)

    down_again = cli(sandbox, "tutorial", "down", *state)
    assert down_again.returncode == 0
    assert plus_lines(down_again.stdout) == []
    assert snapshot.take(sandbox.runner) == before


def test_cli_verify_fails_with_exit_1_when_nothing_is_up(sandbox: Sandbox, tmp_path: Path) -> None:
    result = cli(sandbox, "tutorial", "verify", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "0 of 4 scenarios passed" in result.stdout


def test_cli_without_cap_net_admin_says_so(sandbox: Sandbox, tmp_path: Path) -> None:
    """uid 0 but no CAP_NET_ADMIN: the kernel refuses and netwrap says why, without a traceback."""
    command = Command(
        "setpriv",
        ("--inh-caps=-net_admin", "--bounding-set=-net_admin,-sys_admin", "--",
         sys.executable, "-m", "netwrap", "tutorial", "up", "--state-dir", str(tmp_path)),
        ok_codes=frozenset({0, 1}),
    )  # fmt: skip
    result = sandbox.runner.run(command)
    assert result.returncode == 1
    assert "must run as root (or with CAP_NET_ADMIN)" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_leaves_the_real_host_alone() -> None:
    """`netwrap tutorial` on the real host: everything happens in its own sandbox."""
    require_root()
    host = SubprocessRunner()
    before_links = host.run(Command("ip", ("-o", "link", "show"), mutates=False)).stdout
    had_netns_dir = Path("/run/netns").exists()
    inode = os.stat("/proc/self/ns/net").st_ino
    demo = Command(sys.executable, ("-m", "netwrap", "tutorial"), ok_codes=frozenset({0, 1}))
    result = SubprocessRunner(timeout=120).run(demo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert plus_lines(result.stdout)[:22] == DOCUMENT
    assert "4 of 4 scenarios passed" in result.stdout
    assert "the sandbox is exactly as it was before `up`." in result.stdout
    assert os.stat("/proc/self/ns/net").st_ino == inode
    assert host.run(Command("ip", ("-o", "link", "show"), mutates=False)).stdout == before_links
    assert Path("/run/netns").exists() == had_netns_dir


def test_a_dead_sandbox_refuses_to_run_anything() -> None:
    require_root()
    with Sandbox() as box:
        runner = box.runner
        box.close()
        with pytest.raises(SandboxError, match="holder process is gone"):
            runner.run(Command("ip", ("netns", "add", "Tx")))
