"""A build's removal of what is no longer wanted runs beside the rest of the build when the two touch nothing in
common (a CNI DEL: the container's devices go while its rules leave the chains), and first otherwise; the record
ends the same either way (fake processes: each side waits for the other to start)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import attrs
import pytest

from netwrap import AttachedNamespace, Namespace, OwnedChain, Rule, VethPair
from netwrap.command import Command
from netwrap.engine import check
from netwrap.engine.build import build
from netwrap.engine.check import apart, reach
from netwrap.engine.state import MemoryStore, Record
from netwrap.errors import StepError
from netwrap.host.runner import Result
from netwrap.kinds import NetObject

RULE = Rule("NETWRAP-x", "ACCEPT", source="10.0.0.2/32", table="nat")
MADE = OwnedChain("NETWRAP-x", "nat", (RULE,))  # as the last apply made it
WANTED = OwnedChain("NETWRAP-x", "nat", ())  # its rule goes with the container
STALE = Namespace("gone1")  # the container's, no longer wanted
FRESH = OwnedChain("NETWRAP-y", "filter", ())  # new: claimed while the removal runs


@attrs.define
class Watching:
    """Lists ``gone1``; the first ``ip -batch`` (the removal's) and the first ``iptables-restore`` (the chain's
    edit) each wait a while for the other to start, and note whether it did."""

    patience: float = 0.5
    fail: str = ""
    overlapped: dict[str, bool] = attrs.field(factory=dict)
    started: dict[str, threading.Event] = attrs.field(
        factory=lambda: {"ip": threading.Event(), "iptables-restore": threading.Event()}
    )
    concurrent: bool = True

    def run(self, command: Command) -> Result:
        tool = command.tool
        if command.args[:2] == ("netns", "list"):
            return Result(command, 0, "gone1\n", "")
        if tool in self.started and (tool != "ip" or command.args == ("-batch", "-")):
            self.started[tool].set()
            other = next(event for name, event in self.started.items() if name != tool)
            self.overlapped.setdefault(tool, other.wait(self.patience))  # the first of each: the removal's ip
            if tool == self.fail:
                from netwrap.errors import CommandError  # noqa: PLC0415

                raise CommandError(command.argv, 1, "", "Command failed -:1\n")
        return Result(command, 0, "", "")


def _record(*made: NetObject) -> MemoryStore:
    return MemoryStore(Record(list(made), uses=[obj.key for obj in made], complete=True))


def test_the_removal_runs_beside_the_chains_edit_and_the_record_ends_as_one_after_the_other() -> None:
    store, runner = _record(MADE, STALE), Watching()
    outcome = build([WANTED, FRESH], runner, store, prune=True, mode="batch", check="record")
    assert runner.overlapped == {"ip": True, "iptables-restore": True}
    assert set(outcome.changed) == {STALE.key, WANTED.key, FRESH.key}
    record = store.load()
    assert record is not None and record.complete
    assert record.created == [WANTED, FRESH]
    assert record.uses == [WANTED.key, FRESH.key]


def test_work_that_touches_the_same_things_runs_one_after_the_other() -> None:
    """A wanted namespace and a stale one both touch the namespaces' names: no overlap."""
    fresh = Namespace("new1")
    assert not apart([STALE], [fresh])
    store, runner = _record(MADE, STALE), Watching(patience=0.2)
    build([WANTED, fresh], runner, store, prune=True, mode="batch", check="record")
    assert runner.overlapped["ip"] is False  # the removal ran alone, before the build's own batches


@pytest.mark.parametrize("failing", ["ip", "iptables-restore"])
def test_a_failure_on_either_side_is_raised_and_leaves_the_record_incomplete(failing: str) -> None:
    store, runner = _record(MADE, STALE), Watching(fail=failing)
    with pytest.raises(StepError):
        build([WANTED], runner, store, prune=True, mode="batch", check="record")
    record = store.load()
    assert record is not None and not record.complete  # run again to finish
    if failing == "ip":
        assert STALE.key in list(record.keys())  # not removed: still recorded, for the next run or a clean
    else:
        assert STALE.key not in list(record.keys())  # removed beside the failed edit: no longer recorded


