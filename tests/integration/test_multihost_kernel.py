"""Three machines, simulated by sandboxes joined by an underlay switch, two containers on each.

Each machine is a sandbox of its own (own network namespace and /run/netns), so
each has its own namespaces; a fourth sandbox holds the underlay switch, a
bridge with a veth to each machine in 192.0.2.0/24. All traffic stays inside.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap import Sandbox
from netwrap.command import Command
from netwrap.errors import ClusterError
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.topology import multihost as mh
from netwrap.topology.lab import Lab
from netwrap.tutorial.verify import ping, tcp_probe
from tests.conftest import require_root
from tests.integration.sshd import make_keys, one_word_options, sshd

pytestmark = pytest.mark.integration
CONTAINERS = {"a": ("a1", "a2"), "b": ("b1", "b2"), "c": ("c1", "c2")}


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root()
    with Lab(list(CONTAINERS)) as made:
        yield made


@pytest.fixture
def machines(lab: Lab) -> dict[str, Sandbox]:
    return lab.boxes


def cluster(machines: dict[str, Sandbox], method: str) -> mh.Cluster:
    return mh.Cluster(
        name="lab",
        network="pods",
        supernet="10.250.0.0/16" if method == "host-gw" else "10.251.0.0/24",
        method=method,  # type: ignore[arg-type]
        machines=tuple(
            mh.Machine(name, f"192.0.2.{number}", "under0", box.runner)
            for number, (name, box) in enumerate(machines.items(), start=11)
        ),  # as Lab.machines() gives them
        containers=CONTAINERS,
        ports={"b1": ("8080:80",)},
    )


@pytest.mark.parametrize("method", ["host-gw", "vxlan"])
def test_every_container_reaches_every_other(machines: dict[str, Sandbox], tmp_path: Path, method: str) -> None:
    before = {name: snapshot.take(box.runner) for name, box in machines.items()}
    lab = cluster(machines, method)
    outcomes = mh.apply(lab, tmp_path)
    assert all(outcome.changed for outcome in outcomes.values())
    assert all(not outcome.changed for outcome in mh.apply(lab, tmp_path).values())  # a second apply: nothing
    where = {c: m for m, names in CONTAINERS.items() for c in names}
    for source, target in itertools.permutations(where, 2):
        assert ping(machines[where[source]].runner, str(mh.address_of(lab, target)), source, count=1), (
            f"{source} on {where[source]} -> {target} on {where[target]} ({method})"
        )
    # a container on a reaches the port b publishes, at b's underlay address
    ok, detail = tcp_probe(
        machines["b"].runner, "b1", "a1", "192.0.2.12", 8080, listen_port=80, client_runner=machines["a"].runner
    )
    assert ok, detail
    if method == "vxlan":  # the MTU leaves room for encapsulation: full-size packets cross
        big = Command("ping", ("-c", "1", "-W", "2", "-M", "do", "-s", "1422", str(mh.address_of(lab, "c2"))),
                      netns="a1", mutates=False)  # fmt: skip
        machines["a"].runner.run(big)
    mh.destroy(lab, tmp_path)
    for name, box in machines.items():
        assert before[name].differences(snapshot.take(box.runner)) == [], name


def test_a_failing_machine_is_reported_with_the_others(machines: dict[str, Sandbox], tmp_path: Path) -> None:
    # on c, the bridge's name is taken by something else
    machines["c"].runner.run(Command("ip", ("link", "add", "nw-pods", "type", "veth", "peer", "name", "x0")))
    lab = cluster(machines, "host-gw")
    with pytest.raises(ClusterError) as caught:
        mh.apply(lab, tmp_path)
    text = str(caught.value)
    assert "a: ok" in text and "b: ok" in text
    assert "c: FAILED: nothing was changed; the host has conflicting objects" in text
    with contextlib.suppress(ClusterError):
        mh.destroy(lab, tmp_path)


def test_a_cluster_file_over_ssh_to_three_machines(lab: Lab, tmp_path: Path) -> None:
    """The command line, on the switch, drives three machines through their own sshd."""
    switch = lab.switch
    assert switch is not None
    switch.runner.run(Command("ip", ("addr", "add", "192.0.2.1/24", "dev", "sw")))
    keys = tmp_path / "ssh"
    options = ", ".join(f'"{word}"' for word in one_word_options_for(keys, lab))
    hosts = "".join(
        f'[hosts.{name}]\nssh = "root@{address}"\nssh_options = [{options}]\nunderlay = "{address}"\n'
        'device = "under0"\n\n'
        for name, address in lab.addresses.items()
    )
    cluster_table = '[cluster]\nnetwork = "pods"\nsupernet = "10.250.0.0/16"\nmethod = "vxlan"\n\n'
    containers = '[containers.a1]\nhost = "a"\n[containers.b1]\nhost = "b"\nports = ["8080:80"]\n'
    text = f'name = "lab"\n\n{hosts}{cluster_table}{containers}[containers.c1]\nhost = "c"\n'
    file = tmp_path / "lab.toml"
    file.write_text(text)
    before = {name: snapshot.take(box.runner) for name, box in lab.boxes.items()}
    with contextlib.ExitStack() as stack:
        for name, box in lab.boxes.items():
            stack.enter_context(sshd(box, keys, str(lab.addresses[name]), client=switch))
        args = ("-f", str(file), "--state-dir", str(tmp_path / "state"))

        def netwrap(*words: str) -> Result:
            command = Command(sys.executable, ("-m", "netwrap", *words, *args), ok_codes=frozenset({0, 1, 2}))
            return switch.runner.run(command)

        planned = netwrap("plan")
        assert planned.returncode == 2, planned.stderr
        assert {line.split("]")[0] for line in planned.stdout.splitlines() if line.startswith("[")} == {
            "[a", "[b", "[c",
        }  # fmt: skip
        applied = netwrap("apply")
        assert applied.returncode == 0, applied.stderr
        for name in ("a", "b", "c"):
            assert f"apply lab on {name}:" in applied.stderr
        assert netwrap("plan").returncode == 0  # nothing left to do anywhere
        status = json.loads(netwrap("status", "--json").stdout)
        assert {row["name"]: row["state"] for row in status["containers"]} == {
            "a1@a": "up", "b1@b": "up", "c1@c": "up",
        }  # fmt: skip
        assert ping(lab.boxes["a"].runner, status["containers"][2]["networks"][0]["address"].split("/")[0], "a1")
        assert netwrap("destroy").returncode == 0
    for name, box in lab.boxes.items():
        assert before[name].differences(snapshot.take(box.runner)) == [], name


def one_word_options_for(keys: Path, lab: Lab) -> list[str]:
    assert lab.switch is not None
    make_keys(lab.switch, keys)
    return one_word_options(keys)
