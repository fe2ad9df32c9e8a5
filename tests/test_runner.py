"""The runner: argv only, errors that carry everything, narrow retries, missing tools named."""

from __future__ import annotations

import pytest
from pytest_subprocess import FakeProcess

from netwrap import (
    CommandError,
    CommandTimeoutError,
    EchoRunner,
    PermissionDeniedError,
    RecordingRunner,
    SubprocessRunner,
    ToolNotFoundError,
    TransientCommandError,
)
from netwrap.command import Command
from netwrap.host.runner import SYSTEM_PATH, find_tool

ADD = Command("ip", ("netns", "add", "Tdocker0"))
LOCK = "Another app is currently holding the xtables lock. Perhaps you want to use the -w option?\n"


def test_a_failure_carries_argv_code_and_both_outputs(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["ip", "netns", "add", "Tdocker0"], returncode=1, stdout="out\n",
                stderr='Cannot create namespace file "/run/netns/Tdocker0": File exists\n')  # fmt: skip
    with pytest.raises(CommandError) as caught:
        runner.run(ADD)
    err = caught.value
    assert (err.argv, err.returncode, err.stdout) == (("ip", "netns", "add", "Tdocker0"), 1, "out\n")
    assert "File exists" in err.stderr
    text = str(err)
    assert "command: ip netns add Tdocker0" in text and "exit code: 1" in text and "File exists" in text


def test_expected_exit_codes_are_results(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["iptables", "-C"], returncode=1)
    result = runner.run(Command("iptables", ("-C",), mutates=False, ok_codes=frozenset({0, 1})))
    assert result.returncode == 1 and not result.ok


def test_permission_errors_say_root_and_are_not_retried(fp: FakeProcess) -> None:
    runner = SubprocessRunner(resolve=lambda t: t, wait=0, attempts=5)
    fp.register(["ip", "netns", "add", "Tdocker0"], returncode=1,
                stderr="mount --make-shared /run/netns failed: Operation not permitted\n")  # fmt: skip
    with pytest.raises(PermissionDeniedError, match="must run as root"):
        runner.run(ADD)
    assert len(fp.calls) == 1


def test_the_xtables_lock_is_retried(fp: FakeProcess, runner: SubprocessRunner) -> None:
    argv = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"]
    fp.register(argv, returncode=4, stderr=LOCK)
    fp.register(argv, returncode=4, stderr=LOCK)
    fp.register(argv)
    assert runner.run(Command(argv[0], tuple(argv[1:]))).ok
    assert len(fp.calls) == 3


def test_the_xtables_lock_gives_up_after_the_attempts(fp: FakeProcess) -> None:
    runner = SubprocessRunner(resolve=lambda t: t, wait=0, attempts=2)
    fp.register(["iptables", "-L"], returncode=4, stderr=LOCK, occurrences=2)
    with pytest.raises(TransientCommandError, match="lock"):
        runner.run(Command("iptables", ("-L",)))
    assert len(fp.calls) == 2


def test_timeout_kills_the_process() -> None:
    runner = SubprocessRunner(timeout=0.2)
    with pytest.raises(CommandTimeoutError, match=r"timed out after 0\.2 s") as caught:
        runner.run(Command("sleep", ("30",), mutates=False))
    assert caught.value.argv == ("sleep", "30")


def test_a_missing_tool_names_its_package(fp: FakeProcess) -> None:
    runner = SubprocessRunner(resolve=lambda t: None if t == "brctl" else t)
    with pytest.raises(ToolNotFoundError, match=r"'brctl'.*apt-get install bridge-utils"):
        runner.run(Command("brctl", ("addbr", "Tbr0")))
    with pytest.raises(ToolNotFoundError, match="bridge-utils"):
        runner.run(Command("brctl", ("addbr", "Tbr0"), netns="Tdocker0"))
    assert len(fp.calls) == 0