def test_a_dry_run_keeps_one_after_the_other() -> None:
    store, runner = _record(MADE, STALE), Watching(patience=0.2, concurrent=False)
    build([WANTED], runner, store, prune=True, mode="batch", check="record")
    assert runner.overlapped["ip"] is False


def test_reach_sees_devices_namespaces_tables_and_claims() -> None:
    def kinds(objects: Sequence[NetObject]) -> set[str]:
        return {part[0] for obj in objects for part in reach(obj)}

    assert reach(STALE) == {("namespaces",), ("claim", "namespace"), ("place", "gone1")}
    assert reach(WANTED) >= {("table", "nat"), ("claim", "chain")}
    assert kinds([STALE, WANTED]) == {"namespaces", "claim", "table", "place"}
    assert apart([STALE], [WANTED])


def test_what_the_record_check_reads_for_is_worked_out_once_and_before_the_removal_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The build decides whether the removal may run beside it by the same objects its check then reads for:
    worked out once (every wanted object described and compared with the record), before the removal's thread
    changes the record."""
    calls: list[int] = []
    real = check._unsettled

    def counting(objects: Sequence[NetObject], record: Record) -> tuple[list[NetObject], set[int], set[int], set[int]]:
        calls.append(len(record.keys()))  # the record as it stands when asked
        return real(objects, record)

    monkeypatch.setattr(check, "_unsettled", counting)
    store, runner = _record(MADE, STALE), Watching()
    build([WANTED, FRESH], runner, store, prune=True, mode="batch", check="record")
    assert calls == [2]  # once, with the stale namespace still recorded
    assert runner.overlapped == {"ip": True, "iptables-restore": True}


@attrs.define
class Recording:
    """Records each command with its input; those whose text (argv and input) holds a word of ``gone`` fail as
    ``ip`` does for a device or a name that is not there."""

    gone: tuple[str, ...] = ()
    ran: list[str] = attrs.field(factory=list)

    def run(self, command: Command) -> Result:
        text = " ".join(command.argv) + (f" <<< {command.input.strip()}" if command.input else "")
        self.ran.append(text)
        if command.mutates and any(word in text for word in self.gone):
            from netwrap.errors import CommandError  # noqa: PLC0415

            raise CommandError(command.argv, 1, "", 'Cannot find device "eth0"\n')
        return Result(command, 0, "", "")


CONTAINER = (
    AttachedNamespace("c1", "/run/netns/b1"),
    VethPair("v0-c1", "eth0", peer_netns="c1"),
)


def test_a_record_check_removes_a_containers_interface_and_name_from_inside_it_without_a_read() -> None:
    """A CNI DEL: one process inside the namespace netwrap named (never a host device taken by name, which
    another tool may hold by now: the host end goes with the container's)."""
    store, runner = _record(*CONTAINER), Recording()
    outcome = build([], runner, store, prune=True, mode="batch", check="record")
    assert runner.ran == ["nsenter --net=/run/netns/c1 -- ip -batch - <<< link del eth0\nnetns del c1"]
    assert set(outcome.changed) == {obj.key for obj in CONTAINER}
    record = store.load()
    assert record is not None and record.complete and record.created == []


def test_a_trusted_removal_takes_what_is_gone_already_for_done() -> None:
    """Someone deleted the container's interface by hand: the batch fails on it, and each removal then runs
    alone."""
    store, runner = _record(*CONTAINER), Recording(gone=("link del eth0",))
    build([], runner, store, prune=True, mode="batch", check="record")
    assert runner.ran[1:] == ["ip netns exec c1 ip link del eth0", "nsenter --net=/run/netns/c1 -- ip netns del c1"]
    record = store.load()
    assert record is not None and record.complete and record.created == []


@pytest.mark.parametrize("how", ["unfinished", "all", "host"])
def test_a_removal_reads_first_unless_a_record_check_trusts_a_finished_record(how: str) -> None:
    store = MemoryStore(Record(list(CONTAINER), uses=[o.key for o in CONTAINER], complete=how != "unfinished"))
    runner = Recording()
    build([], runner, store, prune=True, mode="batch", check="record" if how == "unfinished" else how)  # type: ignore[arg-type]
    assert "ip netns list" in runner.ran  # the namespaces' names, read before anything goes


def test_a_removal_reads_first_when_one_object_cannot_go_unread() -> None:
    """A chain (or a setting, or a veth made on the host and moved) is removed as the host shows it: then
    everything is read, as before."""
    for extra in (MADE, VethPair("v0-h", "v1-h")):
        store, runner = _record(*CONTAINER, extra), Recording()
        build([], runner, store, prune=True, mode="batch", check="record")
        assert "ip netns list" in runner.ran


def test_trusted_removals_of_two_containers_never_touch_the_hosts_devices() -> None:
    """A GC of two containers: every container's veth is in the network's link group, and the host was not
    read, so one ``ip link del group`` would take the containers that stay too; nor is a host end deleted by
    name."""
    two = [
        *CONTAINER,
        AttachedNamespace("c2", "/run/netns/b2"),
        VethPair("v0-c2", "eth0", peer_netns="c2", group=7),
    ]
    two[1] = attrs.evolve(CONTAINER[1], group=7)
    store, runner = _record(*two), Recording()
    build([], runner, store, prune=True, mode="batch", check="record")
    assert sorted(runner.ran) == [
        f"nsenter --net=/run/netns/{name} -- ip -batch - <<< link del eth0\nnetns del {name}" for name in ("c1", "c2")
    ]


MAC = "02:11:22:33:44:55"


@attrs.define
class Unnamed:
    """A host where netwrap's name ``c1`` was removed by hand (``ip netns del``) while the container lives under
    its runtime's name ``b1``: entering ``c1`` fails; the host end ``v0-c1`` is still there, with its marks."""

    mac: str = MAC
    ran: list[str] = attrs.field(factory=list)

    def run(self, command: Command) -> Result:
        from netwrap.errors import CommandError  # noqa: PLC0415

        text = " ".join(command.argv) + (f" <<< {command.input.strip()}" if command.input else "")
        self.ran.append(text)
        if command.netns == "c1":
            raise CommandError(command.argv, 1, "", "nsenter: cannot open /run/netns/c1: No such file or directory\n")
        if command.args[:2] == ("netns", "list"):
            return Result(command, 0, "b1 (id: 0)\n", "")
        if command.args[:3] == ("-d", "-json", "-batch"):
            host_end = {"ifname": "v0-c1", "address": self.mac, "group": "7", "link_index": 2, "link_netnsid": 0,
                        "linkinfo": {"info_kind": "veth"}, "flags": ["UP"]}  # fmt: skip
            return Result(command, 0, json.dumps([host_end]) + "\n", "")
        return Result(command, 0, "", "")


@pytest.mark.parametrize(("mac", "removed"), [(MAC, True), ("02:99:99:99:99:99", False)])
def test_a_veth_whose_namespace_lost_netwraps_name_goes_through_its_host_end_if_it_bears_our_marks(
    mac: str, removed: bool
) -> None:
    """Without it, the container kept its interface and address while the address was given out again. The
    host end goes only when it is a veth with the MAC and the link group netwrap made it with."""
    pair = VethPair("v0-c1", "eth0", peer_netns="c1", group=7, mac=MAC)
    store, runner = _record(CONTAINER[0], pair), Unnamed(mac=mac)
    outcome = build([], runner, store, prune=True, mode="batch", check="record")
    assert ("ip link del v0-c1" in runner.ran) is removed
    assert removed or any("left alone" in note for note in outcome.notes)
    record = store.load()
    assert record is not None and record.created == []
