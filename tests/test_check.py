"""The host-side check: what it reads, what it trusts, and when it looks inside a namespace after all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import attrs
from pytest_subprocess import FakeProcess

from netwrap import StateFile, build, tutorial
from netwrap.command import Command
from netwrap.engine.check import inside, observe_for
from netwrap.engine.plan import plan
from netwrap.engine.state import Record
from netwrap.host.runner import Result, SubprocessRunner
from netwrap.kinds import Address, Chain, LinkNetns, Namespace, NetObject, OwnedChain, Rule, Sysctl, VethPair
from tests.test_tutorial import ADDRS, LINKS, NAT, NETNS, SYSCTL, batch_read, built_host, fake, mutating_calls, seen


def finished(objects: Sequence[NetObject], *, complete: bool = True) -> Record:
    """The record of an apply of ``objects`` (finished unless ``complete`` is false)."""
    return Record(created=list(objects), complete=complete, uses=[o.key for o in objects])


def test_what_is_inside_a_namespace() -> None:
    assert inside(Namespace("c1")) is None  # listed by the host
    assert inside(VethPair("h1", "e1", peer_netns="c1")) is None  # its host end shows where the peer is
    assert inside(LinkNetns("e1", "c1")) == "c1"
    assert inside(Address("e1", "10.0.0.2/24", netns="c1")) == "c1"
    assert inside(Rule("FORWARD", "ACCEPT")) is None


def test_a_host_side_check_of_a_built_host_enters_no_namespace(fp: FakeProcess, runner: SubprocessRunner) -> None:
    objects = tutorial.objects()
    fake(fp, built_host(), [])
    checked = observe_for(runner, objects, finished(objects), "host")
    state, trusted = checked.state, checked.trusted
    assert checked.host_reads is not None and checked.host_reads.host_only
    assert sorted(seen(fp)) == sorted([NETNS, batch_read(None), NAT, SYSCTL])
    assert trusted == {o.key for o in objects if inside(o) is not None}
    assert len(trusted) == 8  # each container: its veth end placed, its address, up, its route
    assert state.view("Tdocker0").links is None


def test_nothing_is_trusted_without_a_finished_record(fp: FakeProcess, runner: SubprocessRunner) -> None:
    objects = tutorial.objects()
    fake(fp, built_host(), [])
    for record in (None, finished(objects, complete=False)):
        fp.calls.clear()
        checked = observe_for(runner, objects, record, "host")
        assert checked.trusted == frozenset()
        assert checked.host_reads is None
        assert batch_read("Tdocker0") in seen(fp) and batch_read("Tdocker1") in seen(fp)


def test_a_namespace_with_something_new_inside_is_read(fp: FakeProcess, runner: SubprocessRunner) -> None:
    objects = tutorial.objects()
    extra = Address("Tveth0", "172.18.0.9/24", netns="Tdocker0")
    fake(fp, built_host(), [])
    checked = observe_for(runner, [*objects, extra], finished(objects), "host")
    trusted = checked.trusted
    assert checked.host_reads is None  # a namespace was read: this check is not one of the host alone
    assert batch_read("Tdocker0") in seen(fp)
    assert batch_read("Tdocker1") not in seen(fp)
    assert not any(key.startswith("addr:Tdocker0") for key in trusted)
    assert any(key.startswith("addr:Tdocker1") for key in trusted)


def test_a_veth_whose_host_end_is_gone_sends_the_check_inside(fp: FakeProcess, runner: SubprocessRunner) -> None:
    """The host shows no end of c9's pair: c9 is read, and what is missing there is planned."""
    pair = VethPair("Tveth9", "eth0", peer_netns="Tdocker1")
    objects = [*tutorial.objects(), pair]
    fake(fp, built_host(), [])
    trusted = observe_for(runner, objects, finished(objects), "host").trusted
    assert batch_read("Tdocker1") in seen(fp)
    assert batch_read("Tdocker0") not in seen(fp)
    assert not any("Tdocker1" in key for key in trusted)


