"""Commands over SSH: every argument quoted for the far side's shell, errors named."""

from __future__ import annotations

import shlex

import pytest
from pytest_subprocess import FakeProcess

from netwrap import CommandError, Namespace, ToolNotFoundError, ValidationError
from netwrap.cli import main as cli
from netwrap.command import Command
from netwrap.errors import SshError
from netwrap.host.observe import observe
from netwrap.host.runner import SYSTEM_PATH
from netwrap.host.ssh import SshRunner

HEAD = ["ssh", "-o", "BatchMode=yes", "-p", "2222", "--", "root@lab1"]


def runner(**kwargs: object) -> SshRunner:
    made = SshRunner("root@lab1", ("-p", "2222"), **kwargs)  # type: ignore[arg-type]
    made.local.resolve = lambda tool: tool
    return made


def test_each_word_is_quoted_for_the_remote_shell() -> None:
    command = Command("ip", ("link", "set", "x", "alias", "a b; $(reboot) `id` 'q'"))
    remote = runner().remote_command(command)
    assert shlex.split(remote) == ["env", "LC_ALL=C", f"PATH={SYSTEM_PATH}", *command.argv]
    wrapped = runner().wrap(command)
    assert list(wrapped.argv[:-1]) == HEAD
    assert wrapped.argv[-1] == remote  # one argument: ssh hands it to the remote shell as it is


def test_sudo_on_the_far_side() -> None:
    remote = runner(sudo=True).remote_command(Command("ip", ("netns", "add", "c1")))
    assert shlex.split(remote)[:4] == ["sudo", "-n", "--", "env"]


@pytest.mark.parametrize("destination", ["-oProxyCommand=touch /tmp/x", "host name", "", "a@b@c", "host;id"])
def test_a_destination_cannot_become_an_option_or_shell(destination: str) -> None:
    with pytest.raises(ValidationError, match=r"SshRunner\.destination"):
        SshRunner(destination)


def test_batches_go_through_ssh_on_standard_input(fp: FakeProcess) -> None:
    r = runner()
    batch = Command("ip", ("-batch", "-"), input="netns add c1\n")
    fp.register([*HEAD, r.remote_command(batch)], stdin_callable=lambda text: {"stdout": text.upper()})
    assert r.run(batch).stdout == "NETNS ADD C1\n"


def test_ssh_failures_are_told_from_remote_ones(fp: FakeProcess) -> None:
    r = runner()
    probe = Command("ip", ("-V",), mutates=False)
    fp.register([*HEAD, r.remote_command(probe)], returncode=255, stderr="ssh: connect to host lab1 port 2222: "
                "Connection refused\n")  # fmt: skip
    with pytest.raises(SshError, match="ssh could not run the command on root@lab1"):
        r.run(probe)
    missing = Command("brctl", ("addbr", "br0"))
    fp.register([*HEAD, r.remote_command(missing)], returncode=127, stderr="env: 'brctl': No such file or directory\n")
    with pytest.raises(ToolNotFoundError, match="bridge-utils"):
        r.run(missing)
    failing = Command("ip", ("link", "del", "gone0"))
    fp.register([*HEAD, r.remote_command(failing)], returncode=1, stderr='Cannot find device "gone0"\n')
    with pytest.raises(CommandError, match="on root@lab1: command failed") as caught:
        r.run(failing)
    assert caught.value.argv == failing.argv
    assert "Cannot find device" in caught.value.stderr


def test_observation_works_the_same_over_ssh(fp: FakeProcess) -> None:
    r = runner()
    listing = Command("ip", ("netns", "list"), mutates=False)
    fp.register([*HEAD, r.remote_command(listing)], stdout="c1 (id: 0)\n")
    state = observe(r, [Namespace("c1")])
    assert state.namespaces == ("c1",)


def test_a_bad_ssh_destination_stops_the_cli_before_anything_runs(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert cli.main(["tutorial", "up", "--ssh=-oProxyCommand=x", "--state-dir", str(tmp_path)]) == 1
    assert "--ssh '-oProxyCommand=x'" in capsys.readouterr().err
    assert len(fp.calls) == 0


def test_the_ssh_client_is_configurable(fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)
    listing = Command("ip", ("netns", "list"), mutates=False)
    remote = SshRunner("root@lab1").remote_command(listing)
    fp.register(["ssh", "-F", "lab.conf", "-o", "BatchMode=yes", "--", "root@lab1", remote], stdout="")
    fp.register(["ssh", "-F", "lab.conf", "-o", "BatchMode=yes", "--", "root@lab1", fp.any()], occurrences=50)
    code = cli.main(["tutorial", "plan", "--ssh", "root@lab1", "--ssh-command", "ssh -F lab.conf",
                     "--state-dir", str(tmp_path)])  # fmt: skip
    assert code == 1  # the fake far side prints no sysctl value, which is an error
    assert len(fp.calls) >= 3
    assert all([str(word) for word in call][:3] == ["ssh", "-F", "lab.conf"] for call in fp.calls)
