"""Docker-style topologies on the real kernel, each test in its own sandbox, with real packets.

The "remote machine" is verify's simulated outside (namespace Toutside, 192.0.2.2,
joined to the host by an uplink on which the host is 192.0.2.1).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap import MemoryStore, Sandbox, build, teardown
from netwrap.command import Command
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.tutorial.verify import HOST_UPLINK_ADDRESS, OUTSIDE, OUTSIDE_ADDRESS, outside_objects, ping, tcp_probe
from tests.integration.test_tutorial_kernel import plus_lines
from tests.test_tutorial import DOCUMENT

pytestmark = pytest.mark.integration

TOPOLOGY = """
name = "t4"

[networks.apps]
subnet = "10.40.0.0/24"

[networks.other]
subnet = "10.60.0.0/24"

[networks.quiet]
subnet = "10.50.0.0/24"
icc = false

[containers.web]
networks = ["apps"]
ports = ["8080:80"]

[containers.client]
networks = ["apps"]

[containers.stranger]
networks = ["other"]

[containers.both]
networks = ["apps", { network = "other", address = "10.60.0.100" }]

[containers.q1]
networks = ["quiet"]

[containers.q2]
networks = ["quiet"]

[containers.alone]
network_mode = "none"

[containers.side]
network_mode = "container:web"