def test_a_quick_build_of_a_built_host_changes_nothing(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path
) -> None:
    objects = tutorial.objects()
    store = StateFile(tmp_path / "t.json")
    store.save(finished(objects))
    fake(fp, built_host(), [])
    assert build(objects, runner, store, check="host").changed == ()
    assert mutating_calls(fp, built_host()) == []
    assert len(seen(fp)) == 4


def test_a_veth_moved_in_from_the_host_puts_its_namespace_in_doubt_when_gone(
    fp: FakeProcess, runner: SubprocessRunner
) -> None:
    """The document makes each pair on the host and moves one end in: deleting the host end takes both."""
    answers = built_host()
    for dump in (LINKS, ADDRS):  # the host lists it no more, with or without its addresses
        answers[dump] = (0, json.dumps([x for x in json.loads(answers[dump][1]) if x["ifname"] != "Tveth1"]))
    fake(fp, answers, [])
    objects = tutorial.objects()
    checked = observe_for(runner, objects, finished(objects), "host")
    assert batch_read("Tdocker0") in seen(fp)
    assert batch_read("Tdocker1") not in seen(fp)
    assert not any("Tdocker0" in key for key in checked.trusted)


def test_only_devices_tie_a_namespace_to_the_host() -> None:
    assert VethPair("v0-a", "eth0", peer_netns="a").devices() == {(None, "v0-a"), ("a", "eth0")}
    assert LinkNetns("Tveth0", "Tdocker0").devices() == {("Tdocker0", "Tveth0"), (None, "Tveth0")}
    for other in (Namespace("a"), Sysctl("net.ipv4.ip_forward", "1"), Chain("NETWRAP-x"), Rule("FORWARD", "ACCEPT")):
        assert other.devices() == set()


# The record check: trust what the last complete apply made exactly so, read for the rest -----------------------


def test_a_record_check_of_what_the_record_made_reads_nothing(fp: FakeProcess, runner: SubprocessRunner) -> None:
    objects = tutorial.objects()
    checked = observe_for(runner, objects, finished(objects), "record")
    assert seen(fp) == []  # not one process
    assert checked.trusted == {o.key for o in objects}


def test_a_record_check_reads_for_what_is_new_and_what_shares_a_device_with_it(
    fp: FakeProcess, runner: SubprocessRunner
) -> None:
    objects = tutorial.objects()
    extra = Address("Tveth0", "172.18.0.9/24", netns="Tdocker0")
    fake(fp, built_host(), [])
    # whether the namespace exists, by its file: the new address's lean read asks that, not the whole listing
    fp.register(["stat", "--printf", "%n\\n", "--", "/run/netns/Tdocker0"], stdout="/run/netns/Tdocker0\n")
    checked = observe_for(runner, [*objects, extra], finished(objects), "record")
    sharing = {o.key for o in objects if o.devices() & extra.devices()}
    assert sharing  # the veth whose end it goes on, at least
    assert extra.key not in checked.trusted
    assert checked.trusted == {o.key for o in objects} - sharing
    assert batch_read("Tdocker0") in seen(fp)
    assert batch_read("Tdocker1") not in seen(fp)  # the other container is not looked at
    assert not checked.widened  # what it read of the record's is there: nothing more is read


def test_a_record_check_reads_for_an_object_whose_value_changed(fp: FakeProcess, runner: SubprocessRunner) -> None:
    objects = tutorial.objects()
    setting = next(o for o in objects if isinstance(o, Sysctl))
    other = attrs.evolve(setting, value="0" if setting.value != "0" else "1")
    assert other.key == setting.key  # the same object, wanted with another value
    changed = [other if o is setting else o for o in objects]
    fake(fp, built_host(), [])
    checked = observe_for(runner, changed, finished(objects), "record")
    assert checked.trusted == {o.key for o in objects} - {setting.key}
    assert SYSCTL in seen(fp)


