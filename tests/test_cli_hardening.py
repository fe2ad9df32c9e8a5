"""Issue "Hardening II", the command line's items: no traceback ever reaches a user (9), exec's options (13),
SSH for every command that can use it (14), whole blocks from concurrent batches (16), and the command line's
structure: one handler per subcommand, one options value, one renderer each for plans and status (18)."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_subprocess import FakeProcess

from netwrap import StateFile, tutorial
from netwrap.cli import doctor
from netwrap.cli import main as cli
from netwrap.cli.options import Options
from netwrap.cli.output import Output, PlanReport, Streams, print_plan, print_status
from netwrap.engine.build import Outcome
from netwrap.engine.lock import DEFAULT_TIMEOUT
from netwrap.engine.state import Record, Writer
from netwrap.errors import NetwrapError
from netwrap.host.runner import SubprocessRunner
from netwrap.host.ssh import SshRunner, parse_destination
from netwrap.topology import multihost
from tests.test_tutorial import empty_host, fake

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TUTORIAL_FILE = str(EXAMPLES / "tutorial.toml")
MODES_FILE = str(EXAMPLES / "modes.toml")
BUG = "this is a bug; please report it with the text below"


def run(*argv: str, out: Any = None) -> tuple[int, str, str]:
    stdout, stderr = out if out is not None else io.StringIO(), io.StringIO()
    code = cli.run(list(argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to be root, with every tool present under its bare name (for `fp`)."""
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)


def no_traceback(err: str) -> None:
    assert "Traceback" not in err
    assert "Exception ignored" not in err


def crashed_record(state_dir: Path) -> None:
    record = Record(complete=False, writer=Writer(2**22 + 3, 1), action="up")
    for obj in tutorial.objects()[:3]:
        record.add(obj)
    StateFile.in_dir(state_dir, "tutorial").save(record)


# --- 9: no traceback reaches a user -------------------------------------------------------------------------


