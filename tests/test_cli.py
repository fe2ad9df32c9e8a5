"""The command line without root: the script, help, and the errors that stop before any command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from netwrap import StateFile, tutorial
from netwrap.cli import main as cli
from netwrap.engine.build import Outcome
from netwrap.engine.plan import Plan
from netwrap.engine.state import Record, Writer
from netwrap.topology.apply import TopologyPlan
from tests.conftest import count_calls, fixture_text
from tests.test_tutorial import ADDRS, DOCUMENT, IPROUTE2_BRIDGE, LINKS, built_host, empty_host, fake, mutating_calls


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def commands(script: str) -> list[str]:
    return [line for line in script.splitlines() if line and not line.startswith("#")][1:]


def test_script_prints_the_document_and_runs_nothing(fp: FakeProcess) -> None:
    code, out, _ = run("tutorial", "script", "--bridge-tool", "brctl")
    assert code == 0
    assert commands(out) == DOCUMENT
    assert len(fp.calls) == 0


def test_script_with_iproute2_bridge(fp: FakeProcess) -> None:
    code, out, _ = run("tutorial", "script", "--bridge-tool", "ip")
    assert code == 0
    assert commands(out) == [IPROUTE2_BRIDGE.get(n, c) for n, c in enumerate(DOCUMENT, start=1)]


def test_options_may_stand_before_the_action() -> None:
    _, before, _ = run("tutorial", "--bridge-tool", "ip", "script")
    _, after, _ = run("tutorial", "script", "--bridge-tool", "ip")
    assert before == after
    assert "ip link add Tbr0 type bridge" in before


def test_down_script() -> None:
    code, out, _ = run("tutorial", "script", "--down", "--bridge-tool", "brctl")
    assert code == 0
    assert commands(out)[0].startswith("iptables -t nat -D PREROUTING")
    assert commands(out)[-1] == "ip netns del Tdocker0 || true"


@pytest.mark.parametrize("action", ["up", "down", "verify"])
def test_not_root_is_a_clear_error_before_any_command(
    fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["tutorial", action]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"netwrap: error: `netwrap tutorial {action}` reads or changes the network and must run as root"
    )
    assert len(fp.calls) == 0


def test_demo_needs_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["tutorial"]) == 1
    assert "sudo netwrap tutorial" in capsys.readouterr().err


def test_no_command_prints_help() -> None:
    code, out, _ = run()
    assert code == 64  # a usage error: never 2, which is plan's "changes to make"
    assert "tutorial" in out


def test_unknown_bridge_tool_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.run(["tutorial", "script", "--bridge-tool", "bridge"])
    assert caught.value.code == 64
    assert "invalid choice: 'bridge'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("action", "tool", "package"), [("up", "iptables", "iptables"), ("verify", "ping", "iputils-ping")]
)
def test_a_missing_tool_stops_before_the_first_change(
    fp: FakeProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    action: str,
    tool: str,
    package: str,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: None if name == tool else f"/usr/sbin/{name}")
    assert cli.main(["tutorial", action, "--bridge-tool", "brctl", "--state-dir", "/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert f"required tool {tool!r} was not found" in err
    assert f"apt-get install {package}" in err
    assert len(fp.calls) == 0


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to be root, with every tool present under its bare name (for `fp`)."""
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)


@pytest.mark.usefixtures("as_root")
def test_plan_on_an_empty_host_prints_the_document_and_exits_2(fp: FakeProcess, tmp_path: Path) -> None:
    fake(fp, empty_host(), [])
    code, out, err = run("tutorial", "plan", "--bridge-tool", "brctl", "--state-dir", str(tmp_path))
    assert code == 2
    assert out.splitlines() == DOCUMENT
    assert "22 change(s)" in err
    assert mutating_calls(fp, empty_host()) == []


@pytest.mark.usefixtures("as_root")
def test_plan_on_a_built_host_exits_0(fp: FakeProcess, tmp_path: Path) -> None:
    fake(fp, built_host(), [])
    code, out, err = run("tutorial", "plan", "-v", "--bridge-tool", "brctl", "--state-dir", str(tmp_path))
    assert code == 0
    assert "nothing to do" in err
    assert "# ok       netns:Tdocker0: namespace Tdocker0 exists" in out.splitlines()
    assert not [line for line in out.splitlines() if not line.startswith("#")]


@pytest.mark.usefixtures("as_root")
def test_plan_with_a_conflict_exits_1(fp: FakeProcess, tmp_path: Path) -> None:
    answers = empty_host()
    answers[LINKS] = (0, fixture_text("conflict_links.json"))
    answers[ADDRS] = (0, fixture_text("conflict_addr.json"))  # the same host: its devices, with their addresses
    fake(fp, answers, [])
    code, _, err = run("tutorial", "plan", "--bridge-tool", "brctl", "--state-dir", str(tmp_path))
    assert code == 1
    assert "netwrap: conflict: Tbr0 exists on the host but is a veth, not a bridge" in err