def test_a_record_check_without_a_finished_record_reads_everything(fp: FakeProcess, runner: SubprocessRunner) -> None:
    objects = tutorial.objects()
    fake(fp, built_host(), [])
    for record in (None, finished(objects, complete=False)):
        fp.calls.clear()
        assert observe_for(runner, objects, record, "record").trusted == frozenset()
        assert batch_read("Tdocker0") in seen(fp) and batch_read("Tdocker1") in seen(fp)


def _chain(*ports: int) -> OwnedChain:
    rules = [
        Rule("NETWRAP-x", "DNAT", protocol="tcp", dport=p, to=f"10.0.0.{p % 200 + 2}:80", table="nat") for p in ports
    ]
    return OwnedChain("NETWRAP-x", "nat", tuple(rules))


def test_a_chain_that_only_loses_rules_is_written_whole_unread(fp: FakeProcess, runner: SubprocessRunner) -> None:
    """A removal's edit deletes rules whatever it reads (the kernel waits for it all the same): no read, and the
    chain is written whole, exactly as wanted, whatever the host had."""
    before, after = _chain(8080, 8081, 8082), _chain(8080, 8082)
    checked = observe_for(runner, [after], finished([before]), "record")
    assert seen(fp) == []  # nothing read
    assert after.key not in checked.trusted
    (item,) = plan([after], checked.state, checked.trusted).items
    assert item.status == "missing"
    assert item.commands == after.create_commands()  # the chain made or flushed, and its rules in order


def test_a_chain_that_gains_rules_is_read_to_insert_them_in_place(fp: FakeProcess, runner: SubprocessRunner) -> None:
    """Adding deletes nothing when the listing is known: that is worth a read. So is any other change (one rule
    for another, the same rules in another order)."""
    before = _chain(8080, 8082)
    for after in (_chain(8080, 8081, 8082), _chain(8080, 9000), _chain(8082, 8080)):
        fp.register(["iptables", "-t", "nat", "-S"], stdout="")
        fp.calls.clear()
        observe_for(runner, [after], finished([before]), "record")
        assert ("iptables", "-t", "nat", "-S") in seen(fp), after


def test_a_new_port_reads_its_bridge_not_the_other_ports_on_it() -> None:
    """The other ports plug into the bridge, they do not name it: a new port's ADD is not theirs to judge (a
    hundred ports, a hundred reads and plans), and one that is broken is its own container's business."""
    from netwrap.engine.check import scope_of  # noqa: PLC0415
    from netwrap.kinds import Bridge, BridgePort, LinkUp  # noqa: PLC0415

    made = [Bridge("br0"), LinkUp("br0"), BridgePort("br0", "va"), BridgePort("br0", "vb")]
    new = BridgePort("br0", "vc")
    looked = {obj.key for obj in scope_of([*made, new], finished(made), "record").looked}
    assert looked == {new.key, made[0].key, made[1].key}  # the port, the bridge and what names the bridge


@attrs.define
class _Host:
    """Answers the host's device dump with ``links`` (and an empty namespace listing)."""

    links: list[dict[str, object]]

    def run(self, command: Command) -> Result:
        if command.args == ("netns", "list"):
            return Result(command, 0, "", "")
        return Result(command, 0, json.dumps(self.links) + "\n", "")


def test_a_changed_object_the_record_made_and_found_gone_widens_the_reads() -> None:
    """The bridge's MAC was edited and the bridge deleted by hand: besides making it again, its ports (trusted,
    they plug into it) must be read, or they stay unplugged."""
    from netwrap.engine.check import scope_of  # noqa: PLC0415
    from netwrap.kinds import Bridge, BridgePort  # noqa: PLC0415

    ports = [BridgePort("br0", "va"), BridgePort("br0", "vb")]
    made = [Bridge("br0", mac="02:00:00:00:00:01"), *ports]
    wanted = [Bridge("br0", mac="02:00:00:00:00:02"), *ports]
    host = _Host([{"ifname": name, "flags": ["UP"], "master": "br0"} for name in ("va", "vb")])  # br0 is gone
    record = finished(made)
    checked = observe_for(host, wanted, record, "record", scope_of(wanted, record, "record"))
    assert checked.widened
    assert not {port.key for port in ports} & checked.trusted
