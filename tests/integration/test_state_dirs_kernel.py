"""Two state directories on one host are one host: claims, hand-overs and the lock see each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netwrap import Sandbox
from netwrap.command import Command
from netwrap.host import snapshot
from netwrap.host.runner import Result

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-networks.toml"


def cli(sandbox: Sandbox, *args: str) -> Result:
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset(range(256))))


def forwarding(sandbox: Sandbox) -> str:
    return sandbox.runner.run(Command("sysctl", ("-n", "net.ipv4.ip_forward"), mutates=False)).stdout.strip()


def test_the_same_file_from_another_state_directory_is_a_conflict(sandbox: Sandbox, tmp_path: Path) -> None:
    first = cli(sandbox, "apply", "-f", str(EXAMPLE), "--state-dir", str(tmp_path / "one"))
    assert first.returncode == 0, first.stderr
    applied = snapshot.take(sandbox.runner)
    second = cli(sandbox, "apply", "-f", str(EXAMPLE), "--state-dir", str(tmp_path / "two"))
    assert second.returncode == 1, second.stderr
    assert "already taken by the record topology-twonets" in second.stderr
    assert applied.explain(snapshot.take(sandbox.runner)) == []
    assert not (tmp_path / "two" / "topology-twonets.json").exists()
    assert cli(sandbox, "plan", "-f", str(EXAMPLE), "--state-dir", str(tmp_path / "two")).returncode == 1


def test_ip_forward_is_handed_over_across_state_directories(sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli(sandbox, "tutorial", "up", "--state-dir", str(tmp_path / "one")).returncode == 0
    assert cli(sandbox, "apply", "-f", str(EXAMPLE), "--state-dir", str(tmp_path / "two")).returncode == 0
    down = cli(sandbox, "tutorial", "down", "--state-dir", str(tmp_path / "one"))
    assert down.returncode == 0, down.stderr
    assert forwarding(sandbox) == "1"  # the topology in the other directory still needs it
    destroyed = cli(sandbox, "destroy", "-f", str(EXAMPLE), "--state-dir", str(tmp_path / "two"))
    assert destroyed.returncode == 0, destroyed.stderr
    assert forwarding(sandbox) == "0"  # the last user gave it back


def test_two_applies_from_two_state_directories_at_once_build_it_once(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot.take(sandbox.runner)
    processes = [
        subprocess.Popen(
            [*sandbox.prefix, sys.executable, "-m", "netwrap", "apply", "-f", str(EXAMPLE),
             "--state-dir", str(tmp_path / name)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]  # fmt: skip
    results = sorted((p.wait(timeout=120), p.communicate()[1]) for p in processes)
    assert [code for code, _ in results] == [0, 1], results
    assert "already taken by the record topology-twonets" in results[1][1]
    records = sorted(p.parent.name for p in tmp_path.glob("*/topology-twonets.json"))
    assert len(records) == 1, records
    state = str(tmp_path / records[0])
    assert cli(sandbox, "plan", "-f", str(EXAMPLE), "--state-dir", state).returncode == 0
    assert cli(sandbox, "destroy", "-f", str(EXAMPLE), "--state-dir", state).returncode == 0
    assert before.explain(snapshot.take(sandbox.runner)) == []