@pytest.mark.usefixtures("as_root")
def test_up_with_a_conflict_changes_nothing(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    answers = empty_host()
    answers[LINKS] = (0, fixture_text("conflict_links.json"))
    answers[ADDRS] = (0, fixture_text("conflict_addr.json"))  # the same host: its devices, with their addresses
    fake(fp, answers, [])
    assert cli.main(["tutorial", "up", "--bridge-tool", "brctl", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netwrap: error: nothing was changed; the host has conflicting objects:")
    assert mutating_calls(fp, answers) == []
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]


def test_clean_dry_run_lists_and_changes_nothing(fp: FakeProcess, tmp_path: Path) -> None:
    store = StateFile.in_dir(tmp_path, "tutorial")
    record = Record(complete=False, writer=Writer(2**22 + 3, 1), action="up")
    for obj in tutorial.objects()[:3]:
        record.add(obj)
    store.save(record)
    code, out, _ = run("clean", "--dry-run", "--state-dir", str(tmp_path))
    assert code == 0
    assert out.splitlines() == [
        "tutorial: crashed, 3 object(s): up by pid 4194307 ended before finishing",
        "  would remove veth::Tveth0:Tveth1",
        "  would remove netns:Tdocker1",
        "  would remove netns:Tdocker0",
    ]
    assert len(fp.calls) == 0
    assert store.path.exists()


def test_clean_with_nothing_recorded(tmp_path: Path) -> None:
    code, _, err = run("clean", "--state-dir", str(tmp_path))
    assert code == 0
    assert "nothing to do" in err


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_graph_needs_no_root_and_runs_nothing(fp: FakeProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, _ = run("graph", "-f", str(EXAMPLES / "modes.toml"), "--state-dir", str(tmp_path))
    assert code == 0
    assert out.startswith("flowchart LR")
    code, out, _ = run("graph", "--format", "dot", "-f", str(EXAMPLES / "modes.toml"), "--state-dir", str(tmp_path))
    assert out.startswith('graph "modes" {')
    assert len(fp.calls) == 0


def test_a_bad_file_is_reported_whole_before_anything_runs(
    fp: FakeProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[networks.a]\nsubnet = "10.0.0.0/8"\n[networks.b]\nsubnet = "10.1.0.0/16"\n'
                   '[containers.x]\nnetworks = ["c"]\n')  # fmt: skip
    assert cli.main(["apply", "-f", str(bad), "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: [networks.b] subnet: 10.1.0.0/16 overlaps 10.0.0.0/8 of network 'a'" in err
    assert f"{bad}: [containers.x] networks[0]: network 'c' is not declared" in err
    assert len(fp.calls) == 0


@pytest.mark.usefixtures("as_root")
def test_plan_of_the_tutorial_file_is_the_document(fp: FakeProcess, tmp_path: Path) -> None:
    fake(fp, empty_host(), [])
    code, out, _ = run("plan", "-f", str(EXAMPLES / "tutorial.toml"), "--state-dir", str(tmp_path))
    assert code == 2
    assert out.splitlines() == DOCUMENT
    assert mutating_calls(fp, empty_host()) == []
    assert list(tmp_path.iterdir()) == []  # a plan writes no record


@pytest.mark.usefixtures("as_root")
def test_status_json_on_an_empty_host(fp: FakeProcess, tmp_path: Path) -> None:
    fake(fp, empty_host(), [])
    code, out, _ = run("status", "--json", "-f", str(EXAMPLES / "tutorial.toml"), "--state-dir", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["topology"] == "tutorial"
    assert [(c["name"], c["state"]) for c in data["containers"]] == [("Tdocker0", "missing"), ("Tdocker1", "missing")]
    assert data["containers"][0]["networks"][0] == {
        "network": "tutorial", "interface": "Tveth0", "host_interface": "Tveth1",
        "address": "172.18.0.2/24", "bridge": "Tbr0",
    }  # fmt: skip


def test_exec_refuses_an_unknown_container(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exec", "-f", str(EXAMPLES / "modes.toml"), "ghost", "--", "true"]) == 1
    assert "'ghost' is not a container of topology 'modes'" in capsys.readouterr().err
    assert cli.main(["exec", "-f", str(EXAMPLES / "modes.toml"), "app"]) == 1
    assert "exec needs a command after --" in capsys.readouterr().err


@pytest.mark.usefixtures("as_root")
def test_quick_reaches_apply_plan_and_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--quick asks for the host-side check; without it every namespace is read."""
    asked: list[tuple[str, object]] = []

    def spy(name: str, result: object) -> object:
        def call(*args: object, **kwargs: object) -> object:
            asked.append((name, kwargs.get("check")))
            return result

        return call

    monkeypatch.setattr("netwrap.topology.apply.apply", spy("apply", Outcome()))
    monkeypatch.setattr("netwrap.topology.apply.plan_topology", spy("plan", TopologyPlan(Plan(()), (), ())))
    monkeypatch.setattr("netwrap.topology.apply.status", spy("status", []))
    monkeypatch.setattr("netwrap.cli.main.require_tools", lambda commands: None)
    file = str(EXAMPLES / "two-networks.toml")
    for command in ("apply", "plan", "status"):
        assert run(command, "-f", file, "--state-dir", str(tmp_path), "--quick")[0] == 0
        assert run(command, "-f", file, "--state-dir", str(tmp_path))[0] == 0
    assert asked == [(c, check) for c in ("apply", "plan", "status") for check in ("host", "all")]
    with pytest.raises(SystemExit) as usage:  # a teardown reads what it removes: it has no --quick
        run("destroy", "-f", file, "--quick")
    assert usage.value.code == 64


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("netwrap 0.")


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "soon"])
def test_a_lock_timeout_that_is_no_number_of_seconds_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str], fp: FakeProcess, tmp_path: Path
) -> None:
    """Issue 12, items 12 and 14: usage errors have an exit code of their own, and -5 or nan are refused.
    (``fp`` and a state directory of its own: were the value accepted, nothing real would run.)"""
    with pytest.raises(SystemExit) as caught:
        cli.run(["tutorial", "plan", "--lock-timeout", value, "--state-dir", str(tmp_path)])
    assert caught.value.code == 64
    assert f"{value!r} is not a number of seconds" in capsys.readouterr().err


def test_the_command_line_leaves_what_other_commands_need_unimported(tmp_path: Path) -> None:
    """``netwrap apply``/``plan``/``status`` start without the tutorial, the doctor, the sandbox, snapshots,
    clusters or graphs: each is imported by the command that uses it (here ``graph`` of a plain file)."""
    file = tmp_path / "one.toml"
    file.write_text('[networks.n]\nsubnet = "10.9.0.0/24"\n[containers.c]\nnetworks = ["n"]\n')
    code = (
        "import contextlib, io, sys, netwrap.cli.main as m\n"
        "before = set(sys.modules)\n"
        f"with contextlib.redirect_stdout(io.StringIO()): m.main(['graph', '-f', {str(file)!r}, '--state-dir', "
        f"{str(tmp_path / 'state')!r}])\n"
        "print(' '.join(sorted(before)), '|', ' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    at_start, _, by_graph = (set(part.split()) for part in done.stdout.partition("|"))
    assert "netwrap.topology.apply" in at_start
    lazy = {"netwrap.tutorial", "netwrap.tutorial.verify", "netwrap.cli.doctor", "netwrap.host.sandbox",
            "netwrap.host.snapshot", "netwrap.topology.clusterfile", "netwrap.topology.multihost"}  # fmt: skip
    assert at_start & (lazy | {"netwrap.topology.graph"}) == set()
    assert "netwrap.topology.graph" in by_graph
    assert by_graph & lazy == set()


def test_a_topology_file_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Whether it is a cluster file is decided on the data read for it: a large file costs one parse."""
    import tomllib  # noqa: PLC0415

    parsed = count_calls(monkeypatch, tomllib, "loads")
    file = tmp_path / "one.toml"
    file.write_text('[networks.n]\nsubnet = "10.9.0.0/24"\n[containers.c]\nnetworks = ["n"]\n')
    assert cli.main(["graph", "-f", str(file), "--state-dir", str(tmp_path / "state")]) == 0
    assert "10.9.0." in capsys.readouterr().out
    assert len(parsed) == 1


def test_clean_leaves_a_cni_network_whose_call_died_to_its_next_call(fp: FakeProcess, tmp_path: Path) -> None:
    """A netwrap-cni network's record holds every container of it, not the dead call's alone: torn down, it would
    cut them all off, and their runtime never adds them again."""
    store = StateFile.in_dir(tmp_path, "topology-cni-apps")
    record = Record(complete=False, writer=Writer(2**22 + 3, 1), action="apply")
    for obj in tutorial.objects()[:3]:
        record.add(obj)
    store.save(record)
    for args in (("clean", "--dry-run"), ("clean",)):
        code, out, _ = run(*args, "--state-dir", str(tmp_path))
        assert code == 0
        assert out.splitlines() == [
            "topology-cni-apps: interrupted, 3 object(s): a netwrap-cni call (pid 4194307) ended before finishing; "
            "the network's next CNI call finishes it, or `netwrap apply -f CONFIG` now; left as it is"
        ]
    assert len(fp.calls) == 0
    kept = store.load()
    assert kept is not None and kept.keys() == record.keys() and not kept.complete
