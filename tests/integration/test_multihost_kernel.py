"""Three machines, simulated by sandboxes joined by an underlay switch, two containers on each.

Each machine is a sandbox of its own (own network namespace and /run/netns), so
each has its own namespaces; a fourth sandbox holds the underlay switch, a
bridge with a veth to each machine in 192.0.2.0/24. All traffic stays inside.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap import Sandbox, snapshot
from netwrap import multihost as mh
from netwrap.command import Command
from netwrap.lab import Lab
from netwrap.verify import ping, tcp_probe
from tests.conftest import require_root

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
    with pytest.raises(mh.ClusterError) as caught:
        mh.apply(lab, tmp_path)
    text = str(caught.value)
    assert "a: ok" in text and "b: ok" in text
    assert "c: FAILED: nothing was changed; the host has conflicting objects" in text
    with contextlib.suppress(mh.ClusterError):
        mh.destroy(lab, tmp_path)
