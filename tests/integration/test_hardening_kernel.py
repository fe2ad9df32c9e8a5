"""Failure in the middle, signals and concurrency, on the real kernel, each test in its own sandbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import attr
import attrs
import pytest
import tenacity

import netwrap
from netwrap import Sandbox, StateFile, StepError, build, teardown, tutorial
from netwrap.command import Command
from netwrap.engine.lock import StateLock
from netwrap.errors import CommandError
from netwrap.host import snapshot
from netwrap.host.runner import Result, Runner
from tests.integration.test_ownership_kernel import kill_after
from tests.integration.test_topology_kernel import TOPOLOGY
from tests.integration.test_tutorial_kernel import cli, plus_lines
from tests.test_tutorial import DOCUMENT

pytestmark = pytest.mark.integration


@attrs.define
class FailAt:
    """Passes commands on, except that the Nth changing one fails as a real command would."""

    inner: Runner
    at: int
    seen: int = 0

    def run(self, command: Command) -> Result:
        if command.mutates:
            self.seen += 1
            if self.seen == self.at:
                raise CommandError(command.argv, 2, "", "RTNETLINK answers: injected failure\n")
        return self.inner.run(command)


def test_a_failure_at_any_step_of_up_converges_on_the_next_run(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot.take(sandbox.runner)
    for step in range(1, 23):
        store = StateFile(tmp_path / f"up-{step}.json")
        with pytest.raises(StepError) as caught:
            build(tutorial.objects(), FailAt(sandbox.runner, step), store)
        assert caught.value.step == step
        assert " ".join(caught.value.argv) == DOCUMENT[step - 1]
        assert "injected failure" in caught.value.stderr
        build(tutorial.objects(), sandbox.runner, store)  # converges
        assert build(tutorial.objects(), sandbox.runner, store).changed == ()
        teardown(sandbox.runner, store)
        assert before.differences(snapshot.take(sandbox.runner)) == [], f"after a failure at step {step}"


def test_a_failure_during_teardown_is_reported_and_a_second_teardown_finishes(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot.take(sandbox.runner)
    for step in range(1, 9):  # down runs 9 commands: 2 rules, ip_forward, bridge (2), 2 veths, 2 namespaces
        store = StateFile(tmp_path / f"down-{step}.json")
        build(tutorial.objects(), sandbox.runner, store)
        with pytest.raises(StepError, match="run the teardown again") as caught:
            teardown(FailAt(sandbox.runner, step), store)
        assert "injected failure" in caught.value.stderr
        assert store.load() is not None  # what is left stays recorded
        teardown(sandbox.runner, store)
        assert before.differences(snapshot.take(sandbox.runner)) == [], f"after a failure at step {step}"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_up_leaves_a_true_record(sandbox: Sandbox, tmp_path: Path, sig: int, code: int) -> None:
    before = snapshot.take(sandbox.runner)
    argv = [*sandbox.prefix, sys.executable, "-m", "netwrap", "tutorial", "up", "--bridge-tool", "brctl",
            "--state-dir", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    printed = 0
    for line in process.stdout:
        printed += line.startswith("+ ")
        if printed == 11:
            os.kill(process.pid, sig)
            break
    process.stdout.read()
    assert process.wait(timeout=30) == code
    err = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert "what was done so far is recorded: run the same command again to finish" in err
    assert "Traceback" not in err
    again = cli(sandbox, "tutorial", "up", "--bridge-tool", "brctl", "--state-dir", str(tmp_path))
    assert again.returncode == 0
    assert plus_lines(again.stdout) in (DOCUMENT[11:], DOCUMENT[10:])
    assert cli(sandbox, "tutorial", "down", "--state-dir", str(tmp_path)).returncode == 0
    assert before.differences(snapshot.take(sandbox.runner)) == []


def _start(sandbox: Sandbox, *args: str) -> subprocess.Popen[str]:
    argv = [*sandbox.prefix, sys.executable, "-m", "netwrap", *args]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_twenty_applies_at_once_make_one_of_everything(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot.take(sandbox.runner)
    topo = tmp_path / "t4.toml"
    topo.write_text(TOPOLOGY)
    args = ("-f", str(topo), "--state-dir", str(tmp_path / "state"))
    processes = [_start(sandbox, "apply", *args) for _ in range(20)]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in processes]
    for p in processes:
        if p.stderr is not None:
            p.stderr.close()
    assert [code for code, _ in results] == [0] * 20, [err for code, err in results if code]
    rules = [
        f"{table} {line}"
        for table in ("nat", "filter")
        for line in sandbox.runner.run(Command("iptables", ("-t", table, "-S"), mutates=False)).stdout.splitlines()
    ]
    assert len(rules) == len(set(rules))
    assert cli(sandbox, "plan", *args).returncode == 0  # nothing left to do, nothing twice
    destroyers = [_start(sandbox, "destroy", *args) for _ in range(10)]
    assert [p.wait(timeout=300) for p in destroyers] == [0] * 10
    for p in destroyers:
        if p.stderr is not None:
            p.stderr.close()
    assert before.differences(snapshot.take(sandbox.runner)) == []


def test_a_lock_held_too_long_is_a_clear_error(sandbox: Sandbox, tmp_path: Path) -> None:
    with StateLock(tmp_path):
        result = cli(sandbox, "tutorial", "up", "--lock-timeout", "0.5", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "another netwrap has held" in result.stderr
    assert plus_lines(result.stdout) == []


def test_clean_after_a_killed_apply(sandbox: Sandbox, tmp_path: Path) -> None:
    """kill -9 leaves no chance to say anything: the record alone tells clean what to remove."""
    before = snapshot.take(sandbox.runner)
    topo = tmp_path / "t4.toml"
    topo.write_text(TOPOLOGY)
    argv = [*sandbox.prefix, sys.executable, "-m", "netwrap", "apply", "--verbatim", "-f", str(topo),
            "--state-dir", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    kill_after(process, 30)
    assert cli(sandbox, "clean", "--state-dir", str(tmp_path)).returncode == 0
    assert before.differences(snapshot.take(sandbox.runner)) == []


def test_a_non_root_user_gets_the_clear_error(sandbox: Sandbox, tmp_path: Path) -> None:
    """A real process of uid 65534 (nobody), through the system's python and a world-readable copy of netwrap."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python is not None, "the system python3 (Debian's python3.11) is needed to run as another user"
    readable = Path(tempfile.mkdtemp(prefix="netwrap-nobody-"))
    try:
        readable.chmod(0o755)
        for module in (netwrap, attr, attrs, tenacity):
            source = Path(module.__file__ or "").parent
            shutil.copytree(source, readable / source.name)
        for path in readable.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        for argv in (("tutorial", "up"), ("apply", "-f", str(readable / "missing.toml")), ("tutorial",)):
            command = Command(
                "setpriv",
                ("--reuid=65534", "--regid=65534", "--clear-groups", "--", "env", f"PYTHONPATH={readable}",
                 python, "-m", "netwrap", *argv, *(("--state-dir", str(readable / "state")) if len(argv) > 1 else ())),
                ok_codes=frozenset({0, 1, 2}),
            )  # fmt: skip
            result = sandbox.runner.run(command)
            assert result.returncode == 1, result.stderr
            assert "root" in result.stderr
            assert "Traceback" not in result.stderr
    finally:
        shutil.rmtree(readable)
