"""Verbatim and batched runs on the real kernel: the same state, and processes that grow with namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwrap import MemoryStore, Sandbox, build, teardown, tutorial
from netwrap import topology_apply as apply_
from netwrap.engine.state import StateFile
from netwrap.host import snapshot
from netwrap.kinds import LinkNetns, NetObject, VethPair
from netwrap.topology import compose
from netwrap.topology import files as topofile
from tests.conftest import Counting
from tests.integration.test_topology_kernel import TOPOLOGY

pytestmark = pytest.mark.integration


def _apply(mode: str, tmp_path: Path) -> snapshot.Snapshot:
    topo = topofile.loads(TOPOLOGY, "t4.toml")
    with Sandbox() as sandbox:
        store = StateFile.in_dir(tmp_path / mode, "t4")
        apply_.apply(topo, sandbox.runner, store, mode=mode)  # type: ignore[arg-type]
        picture = snapshot.take(sandbox.runner)
        before_teardown = picture
        apply_.destroy(sandbox.runner, store, mode=mode)  # type: ignore[arg-type]
        assert snapshot.take(sandbox.runner).namespaces == ()
    return before_teardown


def test_verbatim_and_batched_reach_the_same_state(sandbox: Sandbox, tmp_path: Path) -> None:
    assert _apply("verbatim", tmp_path) == _apply("batch", tmp_path)


def test_the_tutorial_batched_is_the_tutorial_verbatim(tmp_path: Path) -> None:
    pictures = []
    for mode in ("verbatim", "batch"):
        with Sandbox() as sandbox:
            build(tutorial.objects("ip"), sandbox.runner, MemoryStore(), mode=mode)
            pictures.append(snapshot.take(sandbox.runner))
    assert pictures[0] == pictures[1]


@pytest.mark.parametrize("n", [10, 40])
def test_processes_grow_with_namespaces_not_objects(sandbox: Sandbox, tmp_path: Path, n: int) -> None:
    text = '[networks.net]\nsubnet = "10.0.0.0/16"\n' + "".join(
        f'[containers.c{i}]\nnetworks = ["net"]\nports = ["{10000 + i}:80"]\n' for i in range(n)
    )
    topo = topofile.loads(text, "count.toml")
    before = snapshot.take(sandbox.runner)
    store = StateFile.in_dir(tmp_path, "count")
    first = Counting(sandbox.runner)
    apply_.apply(topo, first, store)
    # reads: namespace list, per namespace links/addresses/routes, host facts, 2 tables, sysctls;
    # changes: one host batch, one per namespace, one sysctl, one iptables-restore
    assert len(first.mutating) == n + 3
    assert len(first.seen) <= 3 * n + 12
    again = Counting(sandbox.runner)
    apply_.apply(topo, again, store)
    assert again.mutating == []
    assert len(again.seen) <= 3 * n + 12
    for _ in ("checks and remembers", "finds its memo holding"):
        quick = Counting(sandbox.runner)
        apply_.apply(topo, quick, store, check="host")
        assert quick.mutating == []
        assert len(quick.seen) == 4  # the host's devices, the namespace listing, iptables-save, sysctl: for any n
    down = Counting(sandbox.runner)
    apply_.destroy(down, store)
    assert len(down.mutating) == 3  # one iptables-restore, one sysctl, one host ip batch
    (host_batch,) = [c for c in down.mutating if c.tool == "ip"]
    lines = (host_batch.input or "").splitlines()
    # the veths' host ends and the bridge share the topology's link group: one request removes them all
    assert [line for line in lines if line.startswith("link del")] == [f"link del group {compose.link_group(topo)}"]
    assert len(lines) == 1 + n  # and each namespace
    assert before.differences(snapshot.take(sandbox.runner)) == []


def test_tutorial_teardown_batched(sandbox: Sandbox) -> None:
    before = snapshot.take(sandbox.runner)
    store = MemoryStore()
    build(tutorial.objects("ip"), sandbox.runner, store, mode="batch")
    counting = Counting(sandbox.runner)
    teardown(counting, store, mode="batch")
    assert [c.tool for c in counting.mutating] == ["iptables-restore", "sysctl", "ip"]
    assert before.differences(snapshot.take(sandbox.runner)) == []


def _counted(sandbox: Sandbox, tmp_path: Path, named: bool, n: int = 20) -> tuple[int, int, int, int]:
    """Processes of apply and of destroy (all, and those that change something) for n containers."""
    names = '"interface" = "e1", "host_interface" = "h{i}"'
    text = '[networks.net]\nsubnet = "10.0.0.0/16"\n' + "".join(
        f'[containers.c{i}]\nnetworks = [{{ network = "net"{", " + names.format(i=i) if named else ""} }}]\n'
        for i in range(n)
    )
    topo = topofile.loads(text, "named.toml")
    store = StateFile.in_dir(tmp_path / str(named), "named")
    made, gone = Counting(sandbox.runner), Counting(sandbox.runner)
    apply_.apply(topo, made, store)
    apply_.destroy(gone, store)
    return len(made.seen), len(made.mutating), len(gone.seen), len(gone.mutating)


def test_named_interfaces_cost_the_processes_unnamed_ones_do(sandbox: Sandbox, tmp_path: Path) -> None:
    """In docker style a named interface is made inside its namespace, in the link group, like eth0: the same
    processes, instead of a move and a delete each (issue 15's 7.5 and 20 times)."""
    before = snapshot.take(sandbox.runner)
    assert _counted(sandbox, tmp_path, named=True) == _counted(sandbox, tmp_path, named=False)
    assert before.explain(snapshot.take(sandbox.runner)) == []


def test_named_interfaces_made_inside_end_as_made_on_the_host_and_moved(tmp_path: Path) -> None:
    """The fast path (the peer made inside its namespace under its name) and the path it replaced (the pair
    made on the host, then one end moved in: what document style still writes) leave the same kernel state."""
    names = '"interface" = "e{i}", "host_interface" = "h{i}"'
    text = '[networks.net]\nsubnet = "10.0.0.0/16"\n' + "".join(
        f'[containers.c{i}]\nnetworks = [{{ network = "net", {names.format(i=i)} }}]\nports = ["{8000 + i}:80"]\n'
        for i in range(3)
    )
    topo = topofile.loads(text, "named.toml")
    made_inside = compose.objects(topo, compose.allocate(topo))
    moved: list[NetObject] = []
    for obj in made_inside:
        if isinstance(obj, VethPair) and obj.peer_netns is not None:
            moved += [VethPair(obj.peer, obj.name), LinkNetns(obj.peer, obj.peer_netns)]
        else:
            moved.append(obj)
    assert len(moved) == len(made_inside) + 3
    pictures = []
    for objects in (made_inside, tuple(moved)):
        with Sandbox() as sandbox:
            build(objects, sandbox.runner, MemoryStore(), mode="batch")
            pictures.append(snapshot.take(sandbox.runner))
    assert pictures[0].explain(pictures[1]) == []
    assert [name for name, _ in pictures[0].views] == ["", "c0", "c1", "c2"]
