"""Batched execution: the same commands, regrouped by stage, with failures mapped back to their step."""

from __future__ import annotations

import threading
from pathlib import Path

import attrs
import pytest
from pytest_subprocess import FakeProcess

from netwrap import StateFile, StepError, build, tutorial
from netwrap.command import Command
from netwrap.engine.batch import Step, StepFailure, batches, execute
from netwrap.engine.build import _grouped
from netwrap.errors import CommandError
from netwrap.host.observe import HostState, NetnsView
from netwrap.host.parse import Link
from netwrap.host.runner import Result, SubprocessRunner
from netwrap.kinds import Bridge, NetObject, Rule, Sysctl, VethPair
from netwrap.topology import compose
from netwrap.topology import files as topofile
from tests.test_tutorial import built_host, empty_host, fake, mutating_calls, seen

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tutorial_steps(tool: str = "ip") -> list[Step]:
    return [Step(n, c) for n, o in enumerate(tutorial.objects(tool), start=1) for c in o.create_commands()]  # type: ignore[arg-type]


def test_the_tutorial_in_five_processes() -> None:
    found = batches(tutorial_steps())
    assert [b.command.shell().splitlines()[0] for b in found] == [
        "ip -batch - <<'EOF'",
        "nsenter --net=/run/netns/Tdocker0 -- ip -batch - <<'EOF'",
        "nsenter --net=/run/netns/Tdocker1 -- ip -batch - <<'EOF'",
        "sysctl -w net.ipv4.ip_forward=1",
        "iptables-restore --noflush <<'EOF'",
    ]
    host = found[0].command.input or ""
    assert host.splitlines() == [
        "netns add Tdocker0", "netns add Tdocker1",
        "link add Tveth0 type veth peer name Tveth1", "link add Tveth2 type veth peer name Tveth3",
        "link set Tveth0 netns Tdocker0", "link set Tveth2 netns Tdocker1",
        "link add Tbr0 type bridge", "link set Tveth1 master Tbr0", "link set Tveth3 master Tbr0",
        "link set Tveth1 up", "link set Tveth3 up", "addr add 172.18.0.1/24 dev Tbr0", "link set Tbr0 up",
    ]  # fmt: skip
    assert (found[1].command.input or "").splitlines() == [
        "addr add 172.18.0.2/24 dev Tveth0", "link set Tveth0 up", "route add default via 172.18.0.1 dev Tveth0",
    ]  # fmt: skip
    assert (found[4].command.input or "").splitlines() == [
        "*nat",
        "-A POSTROUTING -s 172.18.0.0/24 ! -o Tbr0 -j MASQUERADE",
        "-A PREROUTING ! -i Tbr0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.18.0.2:80",
        "COMMIT",
    ]


def test_commands_that_cannot_be_batched_run_in_their_place() -> None:
    found = batches(tutorial_steps("brctl"))
    heads = [b.command.shell().splitlines()[0] for b in found]
    brctl = ["brctl addbr Tbr0", "brctl addif Tbr0 Tveth1", "brctl addif Tbr0 Tveth3"]
    assert heads[:5] == ["ip -batch - <<'EOF'", *brctl, "ip -batch - <<'EOF'"]


def test_removal_runs_the_stages_the_other_way_round() -> None:
    steps = [Step(n, c) for n, o in enumerate(reversed(tutorial.objects("ip")), start=1) for c in o.create_commands()]
    assert [b.command.tool for b in batches(steps, removing=True)] == ["iptables-restore", "sysctl", "ip", "ip", "ip"]


def test_a_topology_of_n_containers_needs_processes_per_namespace_not_per_object() -> None:
    for n in (10, 50, 200):
        text = '[networks.net]\nsubnet = "10.0.0.0/16"\n' + "".join(
            f'[containers.c{i}]\nnetworks = ["net"]\nports = ["{10000 + i}:80"]\n' for i in range(n)
        )
        topo = topofile.loads(text)
        objects = compose.objects(topo, compose.allocate(topo))
        steps = [Step(k, c) for k, o in enumerate(objects, start=1) for c in o.create_commands()]
        found = batches(steps)
        assert len(steps) > 8 * n
        assert len(found) == 1 + n + 1 + 1  # host, one per namespace, sysctls, rules


