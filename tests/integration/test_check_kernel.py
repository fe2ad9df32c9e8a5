"""The host-side check (``apply --quick``) on the real kernel: what it skips, what it still repairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwrap import Sandbox
from netwrap import topology_apply as apply_
from netwrap.command import Command
from netwrap.engine.state import StateFile
from netwrap.host import snapshot
from netwrap.topology import compose, verified
from netwrap.topology import files as topofile
from netwrap.topology.model import Topology
from tests.conftest import Counting

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TOPOLOGY = """
name = "quick"

[networks.net]
subnet = "10.70.0.0/24"

[containers.a]
networks = ["net"]
ports = ["8081:80"]

[containers.b]
networks = ["net"]

[containers.c]
networks = ["net"]
"""


def _entered(counting: Counting) -> set[str]:
    """The namespaces whose insides were read (``ip -n NS ...`` or a command run inside one)."""
    found = {c.netns for c in counting.seen if c.netns is not None}
    found |= {c.args[c.args.index("-n") + 1] for c in counting.seen if c.tool == "ip" and "-n" in c.args}
    return found


def _built(sandbox: Sandbox, tmp_path: Path) -> tuple[Topology, StateFile, snapshot.Snapshot]:
    topo = topofile.loads(TOPOLOGY, "quick.toml")
    store = StateFile.in_dir(tmp_path, "quick")
    apply_.apply(topo, sandbox.runner, store)
    return topo, store, snapshot.take(sandbox.runner)


def _host_end(topo: Topology, store: StateFile, container: str) -> str:
    allocations = apply_.desired(topo, store)[1]
    return next(link.host_interface for link in compose.links(topo, allocations) if link.container.name == container)


def test_a_quick_reapply_enters_no_namespace_and_changes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    topo, store, _ = _built(sandbox, tmp_path)
    quick = Counting(sandbox.runner)
    apply_.apply(topo, quick, store, check="host")
    assert quick.mutating == []
    assert _entered(quick) == set()
    assert len(quick.seen) <= 5
    full = Counting(sandbox.runner)
    apply_.apply(topo, full, store)
    assert _entered(full) == {"a", "b", "c"}


def test_the_memo_of_a_quick_check_holds_until_the_host_changes(sandbox: Sandbox, tmp_path: Path) -> None:
    topo, store, built = _built(sandbox, tmp_path)
    apply_.apply(topo, sandbox.runner, store, check="host")  # finds nothing to do: remembers
    assert verified.memo_path(store).exists()
    again = Counting(sandbox.runner)
    assert apply_.apply(topo, again, store, check="host").changed == ()
    assert again.mutating == [] and _entered(again) == set() and len(again.seen) <= 5
    sandbox.runner.run(Command("ip", ("link", "set", _host_end(topo, store, "a"), "down")))
    repair = Counting(sandbox.runner)
    apply_.apply(topo, repair, store, check="host")  # the host changed: the memo no longer holds
    assert [c.input for c in repair.mutating] == [f"link set {_host_end(topo, store, 'a')} up\n"]
    assert built.differences(snapshot.take(sandbox.runner)) == []


def test_a_broken_host_side_is_read_inside_and_repaired(sandbox: Sandbox, tmp_path: Path) -> None:
    topo, store, built = _built(sandbox, tmp_path)
    sandbox.runner.run(Command("ip", ("link", "del", _host_end(topo, store, "b"))))  # its peer in b goes too
    quick = Counting(sandbox.runner)
    apply_.apply(topo, quick, store, check="host")
    assert _entered(quick) == {"b"}
    assert quick.mutating != []
    assert built.differences(snapshot.take(sandbox.runner)) == []


def test_what_only_a_full_check_sees(sandbox: Sandbox, tmp_path: Path) -> None:
    """An address removed from inside a container leaves the host side as it was: --quick trusts it."""
    topo, store, built = _built(sandbox, tmp_path)
    sandbox.runner.run(Command("ip", ("addr", "flush", "dev", "eth0"), netns="c"))
    quick = Counting(sandbox.runner)
    apply_.apply(topo, quick, store, check="host")
    assert quick.mutating == []
    assert built.differences(snapshot.take(sandbox.runner)) != []
    full = Counting(sandbox.runner)
    apply_.apply(topo, full, store)
    assert full.mutating != []
    assert built.differences(snapshot.take(sandbox.runner)) == []


def test_the_documents_veth_deleted_on_the_host_is_rebuilt_whole(sandbox: Sandbox, tmp_path: Path) -> None:
    """The tutorial moves a veth end in from the host: --quick must see that end gone with the host one."""
    topo = topofile.load(EXAMPLES / "tutorial.toml")
    store = StateFile.in_dir(tmp_path, "tutorial")
    apply_.apply(topo, sandbox.runner, store, mode="verbatim")
    built = snapshot.take(sandbox.runner)
    sandbox.runner.run(Command("ip", ("link", "del", "Tveth1")))
    quick = Counting(sandbox.runner)
    apply_.apply(topo, quick, store, mode="verbatim", check="host")
    assert _entered(quick) == {"Tdocker0"}
    assert built.differences(snapshot.take(sandbox.runner)) == []