[containers.hostc]
network_mode = "host"
"""
WEB, CLIENT, STRANGER, BOTH = "10.40.0.2", "10.40.0.3", "10.60.0.2", "10.60.0.100"
Q1, Q2 = "10.50.0.2", "10.50.0.3"


def netwrap(sandbox: Sandbox, *args: str) -> Result:
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset({0, 1, 2})))


@pytest.fixture
def topo_file(tmp_path: Path) -> Path:
    path = tmp_path / "t4.toml"
    path.write_text(TOPOLOGY)
    return path


@pytest.fixture
def applied(sandbox: Sandbox, topo_file: Path, tmp_path: Path) -> Iterator[Sandbox]:
    """The topology applied, with a simulated outside machine; both removed afterwards."""
    store = MemoryStore()
    build(outside_objects(), sandbox.runner, store)
    result = netwrap(sandbox, "apply", "-f", str(topo_file), "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    yield sandbox
    teardown(sandbox.runner, store)


def state_args(topo_file: Path, tmp_path: Path) -> tuple[str, ...]:
    return ("-f", str(topo_file), "--state-dir", str(tmp_path / "state"))


def test_apply_twice_is_a_no_op_and_destroy_restores_the_sandbox(
    sandbox: Sandbox, topo_file: Path, tmp_path: Path
) -> None:
    before = snapshot.take(sandbox.runner)
    planned = netwrap(sandbox, "plan", *state_args(topo_file, tmp_path))
    assert planned.returncode == 2
    first = netwrap(sandbox, "apply", *state_args(topo_file, tmp_path))
    assert first.returncode == 0, first.stderr
    ran = [line.removeprefix("+ ") for line in first.stdout.splitlines()]
    # plan said exactly what apply ran (batched: the rules' restore, then ip -batch and the namespaces'); the
    # restore runs beside the rest and the namespaces' batches a few at a time, so they may print in another order
    assert sorted(ran) == sorted(planned.stdout.splitlines())
    assert planned.stdout.splitlines()[0] == "iptables-restore --noflush <<'EOF'"
    assert "ip -batch - <<'EOF'" in ran[: ran.index("EOF") + 2]  # the host's batch is among the first two
    again = netwrap(sandbox, "apply", *state_args(topo_file, tmp_path))
    assert again.returncode == 0
    assert plus_lines(again.stdout) == []
    assert netwrap(sandbox, "plan", *state_args(topo_file, tmp_path)).returncode == 0
    status = json.loads(netwrap(sandbox, "status", "--json", *state_args(topo_file, tmp_path)).stdout)
    assert {c["name"]: c["state"] for c in status["containers"]} == dict.fromkeys(
        ["web", "client", "stranger", "both", "q1", "q2", "alone", "side", "hostc"], "up"
    )
    assert netwrap(sandbox, "destroy", *state_args(topo_file, tmp_path)).returncode == 0
    assert before.differences(snapshot.take(sandbox.runner)) == []
    assert plus_lines(netwrap(sandbox, "destroy", *state_args(topo_file, tmp_path)).stdout) == []


def test_modes_behave_as_in_docker(applied: Sandbox, topo_file: Path, tmp_path: Path) -> None:
    def exec_(container: str, *argv: str) -> str:
        result = netwrap(applied, "exec", *state_args(topo_file, tmp_path), container, "--", *argv)
        assert result.returncode == 0, result.stderr
        return result.stdout

    alone = [link["ifname"] for link in json.loads(exec_("alone", "ip", "-json", "link", "show"))]
    assert alone == ["lo"]
    host_links = {link["ifname"] for link in json.loads(exec_("hostc", "ip", "-json", "link", "show"))}
    assert {"t4-apps", "t4-other", "v0-web", "Tuplink0"} <= host_links
    # one namespace (IPv4 only: an IPv6 link-local address may stop being "tentative" between the two reads)
    assert exec_("side", "ip", "-4", "-o", "addr", "show") == exec_("web", "ip", "-4", "-o", "addr", "show")
    assert f"inet {WEB}/24" in exec_("side", "ip", "-o", "addr", "show")


def test_a_published_port_answers_from_everywhere(applied: Sandbox) -> None:
    r = applied.runner
    for client, host in (
        (OUTSIDE, HOST_UPLINK_ADDRESS),  # another machine, to the host's address
        (None, HOST_UPLINK_ADDRESS),  # the host, to its own address
        (None, "127.0.0.1"),  # the host, to its loopback
        ("client", HOST_UPLINK_ADDRESS),  # another container on the same network (hairpin)
        ("stranger", HOST_UPLINK_ADDRESS),  # a container on another network
    ):
        ok, detail = tcp_probe(r, "web", client, host, 8080, listen_port=80)
        assert ok, detail


def test_published_ports_and_networks_work_when_forward_policy_is_drop(
    sandbox: Sandbox, topo_file: Path, tmp_path: Path
) -> None:
    sandbox.runner.run(Command("iptables", ("-P", "FORWARD", "DROP")))
    store = MemoryStore()
    build(outside_objects(), sandbox.runner, store)
    assert netwrap(sandbox, "apply", *state_args(topo_file, tmp_path)).returncode == 0
    r = sandbox.runner
    ok, detail = tcp_probe(r, "web", OUTSIDE, HOST_UPLINK_ADDRESS, 8080, listen_port=80)
    assert ok, detail
    ok, detail = tcp_probe(r, "web", "client", HOST_UPLINK_ADDRESS, 8080, listen_port=80)
    assert ok, detail
    assert ping(r, OUTSIDE_ADDRESS, "web")  # out through MASQUERADE
    assert ping(r, CLIENT, "web")  # the same network
    teardown(r, store)


def test_isolation_holds_in_both_directions(applied: Sandbox) -> None:
    r = applied.runner
    assert not ping(r, STRANGER, "web", count=1)
    assert not ping(r, WEB, "stranger", count=1)
    assert ping(r, WEB, "both")  # a container on both networks reaches each
    assert ping(r, STRANGER, "both")
    assert ping(r, CLIENT, "web")


def test_without_icc_containers_reach_the_outside_not_each_other(applied: Sandbox) -> None:
    r = applied.runner
    assert not ping(r, Q2, "q1", count=1)
    assert not ping(r, Q1, "q2", count=1)
    assert ping(r, OUTSIDE_ADDRESS, "q1")
    assert ping(r, OUTSIDE_ADDRESS, "q2")


def test_reapply_keeps_addresses_removes_what_is_gone_and_reuses_freed_ones(
    sandbox: Sandbox, topo_file: Path, tmp_path: Path
) -> None:
    before = snapshot.take(sandbox.runner)
    assert netwrap(sandbox, "apply", *state_args(topo_file, tmp_path)).returncode == 0
    # client leaves; a new container is declared *first*: it must not take web's address
    text = TOPOLOGY.replace('[containers.client]\nnetworks = ["apps"]\n', "")
    text = text.replace("[containers.web]", '[containers.newbie]\nnetworks = ["apps"]\n\n[containers.web]', 1)
    topo_file.write_text(text)
    result = netwrap(sandbox, "apply", *state_args(topo_file, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "\nnetns del client\n" in result.stdout
    rows = json.loads(netwrap(sandbox, "status", "--json", *state_args(topo_file, tmp_path)).stdout)["containers"]
    addresses = {row["name"]: [n["address"] for n in row["networks"]] for row in rows}
    assert addresses["web"] == [f"{WEB}/24"]
    assert addresses["newbie"] == [f"{CLIENT}/24"]  # client's address, released, is the lowest free one
    namespaces = sandbox.runner.run(Command("ip", ("netns", "list"), mutates=False)).stdout
    assert "client" not in namespaces.split()
    assert netwrap(sandbox, "destroy", *state_args(topo_file, tmp_path)).returncode == 0
    assert before.differences(snapshot.take(sandbox.runner)) == []


def test_the_tutorial_file_reproduces_the_document(sandbox: Sandbox, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "tutorial.toml"
    args = ("-f", str(example), "--state-dir", str(tmp_path))
    planned = netwrap(sandbox, "plan", *args)
    assert planned.stdout.splitlines() == DOCUMENT
    applied = netwrap(sandbox, "apply", *args)
    assert plus_lines(applied.stdout) == DOCUMENT
    checked = netwrap(sandbox, "tutorial", "verify", "--state-dir", str(tmp_path))
    assert "4 of 4 scenarios passed" in checked.stdout, checked.stdout
    assert netwrap(sandbox, "destroy", *args).returncode == 0


def test_two_topologies_share_ip_forward_and_hand_it_over(sandbox: Sandbox, tmp_path: Path) -> None:
    """ip_forward is set by the first topology and wanted by the second: destroying the first keeps it on."""
    before = snapshot.take(sandbox.runner)
    first, second = tmp_path / "one.toml", tmp_path / "two.toml"
    first.write_text('name = "one"\n[networks.a]\nsubnet = "10.70.0.0/24"\n[containers.x]\nnetworks = ["a"]\n')
    second.write_text('name = "two"\n[networks.b]\nsubnet = "10.71.0.0/24"\n[containers.y]\nnetworks = ["b"]\n')
    state = ("--state-dir", str(tmp_path / "state"))
    assert netwrap(sandbox, "apply", "-f", str(first), *state).returncode == 0
    assert netwrap(sandbox, "apply", "-f", str(second), *state).returncode == 0

    def forwarding() -> str:
        return sandbox.runner.run(Command("sysctl", ("-n", "net.ipv4.ip_forward"), mutates=False)).stdout.strip()

    destroyed = netwrap(sandbox, "destroy", "-f", str(first), *state)
    assert "still used by topology-two; handed over" in destroyed.stderr
    assert forwarding() == "1"
    assert ping(sandbox.runner, "10.71.0.1", "y")  # the second one still works
    netwrap(sandbox, "destroy", "-f", str(second), *state)
    assert forwarding() == before.ip_forward
    assert before.differences(snapshot.take(sandbox.runner)) == []