@pytest.mark.parametrize("line", [4, 11, 13])
def test_a_failing_host_line_is_the_step_it_came_from(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, line: int
) -> None:
    fake(fp, empty_host(), [])
    failed = f"RTNETLINK answers: File exists\nCommand failed -:{line}\n"
    fp.register(["ip", "-batch", "-"], returncode=1, stderr=failed)
    fp.register(["iptables-restore", "--noflush"])  # started first, beside the host's batch
    with pytest.raises(StepError) as caught:
        build(tutorial.objects("ip"), runner, StateFile(tmp_path / "t.json"), mode="batch")
    host = batches(tutorial_steps())[0]
    assert caught.value.step == host.lines[line - 1]
    failed_line = (host.command.input or "").splitlines()[line - 1]
    obj = tutorial.objects("ip")[caught.value.step - 1]
    assert caught.value.key == obj.key
    assert failed_line in {" ".join(c.args) for c in obj.create_commands()}
    assert "File exists" in caught.value.stderr


def test_a_failing_restore_line_is_the_rule_it_came_from(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path
) -> None:
    fake(fp, empty_host(), [])
    fp.register(["ip", "-batch", "-"])
    fp.register(["nsenter", "--net=/run/netns/Tdocker0", "--", "ip", "-batch", "-"])
    fp.register(["nsenter", "--net=/run/netns/Tdocker1", "--", "ip", "-batch", "-"])
    fp.register(["sysctl", "-w", "net.ipv4.ip_forward=1"])
    fp.register(["iptables-restore", "--noflush"], returncode=2,
                stderr="iptables-restore v1.8.9 (nf_tables): unknown option\nError occurred at line: 3\n")  # fmt: skip
    with pytest.raises(StepError) as caught:
        build(tutorial.objects("ip"), runner, StateFile(tmp_path / "t.json"), mode="batch")
    assert (caught.value.step, caught.value.total) == (22, 22)
    assert caught.value.key.startswith("nat:PREROUTING:")