def test_tools_are_pinned_from_the_system_directories(fp: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    path = find_tool("sh")
    assert path is not None and path.startswith("/")
    runner = SubprocessRunner(resolve=lambda t: f"/pinned/{t}")
    fp.register(["/pinned/ip", "netns", "exec", "Tdocker0", "ip", "link"])
    runner.run(Command("ip", ("link",), netns="Tdocker0", mutates=False))


def test_prefix_goes_in_front(fp: FakeProcess) -> None:
    runner = SubprocessRunner(prefix=("sudo", "--"), resolve=lambda t: t)
    fp.register(["sudo", "--", "ip", "netns", "add", "Tdocker0"])
    runner.run(ADD)


def test_children_get_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("SECRET", "x")
    out = SubprocessRunner().run(Command("env", (), mutates=False)).stdout
    assert sorted(out.splitlines()) == ["LC_ALL=C", f"PATH={SYSTEM_PATH}"]


def test_recording_runner_runs_nothing_and_answers() -> None:
    rec = RecordingRunner({("ip", "netns", "list"): (0, "Tdocker0\n")})
    assert rec.run(Command("ip", ("netns", "list"), mutates=False)).stdout == "Tdocker0\n"
    rec.run(ADD)
    assert [c.argv for c in rec.commands] == [("ip", "netns", "list"), ADD.argv]
    assert rec.mutating == [ADD]


def test_recording_runner_raises_for_unexpected_codes() -> None:
    rec = RecordingRunner({ADD.argv: (1, "")})
    with pytest.raises(CommandError):
        rec.run(ADD)


def test_echo_runner_prints_like_set_x() -> None:
    lines: list[str] = []
    rule = Command("iptables", ("-t", "nat", "-A", "POSTROUTING", "!", "-o", "Tbr0", "-j", "MASQUERADE"))
    check = Command("ip", ("netns", "list"), mutates=False)
    quiet = EchoRunner(RecordingRunner(), lines.append)
    quiet.run(check)
    quiet.run(rule)
    assert lines == ["+ iptables -t nat -A POSTROUTING ! -o Tbr0 -j MASQUERADE"]
    lines.clear()
    EchoRunner(RecordingRunner(), lines.append, verbose=True).run(check)
    assert lines == ["# ip netns list"]


@pytest.mark.parametrize(
    ("code", "stderr", "kind", "message"),
    [
        (4, LOCK, TransientCommandError, "a lock is held"),
        (4, "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Invalid argument\n",
         TransientCommandError, "a lock is held"),
        (4, "iptables v1.8.9 (nf_tables): Permission denied (you must be root)\n", PermissionDeniedError,
         "must run as root"),
        (4, "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be "
            "root)\n", PermissionDeniedError, "must run as root"),
        (4, "iptables v1.8.9 (nf_tables): Cannot allocate memory\n", CommandError, "could not get a resource"),
        (2, "iptables v1.8.9 (nf_tables): unknown option \"--dportt\"\n", CommandError, "did not accept the rule"),
        (1, "iptables: Bad rule (does a matching rule exist in that chain?).\n", CommandError, "exit code 1"),
    ],
)  # fmt: skip
def test_iptables_exit_codes_are_told_apart_by_their_message(
    fp: FakeProcess, code: int, stderr: str, kind: type[Exception], message: str
) -> None:
    runner = SubprocessRunner(resolve=lambda t: t, wait=0, attempts=1)
    fp.register(["iptables", "-t", "nat", "-A", "X"], returncode=code, stderr=stderr)
    with pytest.raises(CommandError, match=message) as caught:
        runner.run(Command("iptables", ("-t", "nat", "-A", "X")))
    assert type(caught.value) is kind


def test_a_tool_found_is_kept_and_a_missing_one_looked_for_again(monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[str] = []

    def which(tool: str, path: str) -> str | None:
        looked.append(tool)
        return None if tool == "brctl" else f"/usr/sbin/{tool}"

    monkeypatch.setattr("netwrap.host.runner.shutil.which", which)
    monkeypatch.setattr("netwrap.host.runner._FOUND", {})
    assert [find_tool("ip"), find_tool("ip"), find_tool("brctl"), find_tool("brctl")] == [
        "/usr/sbin/ip", "/usr/sbin/ip", None, None,
    ]  # fmt: skip
    assert looked == ["ip", "brctl", "brctl"]