class ClosedPipe(io.StringIO):
    """Standard output whose reader went away (`netwrap ... | head` after head exited)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_reader_that_went_away_is_no_traceback_for_clean_dry_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    crashed_record(tmp_path)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["clean", "--dry-run", "--state-dir", str(tmp_path)]) == 0  # the command's own exit code
    no_traceback(capsys.readouterr().err)


@pytest.mark.usefixtures("as_root")
def test_a_reader_that_went_away_is_no_traceback_for_status_json(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake(fp, empty_host(), [])
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["status", "--json", "-f", TUTORIAL_FILE, "--state-dir", str(tmp_path)]) == 0
    no_traceback(capsys.readouterr().err)


def closed_pipe_run(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m netwrap ARGV`` with a standard output nobody reads any more (the read end closed first)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "netwrap", *argv],
            stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [["clean", "--dry-run"], ["status", "--help"], ["--version"]])
def test_a_real_closed_pipe_ends_quietly(argv: list[str], tmp_path: Path) -> None:
    """Read-only commands that run no tool, in a real process whose standard output is a closed pipe."""
    crashed_record(tmp_path)
    done = closed_pipe_run(*argv, *(["--state-dir", str(tmp_path)] if argv[0] == "clean" else []))
    no_traceback(done.stderr)
    assert done.stderr == ""
    assert done.returncode == 0


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(
    "argv",
    [
        ["tutorial", "up"],
        ["tutorial", "down"],
        ["clean"],
        ["clean", "--dry-run"],
        ["apply", "-f", TUTORIAL_FILE],
        ["status", "-f", TUTORIAL_FILE],
        ["destroy", "-f", TUTORIAL_FILE],
    ],
)
def test_a_state_directory_that_is_a_file_is_a_clear_error(
    argv: list[str], fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "state"
    file.write_text("not a directory\n")
    assert cli.main([*argv, "--state-dir", str(file)]) == 1
    err = capsys.readouterr().err
    no_traceback(err)
    assert err == f"netwrap: error: the state directory {file} is not a directory (from --state-dir)\n"
    assert len(fp.calls) == 0


@pytest.mark.usefixtures("as_root")
def test_netwrap_state_dir_naming_a_file_is_a_clear_error(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "state"
    file.write_text("")
    monkeypatch.setenv("NETWRAP_STATE_DIR", str(file))
    assert cli.main(["tutorial", "down"]) == 1
    err = capsys.readouterr().err
    no_traceback(err)
    assert err == f"netwrap: error: the state directory {file} is not a directory (from $NETWRAP_STATE_DIR)\n"
    assert len(fp.calls) == 0


@pytest.mark.usefixtures("as_root")
def test_a_state_directory_that_cannot_be_made_is_a_clear_error(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tutorial", "up", "--state-dir", "/proc/nope"]) == 1
    err = capsys.readouterr().err
    no_traceback(err)
    assert err == "netwrap: error: cannot make the state directory /proc/nope: No such file or directory\n"
    assert len(fp.calls) == 0


@pytest.mark.usefixtures("as_root")
def test_a_record_that_is_a_directory_is_a_clear_error(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "topology-tutorial.json").mkdir()
    fake(fp, empty_host(), [])
    assert cli.main(["status", "-f", TUTORIAL_FILE, "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    no_traceback(err)
    assert f"record {tmp_path / 'topology-tutorial.json'} is a directory, not a file" in err


def test_clean_lists_a_record_that_is_a_directory_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "tutorial.json").mkdir()
    code, out, err = run("clean", "--dry-run", "--state-dir", str(tmp_path))
    assert code == 0
    assert out.startswith("tutorial: unreadable")
    assert "is a directory, not a file" in out
    no_traceback(err)


def test_a_record_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tutorial.json").write_bytes(b'{"version": 2, "x": "\xff"}')
    (tmp_path / "tutorial.json").chmod(0o600)
    with pytest.raises(NetwrapError, match=r"tutorial\.json is not UTF-8 text"):
        StateFile.in_dir(tmp_path, "tutorial").load()
    code, out, _ = run("clean", "--dry-run", "--state-dir", str(tmp_path))
    assert code == 0
    assert out.startswith("tutorial: unreadable")


@pytest.mark.usefixtures("as_root")
def test_a_memo_that_is_a_directory_is_a_clear_error(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    memo = tmp_path / ".topology-tutorial.json.verified"
    memo.mkdir()
    assert cli.main(["destroy", "-f", TUTORIAL_FILE, "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    no_traceback(err)
    assert err.startswith(f"netwrap: error: {memo}: Is a directory")
    assert len(fp.calls) == 0


def test_replacing_a_file_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    from netwrap.engine.state import replace_file  # noqa: PLC0415

    (tmp_path / "x").mkdir()
    with pytest.raises(NetwrapError, match=r"cannot write .*/x: it is a directory"):
        replace_file(tmp_path / "x", "{}", durable=False)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]  # no temporary file left behind


@pytest.mark.parametrize("command", ["plan", "apply", "status", "graph", "destroy"])
def test_a_topology_file_that_is_not_utf8_is_no_traceback(
    command: str, fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "x\xff"\n')
    code = cli.main([command, "-f", str(bad), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert code == 1
    no_traceback(err)
    assert err.startswith("netwrap: error: ")
    assert str(bad) in err
    assert len(fp.calls) == 0


def test_a_reader_that_trips_on_a_byte_is_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Whatever the file reader does with a byte that is not UTF-8, the command line names the file and the byte."""
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "x\xff"\n')

    def trips(path: object) -> object:
        return bad.read_bytes().decode()

    monkeypatch.setattr("netwrap.topology.files.read_toml", trips)
    assert cli.main(["graph", "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    no_traceback(err)
    assert err == f"netwrap: error: {bad}: [file] read: the file is not UTF-8 text (byte 0xff at offset 9)\n"


def test_an_ssh_command_that_cannot_be_split_is_a_usage_error(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["tutorial", "plan", "--ssh", "root@lab1", "--ssh-command", 'ssh "x', "--state-dir", str(tmp_path)])
    assert caught.value.code == 64
    err = capsys.readouterr().err
    no_traceback(err)
    assert "argument --ssh-command: 'ssh \"x': No closing quotation" in err
    with pytest.raises(SystemExit) as empty:
        cli.main(["tutorial", "plan", "--ssh", "root@lab1", "--ssh-command", " ", "--state-dir", str(tmp_path)])
    assert empty.value.code == 64
    assert "argument --ssh-command: ' ' names no program" in capsys.readouterr().err
    assert len(fp.calls) == 0


def test_an_unexpected_error_is_a_bug_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(state_dir: object) -> object:
        raise KeyError("x")

    monkeypatch.setattr("netwrap.cli.main.survey", broken)
    assert cli.main(["clean", "--dry-run", "--state-dir", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"netwrap: internal error: KeyError: 'x' — {BUG}"
    assert lines[1].startswith("netwrap ") and "Python 3." in lines[1]
    assert lines[1].endswith(f"command: netwrap clean --dry-run --state-dir {tmp_path}")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'x'"


def test_an_unexpected_error_with_no_message_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(state_dir: object) -> object:
        raise RuntimeError

    monkeypatch.setattr("netwrap.cli.main.survey", broken)
    assert cli.main(["clean", "--dry-run", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"netwrap: internal error: RuntimeError — {BUG}"


def test_an_os_error_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def denied(state_dir: object) -> object:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x.json"))

    monkeypatch.setattr("netwrap.cli.main.survey", denied)
    assert cli.main(["clean", "--dry-run", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"netwrap: error: {tmp_path / 'x.json'}: Permission denied\n"


# --- 13: exec honours netwrap's options before `--`; everything after it is the command -----------------------


class Exec(BaseException):
    """What os.execv was asked to run (raised instead of replacing the test's process)."""


@pytest.fixture
def execv(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_execv(path: str, argv: list[str]) -> None:
        raise Exec(path, list(argv))

    monkeypatch.setattr("os.execv", fake_execv)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("netwrap.cli.main.find_tool", lambda name: f"/usr/sbin/{name}")


def exec_argv(*argv: str) -> list[str]:
    with pytest.raises(Exec) as caught:
        cli.main(list(argv))
    assert caught.value.args[0] == "/usr/sbin/ip"
    result: list[str] = caught.value.args[1]
    return result


@pytest.mark.usefixtures("execv")
def test_exec_honours_ssh_after_the_container_by_refusing_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exec", "-f", MODES_FILE, "app", "--ssh", "root@h", "--", "id"]) == 1
    assert "exec runs on this machine; on another one: ssh HOST ip netns exec NAMESPACE CMD" in capsys.readouterr().err


@pytest.mark.usefixtures("execv")
def test_exec_honours_options_after_the_container() -> None:
    assert exec_argv("exec", "app", "-f", MODES_FILE, "--", "id") == ["ip", "netns", "exec", "app", "id"]


@pytest.mark.usefixtures("execv")
def test_everything_after_the_dashes_is_the_command() -> None:
    assert exec_argv("exec", "-f", MODES_FILE, "app", "--", "ip", "--", "x") == [
        "ip", "netns", "exec", "app", "ip", "--", "x",
    ]  # fmt: skip
    assert exec_argv("exec", "-f", MODES_FILE, "app", "--", "--ssh", "-f", "x") == [
        "ip", "netns", "exec", "app", "--ssh", "-f", "x",
    ]  # fmt: skip


@pytest.mark.usefixtures("execv")
def test_a_command_without_dashes_is_refused_with_the_form_to_use(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["exec", "-f", MODES_FILE, "app", "ls", "-f", "x"])
    assert caught.value.code == 64
    err = capsys.readouterr().err
    assert err.startswith("usage: netwrap exec [-h] -f FILE CONTAINER -- CMD ...\n")
    assert "netwrap exec: error: the command goes after --, as in: netwrap exec -f FILE CONTAINER -- CMD ..." in err
    with pytest.raises(SystemExit) as between:
        cli.main(["exec", "-f", MODES_FILE, "app", "stray", "--", "id"])
    assert between.value.code == 64
    assert "netwrap exec: error: 'stray' before --: only netwrap's options stand there" in capsys.readouterr().err


def test_only_exec_takes_a_command_after_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["graph", "-f", MODES_FILE, "--", "id"])
    assert caught.value.code == 64
    assert "netwrap graph: error: unrecognized arguments after --: id" in capsys.readouterr().err


# --- 14: --ssh for graph and doctor, descriptions, IPv6 destinations, probe labels -----------------------------


def test_graph_with_ssh_shows_the_addresses_applied_on_that_machine(fp: FakeProcess, tmp_path: Path) -> None:
    record = Record(complete=True, action="apply", allocations={"lab/app": "10.30.0.77"})
    StateFile.in_dir(tmp_path, "topology-modes@root@lab1").save(record)
    code, out, _ = run("graph", "-f", MODES_FILE, "--ssh", "root@lab1", "--state-dir", str(tmp_path))
    assert code == 0
    assert "10.30.0.77" in out
    code, here, _ = run("graph", "-f", MODES_FILE, "--state-dir", str(tmp_path))
    assert "10.30.0.77" not in here  # this machine's record: there is none
    assert len(fp.calls) == 0  # nothing runs, here or there


SSH_HEAD = ["ssh", "-o", "BatchMode=yes", "--", "root@lab1"]


def remote(*argv: str) -> list[str]:
    from netwrap.command import Command  # noqa: PLC0415

    return [*SSH_HEAD, SshRunner("root@lab1").remote_command(Command(argv[0], argv[1:]))]


def test_doctor_probes_the_far_side_through_ssh(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)
    monkeypatch.setattr("netwrap.cli.doctor.find_tool", lambda name: pytest.fail(f"looked for {name} here"))
    fp.register(remote("cat", "/proc/self/status"), stdout="Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n")
    fp.register(remote("ip", "-V"), stdout="ip utility, iproute2-6.1.0\n", occurrences=2)
    fp.register(remote("ping", "-V"), returncode=127, stderr="env: 'ping': No such file or directory\n")
    fp.register([*SSH_HEAD, fp.any()], occurrences=100)
    code, out, _ = run("doctor", "--ssh", "root@lab1")
    assert code == 1  # ping is missing over there
    lines = out.splitlines()
    assert lines[0].split() == ["ssh", "ok", "root@lab1", "answers"]
    assert any(line.split()[:3] == ["ip", "ok", "ip"] for line in lines)
    assert any(line.split()[:3] == ["ping", "fail", "missing"] for line in lines)
    assert "apt-get install iputils-ping on root@lab1" in out
    assert any(line.split()[:2] == ["python3", "ok"] for line in lines)  # verify's probes run there with python3
    assert not any(line.split()[0] in ("unshare", "nsenter") for line in lines)  # the sandbox is this machine's
    assert any(line.split()[:2] == ["privileges", "ok"] for line in lines)
    assert all([str(word) for word in call][:5] == SSH_HEAD for call in fp.calls)


def test_doctor_over_ssh_says_when_the_machine_cannot_be_reached(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)
    fp.register([*SSH_HEAD, fp.any()], returncode=255, stderr="ssh: connect to host lab1 port 22: No route\n")
    code, out, _ = run("doctor", "--ssh", "root@lab1")
    assert code == 1
    assert out.splitlines()[0].split()[:3] == ["ssh", "fail", "ssh"]
    assert "fix: make `ssh root@lab1 true` work without a prompt" in out
    assert len(fp.calls) == 1  # nothing more is tried


def test_a_failed_probe_has_its_own_label(fp: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("netwrap.cli.doctor.find_tool", lambda name: name)
    fp.register(["ip", fp.any()], occurrences=10)
    fp.register(["brctl", fp.any()], occurrences=10)
    fp.register(["iptables", fp.any()], occurrences=10)
    fp.register(["sysctl", fp.any()], occurrences=10)
    checks = doctor.diagnose(SubprocessRunner(resolve=lambda tool: None if tool == "cat" else tool))
    failed = [c for c in checks if c.status == "fail"]
    assert [c.name for c in failed] == ["privileges", "iptables", "br_netfilter"]
    assert all("'cat' was not found" in c.found for c in failed)
    assert "<lambda>" not in doctor.render(checks)


@pytest.mark.parametrize(
    "argv",
    [
        ["tutorial"], ["tutorial", "script"], ["tutorial", "plan"], ["tutorial", "up"], ["tutorial", "verify"],
        ["tutorial", "down"], ["clean"], ["doctor"], ["apply"], ["plan"], ["destroy"], ["status"], ["graph"],
        ["exec"],
    ],
)  # fmt: skip
def test_every_command_describes_itself_in_its_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--help"])
    assert done.value.code == 0
    paragraphs = capsys.readouterr().out.split("\n\n")
    assert paragraphs[0].startswith("usage: netwrap")
    assert not paragraphs[1].startswith(("options:", "positional arguments:")), paragraphs[1]


@pytest.mark.parametrize(
    ("given", "meant"),
    [("root@[::1]", "root@::1"), ("[fe80::1%eth0]", "fe80::1%eth0"), ("root@::1", "root@::1"), ("lab1", "lab1")],
)
def test_an_ipv6_destination_is_given_to_ssh_without_brackets(given: str, meant: str) -> None:
    assert parse_destination(given) == meant
    runner = SshRunner(given)
    assert runner.destination == meant
    from netwrap.command import Command  # noqa: PLC0415

    assert runner.wrap(Command("true", ())).args[3] == meant


@pytest.mark.parametrize("given", ["root@[nope]", "root@[::1", "root@[::1]x", "root@:::1:", "root@[10.0.0.1]"])
def test_a_bracketed_destination_that_is_no_ipv6_address_is_refused(given: str) -> None:
    with pytest.raises(NetwrapError, match=r"--ssh .*: must be \[USER@\]HOST"):
        parse_destination(given)


def test_the_cli_reaches_an_ipv6_machine_without_brackets(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)
    fp.register(["ssh", "-o", "BatchMode=yes", "--", "root@::1", fp.any()], occurrences=50)
    assert cli.main(["tutorial", "plan", "--ssh", "root@[::1]", "--state-dir", str(tmp_path)]) == 1  # empty answers
    assert len(fp.calls) >= 1
    assert all("root@::1" in [str(word) for word in call] for call in fp.calls)


# --- 16: concurrent batches print whole blocks -----------------------------------------------------------------


class SlowStream(io.StringIO):
    """A terminal that takes its time with each write, so that threads writing at once interleave."""

    def write(self, text: str) -> int:
        written = super().write(text)
        time.sleep(0.02)
        return written


BATCHES = [
    ["ip", "-batch", "-"],
    ["nsenter", "--net=/run/netns/Tdocker0", "--", "ip", "-batch", "-"],
    ["nsenter", "--net=/run/netns/Tdocker1", "--", "ip", "-batch", "-"],
    ["sysctl", "-w", "net.ipv4.ip_forward=1"],
    ["iptables-restore", "--noflush"],
]


@pytest.mark.usefixtures("as_root")
def test_the_namespaces_batches_print_whole_blocks(fp: FakeProcess, tmp_path: Path) -> None:
    """The two namespaces' batches run at once; each ``+ nsenter ... ip -batch - <<'EOF' ... EOF`` prints whole."""
    fake(fp, empty_host(), [])
    for argv in BATCHES:
        fp.register(argv)
    code, out, _ = run(
        "tutorial", "up", "--batch", "--bridge-tool", "ip", "--state-dir", str(tmp_path), out=SlowStream()
    )
    assert code == 0
    assert "EOF+" not in out
    blocks = ["+ " + block for block in out.split("\n+ ")]
    blocks[0] = blocks[0][2:]
    assert sorted(block.splitlines()[0] for block in blocks) == sorted(
        [f"+ {' '.join(argv)}" + (" <<'EOF'" if argv[0] != "sysctl" else "") for argv in BATCHES]
    )
    for block in blocks:
        lines = block.splitlines()
        if lines[0].endswith("<<'EOF'"):
            assert lines[-1] == "EOF"
            assert not any(line.startswith("+ ") for line in lines[1:])


def test_output_writes_each_block_whole_from_many_threads() -> None:
    stream = SlowStream()
    output = Output(stream)
    blocks = [f"+ block {n} <<'EOF'\nline {n}\nEOF" for n in range(8)]
    threads = [threading.Thread(target=output.line, args=(block,)) for block in blocks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = stream.getvalue()
    assert all(f"{block}\n" in written for block in blocks)  # each block whole, so all of them in some order
    assert len(written) == sum(len(block) + 1 for block in blocks)


def test_output_drops_what_follows_a_closed_pipe() -> None:
    output = Output(ClosedPipe())
    output.line("one")
    output.line("two")
    assert output.broken


# --- 18: one handler per subcommand, one options value with one default each, one renderer each ---------------


def test_one_options_value_with_one_default_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETWRAP_STATE_DIR", raising=False)
    _, options = cli.parse(["plan", "-f", "lab.toml"])
    assert options == Options(file=Path("lab.toml"))
    assert options.mode is None
    assert options.verbose is False
    assert options.lock_timeout == DEFAULT_TIMEOUT
    assert options.state_dir == Path("/run/netwrap")
    assert options.state_dir_from == "the default"
    assert options.check == "all"
    assert options.ssh is None
    assert options.ssh_command == ("ssh",)
    assert options.bridge_tool == "auto"
    monkeypatch.setenv("NETWRAP_STATE_DIR", "/srv/elsewhere")
    assert cli.parse(["clean"])[1].state_dir == Path("/srv/elsewhere")
    assert cli.parse(["clean", "--state-dir", "/x"])[1].state_dir == Path("/x")


def test_the_mode_is_the_styles_unless_asked_for() -> None:
    plain = cli.parse(["apply", "-f", "x.toml"])[1]
    assert (plain.mode_for("document"), plain.mode_for("docker")) == ("verbatim", "batch")
    batch = cli.parse(["apply", "-f", "x.toml", "--batch"])[1]
    assert (batch.mode_for("document"), batch.mode_for("docker")) == ("batch", "batch")
    verbatim = cli.parse(["tutorial", "--verbatim", "up"])[1]
    assert (verbatim.mode_for("document"), verbatim.mode_for("docker")) == ("verbatim", "verbatim")


def test_options_given_before_the_tutorials_action_survive_it() -> None:
    options = cli.parse(["tutorial", "-v", "--bridge-tool", "ip", "--ssh", "root@h", "plan", "--lock-timeout", "3"])[1]
    assert (options.verbose, options.bridge_tool, options.ssh, options.lock_timeout) == (True, "ip", "root@h", 3.0)
    options = cli.parse(["tutorial", "--ssh-option=-p2222", "up", "--ssh-option=-i/k", "--ssh-command", "ssh -F c"])[1]
    assert options.ssh_options == ("-i/k",)  # the action's own list replaces the one before it, as before
    assert options.ssh_command == ("ssh", "-F", "c")


@pytest.mark.parametrize(
    "argv",
    [
        ["tutorial"], ["tutorial", "script"], ["tutorial", "plan"], ["tutorial", "up"], ["tutorial", "verify"],
        ["tutorial", "down"], ["clean"], ["doctor"], ["apply", "-f", "x"], ["plan", "-f", "x"],
        ["destroy", "-f", "x"], ["status", "-f", "x"], ["graph", "-f", "x"], ["exec", "-f", "x", "c"],
    ],
)  # fmt: skip
def test_each_subcommand_has_its_own_handler(argv: list[str]) -> None:
    handler, _ = cli.parse(argv)
    others = {
        cli.parse(other)[0]
        for other in (["tutorial"], ["clean"], ["doctor"], ["apply", "-f", "x"], ["status", "-f", "x"])
        if other != argv
    }
    assert callable(handler.run)
    assert handler not in others


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        (["apply", "-f", str(EXAMPLES / "two-networks.toml")], "batch"),
        (["apply", "-f", TUTORIAL_FILE], "verbatim"),
        (["apply", "-f", TUTORIAL_FILE, "--batch"], "batch"),
        (["destroy", "-f", str(EXAMPLES / "two-networks.toml"), "--verbatim"], "verbatim"),
        (["tutorial", "up"], "verbatim"),
        (["tutorial", "--batch", "down"], "batch"),
    ],
)
def test_the_mode_reaches_the_engine(
    argv: list[str], mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[object] = []

    def spy(*args: object, **kwargs: object) -> Outcome:
        seen.append(kwargs.get("mode"))
        return Outcome()

    for name in ("netwrap.topology.apply.apply", "netwrap.topology.apply.destroy", "netwrap.cli.main.build",
                 "netwrap.cli.main.teardown"):  # fmt: skip
        monkeypatch.setattr(name, spy)
    monkeypatch.setattr("netwrap.cli.main.require_tools", lambda commands: None)
    assert run(*argv, "--state-dir", str(tmp_path))[0] == 0
    assert seen == [mode]


@pytest.mark.usefixtures("as_root")
def test_a_cluster_file_is_batched_unless_asked_otherwise(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[object] = []

    def spy(*args: object, **kwargs: object) -> dict[str, Outcome]:
        seen.append(kwargs.get("mode"))
        return {}

    monkeypatch.setattr(multihost, "apply", spy)
    file = tmp_path / "c.toml"
    file.write_text((EXAMPLES / "cluster" / "three-machines.toml").read_text())
    file.chmod(0o600)
    assert run("apply", "-f", str(file), "--state-dir", str(tmp_path / "s"))[0] == 0
    assert run("apply", "-f", str(file), "--state-dir", str(tmp_path / "s"), "--verbatim")[0] == 0
    assert seen == ["batch", "verbatim"]


def test_one_plan_renderer_for_every_plan() -> None:
    """The tutorial's plan, a file's and a cluster's print through :func:`print_plan`: commands on standard output
    (with each object's standing first, with -v), conflicts and the closing line on standard error."""
    streams = Streams(Output(io.StringIO()), Output(io.StringIO()))

    def shown() -> tuple[str, str]:
        out, err = streams.out.stream, streams.err.stream
        assert isinstance(out, io.StringIO) and isinstance(err, io.StringIO)
        found = (out.getvalue(), err.getvalue())
        for stream in (out, err):
            stream.seek(0)
            stream.truncate()
        return found

    report = PlanReport("plan lab", ["ip netns add a"], False, "1 command(s)", described=["missing  netns:a"])
    assert print_plan(report, streams, verbose=True) == 2
    assert shown() == ("# missing  netns:a\nip netns add a\n", "netwrap: plan lab: 1 command(s)\n")
    assert print_plan(report, streams, verbose=False) == 2
    assert shown()[0] == "ip netns add a\n"
    assert print_plan(PlanReport("plan", [], True, "", nothing="nothing to do; the host has every object"), streams,
                      verbose=False) == 0  # fmt: skip
    assert shown() == ("", "netwrap: plan: nothing to do; the host has every object\n")
    conflicted = PlanReport("plan lab", [], False, "", conflicts=["Tbr0 is a veth", "172.18.0.1 is on Tother"])
    assert print_plan(conflicted, streams, verbose=False) == 1
    assert shown()[1] == "netwrap: conflict: Tbr0 is a veth\nnetwrap: conflict: 172.18.0.1 is on Tother\n"


def test_one_status_renderer_for_files_and_clusters() -> None:
    out = io.StringIO()
    streams = Streams(Output(out), Output(io.StringIO()))
    assert print_status([], streams, kind="cluster", name="lab", as_json=True, require_up=True) == 0
    assert json.loads(out.getvalue()) == {"cluster": "lab", "containers": []}