def test_a_built_host_needs_no_batch_at_all(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    fake(fp, built_host(), [])
    assert build(tutorial.objects(), runner, StateFile(tmp_path / "t.json"), mode="batch").changed == ()
    assert mutating_calls(fp, built_host()) == []
    assert len(seen(fp)) == 6  # namespaces, host, two containers, nat, ip_forward


def test_a_comment_with_spaces_survives_the_restore_file() -> None:
    rule = Rule("FORWARD", "ACCEPT", comment="netwrap lab")
    (batch,) = batches([Step(1, rule.create_commands()[0])])
    assert '-A FORWARD -m comment --comment "netwrap lab" -j ACCEPT' in (batch.command.input or "")
    assert Command("ip", ("-V",)).shell() == "ip -V"


@attrs.define
class Overlapping:
    """Answers every command; the restore succeeds only if an ``ip`` batch starts while it runs."""

    failing: frozenset[str] = frozenset()
    ip_started: threading.Event = attrs.field(factory=threading.Event)
    order: list[str] = attrs.field(factory=list)
    concurrent: bool = True

    def run(self, command: Command) -> Result:
        self.order.append(command.tool)
        if command.tool == "ip":
            self.ip_started.set()
        if command.tool == "iptables-restore" and not self.ip_started.wait(timeout=2):
            raise CommandError(command.argv, 1, "", "ran alone")
        if command.tool in self.failing:
            stderr = "Error occurred at line: 2\n" if command.tool == "iptables-restore" else "Command failed -:1\n"
            raise CommandError(command.argv, 1, "", stderr)
        return Result(command, 0)


def removal_steps() -> list[Step]:
    objects = list(reversed(tutorial.objects("ip")))
    return [
        Step(n, c)
        for n, o in enumerate(objects, start=1)
        for c in (o.restore_commands("0") if isinstance(o, Sysctl) else o.delete_commands())
    ]


def test_removing_the_rules_overlaps_the_other_batches() -> None:
    runner = Overlapping()
    execute(removal_steps(), runner, "batch", removing=True)
    assert runner.order[0] == "iptables-restore"


def test_a_dry_run_keeps_the_batches_in_order() -> None:
    runner = Overlapping(concurrent=False, ip_started=threading.Event())
    runner.ip_started.set()  # nothing runs beside anything: the restore must not wait
    execute(removal_steps(), runner, "batch", removing=True)
    assert runner.order == [b.command.tool for b in batches(removal_steps(), removing=True)]


def test_of_two_failures_the_earlier_step_is_raised() -> None:
    steps = removal_steps()
    found = batches(steps, removing=True)
    with pytest.raises(StepFailure) as caught:
        execute(steps, Overlapping(failing=frozenset({"ip", "iptables-restore"})), "batch", removing=True)
    restore = next(b for b in found if b.command.tool == "iptables-restore")
    assert caught.value.item == restore.lines[1]  # the rules come first when removing
    with pytest.raises(StepFailure) as caught:
        execute(steps, Overlapping(failing=frozenset({"ip"})), "batch", removing=True)
    assert caught.value.batch is not None and caught.value.batch.command.tool == "ip"


def test_a_bridge_made_outside_the_link_group_keeps_its_own_deletion() -> None:
    bridge = Bridge("nw-net", tool="ip", group=7)
    pairs = [VethPair(f"v{i}", "eth0", peer_netns=f"c{i}", group=7) for i in range(2)]
    order: list[NetObject] = [bridge, *pairs]
    steps = [Step(n, c) for n, o in enumerate(order, start=1) for c in o.delete_commands()]

    def host(bridge_group: int | None) -> HostState:
        links = [
            Link("nw-net", kind="bridge", group=bridge_group),
            *(Link(p.name, kind="veth", group=7) for p in pairs),
        ]
        return HostState(views={None: NetnsView(links=tuple(links))})

    assert [s.command.args for s in _grouped(steps, order, host(7))] == [("link", "del", "group", "7")]
    assert [s.command.args for s in _grouped(steps, order, host(None))] == [  # an older netwrap's bridge
        ("link", "del", "nw-net"),
        ("link", "del", "group", "7"),
    ]


@pytest.mark.parametrize("removing", [False, True])
def test_the_rules_run_beside_the_device_batches(removing: bool) -> None:
    """Building as removing: the rules' transaction runs while the ``ip`` batches do (each side waits for the
    other to start: run before or after them, as the old orders did, one of them waits in vain); removing, so
    do the settings given back."""
    beside = {"iptables-restore", "sysctl"} if removing else {"iptables-restore"}
    ip_started = threading.Event()
    overlapped: dict[str, bool] = {}

    started = {tool: threading.Event() for tool in beside}

    @attrs.define
    class Watching:
        def run(self, command: Command) -> Result:
            if command.tool in ("ip", "nsenter"):
                ip_started.set()
                overlapped["ip"] = all(event.wait(timeout=2.0) for event in started.values())
            elif command.tool in beside:
                started[command.tool].set()
                overlapped[command.tool] = ip_started.wait(timeout=2.0)
            return Result(command, 0, "", "")

    steps = tutorial_steps()
    execute(list(reversed(steps)) if removing else steps, Watching(), "batch", removing=removing)
    assert overlapped == dict.fromkeys({"ip", *beside}, True)


def test_a_batch_alone_in_its_stage_runs_in_the_callers_thread() -> None:
    """Stages run one after another; one process alone in its stage needs no thread started and waited for
    (several of those in a row were milliseconds each of a CNI ADD). Namespaces' batches together still run at
    once, and the rules beside."""
    where: dict[str, set[bool]] = {}

    @attrs.define
    class Noting:
        def run(self, command: Command) -> Result:
            key = f"{command.tool}:{command.netns}"
            where.setdefault(key, set()).add(threading.current_thread() is threading.main_thread())
            return Result(command, 0, "", "")

    objects: list[NetObject] = [Bridge("br0", tool="ip"), VethPair("v0", "eth0", peer_netns="a"),
                                VethPair("v1", "eth0", peer_netns="b"), Rule("FORWARD", "ACCEPT")]  # fmt: skip
    steps = [Step(n, c) for n, o in enumerate(objects, start=1) for c in o.create_commands()]
    steps += [Step(9, Command("ip", ("link", "set", "eth0", "up"), netns=ns)) for ns in ("a", "b")]
    execute(steps, Noting(), "batch")
    assert where["ip:None"] == {True}  # the host's batch, alone in its stage
    assert where["ip:a"] == where["ip:b"] == {False}  # two namespaces at once
    assert where["iptables-restore:None"] == {False}  # beside
