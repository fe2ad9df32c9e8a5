"""A record check reads leanly first (netwrap.engine.check): of the devices and addresses, only those the examined
objects are judged by, read by name in one ``ip -force -batch``; a verdict the record does not lead to expect is
judged again on a whole read, so that the lean read never decides what a whole one would decide otherwise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from netwrap.command import Command
from netwrap.engine.check import _Lean, observe_for, scope_of
from netwrap.engine.plan import plan
from netwrap.engine.state import Record
from netwrap.errors import CommandError
from netwrap.host.observe import Need, Reads, read_devices, reads_for
from netwrap.host.runner import Result
from netwrap.kinds import Address, Bridge, BridgePort, LinkUp, NetObject, VethPair

LEAN = ("-d", "-json", "-force", "-batch", "-")
WHOLE = ("-d", "-json", "-batch", "-")


def _device(name: str, *addresses: str, **more: Any) -> dict[str, Any]:
    info = [{"local": a.split("/")[0], "prefixlen": int(a.split("/")[1])} for a in addresses]
    return {"ifname": name, "flags": ["UP"], "addr_info": info, **more}


BRIDGE = _device("br0", "10.0.0.1/24", linkinfo={"info_kind": "bridge"})
PORTS = [_device(f"v0-c{i}", master="br0", linkinfo={"info_kind": "veth"}) for i in range(3)]


@attrs.define
class _Host:
    """The host's devices as ``ip`` shows them: whole, by name (one missing: its error, and the rest go on), or
    by an address they hold (the others of such a device as empty entries, as ``addr show to`` lists them)."""

    devices: list[dict[str, Any]]
    ran: list[Command] = attrs.field(factory=list)
    namespaces: tuple[str, ...] = ("c0", "c1", "c2")

    def run(self, command: Command) -> Result:
        self.ran.append(command)
        if command.args == ("netns", "list"):
            return Result(command, 0, "".join(f"{name}\n" for name in self.namespaces), "")
        if command.tool == "stat":  # identities (-L) or entries
            paths = command.args[command.args.index("--") + 1 :]
            there = [path for path in paths if path.removeprefix("/run/netns/") in self.namespaces]
            out = "".join(f"4:{n} {path}\n" if "-L" in command.args else f"{path}\n" for n, path in enumerate(there))
            return Result(command, 0 if len(there) == len(paths) else 1, out, "")
        if command.args == WHOLE:
            return Result(command, 0, json.dumps(self.devices) + "\n", "")
        assert command.args == LEAN, command
        out, err, code = "", "", 0
        for number, line in enumerate((command.input or "").splitlines(), 1):
            words = line.split()
            if words[2] == "dev":
                found = [d for d in self.devices if d["ifname"] == words[3]]
                if not found:
                    err += f'Device "{words[3]}" does not exist.\nCommand failed -:{number}\n'
                    code = 1
                    continue
            else:
                ip = words[3].split("/")[0]
                found = [
                    {**d, "addr_info": [a if a["local"] == ip else {} for a in d["addr_info"]]}
                    for d in self.devices
                    if any(a["local"] == ip for a in d["addr_info"])
                ]
            out += json.dumps(found) + "\n"
        return Result(command, code, out, err)


def _made() -> list[NetObject]:
    network: list[NetObject] = [Bridge("br0"), Address("br0", "10.0.0.1/24"), LinkUp("br0")]
    return network + [
        obj
        for i in range(3)
        for obj in (VethPair(f"v0-c{i}", "eth0", peer_netns=f"c{i}"), BridgePort("br0", f"v0-c{i}"), LinkUp(f"v0-c{i}"))
    ]


def _new() -> list[NetObject]:
    return [VethPair("v0-c3", "eth0", peer_netns="c3"), BridgePort("br0", "v0-c3"), LinkUp("v0-c3")]


def _finished(objects: Sequence[NetObject]) -> Record:
    return Record(created=list(objects), complete=True, uses=[o.key for o in objects])


def _check(host: _Host) -> tuple[Any, list[NetObject]]:
    wanted = [*_made(), *_new()]
    record = _finished(_made())
    return observe_for(host, wanted, record, "record", scope_of(wanted, record, "record")), wanted


def test_a_new_port_reads_its_bridge_and_itself_by_name_and_whoever_holds_the_bridges_address() -> None:
    host = _Host([BRIDGE, *PORTS])
    checked, wanted = _check(host)
    devices = [c for c in host.ran if c.tool == "ip"]
    assert [c.args for c in devices] == [LEAN]  # no dump of every device, no listing of every namespace
    # whether the new veth's namespace name exists: its entry, followed nowhere (a link that leads nowhere is a
    # name, as `ip netns list` lists it)
    assert [c.args for c in host.ran if c.tool == "stat"] == [("--printf", "%n\\n", "--", "/run/netns/c3")]
    assert devices[0].input == (
        "addr show to 10.0.0.1/32\naddr show dev br0\naddr show dev v0-c3\n"
    )  # the holders of the bridge's address first, then the devices in the order they are examined
    items = {i.obj.key: i.status for i in plan(wanted, checked.state, checked.trusted).items}
    assert [items[o.key] for o in _new()] == ["missing", "missing", "missing"]
    assert all(items[o.key] == "present" for o in _made())


def test_a_bridge_found_gone_by_name_is_judged_on_a_whole_read() -> None:
    host = _Host(list(PORTS))  # br0 deleted by hand: its ports are no longer plugged in anywhere
    for port in host.devices:
        port.pop("master")
    checked, _ = _check(host)
    assert [c.args for c in host.ran if c.tool == "ip" and c.args != ("netns", "list")][:2] == [LEAN, WHOLE]
    assert checked.widened  # and the ports are read and plugged back in, as without the lean read
    assert not {o.key for o in _made() if isinstance(o, BridgePort)} & checked.trusted


def test_another_device_holding_the_bridges_address_is_a_conflict_found_by_the_lean_read_and_judged_whole() -> None:
    other = _device("eth9", "10.0.0.1/16")
    host = _Host([{**BRIDGE, "addr_info": []}, *PORTS, other])  # the bridge lost its address to eth9
    checked, wanted = _check(host)
    assert WHOLE in [c.args for c in host.ran]
    items = {i.obj.key: i for i in plan(wanted, checked.state, checked.trusted).items}
    address = items[Address("br0", "10.0.0.1/24").key]
    assert address.status == "conflict" and "eth9" in address.assessment.reason


def test_a_device_read_by_name_that_is_missing_is_left_out_and_any_other_error_is_raised() -> None:
    host = _Host([BRIDGE, *PORTS])
    view = read_devices(host, None, ("links", "addresses"), ["nope", "br0"], ["10.0.0.1/32"])
    assert view is not None and view.links is not None and view.addresses is not None
    assert {link.name for link in view.links} == {"br0"}
    assert sorted(map(str, {a for _, a in view.addresses})) == ["10.0.0.1/24"]  # not the empty entries

    class Broken:
        def run(self, command: Command) -> Result:
            return Result(command, 1, "", 'Device "nope" does not exist.\nCannot send dump request: Bad address\n')

    with pytest.raises(CommandError, match="Cannot send dump request"):
        read_devices(Broken(), None, ("links",), ["nope"], [])


@attrs.frozen
class _Shortsighted(LinkUp):
    """A kind whose lean read leaves out the device it is judged by (none of netwrap's does)."""

    def lean_needs(self) -> Need:
        return Need(self.netns, facts=("links",), devices=("elsewhere",))


def test_a_verdict_the_record_does_not_lead_to_expect_is_judged_again_on_a_whole_read() -> None:
    """Whatever a kind's lean read leaves out, something the record made, unchanged, is never judged missing on
    it: the check reads everything that kind reads, and the verdict is the whole read's."""
    up = _Shortsighted("br0")
    host = _Host([BRIDGE])
    checked = observe_for(host, [up, *_new()], _finished([up]), "record")
    assert WHOLE in [c.args for c in host.ran]
    assert plan([up], checked.state, checked.trusted).items[0].status == "present"


def test_reads_in_part_are_kept_and_read_back_and_an_older_kept_form_reads_as_whole() -> None:
    reads = reads_for([_Lean(obj) for obj in _new()])
    assert reads.devices == ((None, ("v0-c3",), ()),)
    assert Reads.from_json(json.loads(json.dumps(reads.to_json()))) == reads
    older = {k: v for k, v in reads.to_json().items() if k != "devices"}
    assert Reads.from_json(older).devices == ()
    address = Address("v0-c3", "10.1.0.1/24")
    lean = reads_for([_Lean(obj) for obj in [*_new(), address]])
    assert lean.devices == ((None, ("v0-c3",), ("10.1.0.1/32",)),)
    assert reads_for([_Lean(obj) for obj in _new()] + [address]).devices == ()  # one object reads them all


def test_a_namespace_is_entered_only_when_its_name_exists_and_nothing_lists_them_all() -> None:
    inside = [Address("eth0", "10.0.0.5/24", netns="c3"), LinkUp("eth0", netns="c3")]
    for there in (False, True):
        host = _Host([BRIDGE, *PORTS], namespaces=("c0", "c1", "c2", "c3") if there else ("c0", "c1", "c2"))
        checked = observe_for(host, [*_made(), *inside], _finished(_made()), "record")
        assert ("netns", "list") not in [c.args for c in host.ran]
        entered = [c for c in host.ran if c.netns == "c3"]
        assert [c.input for c in entered] == (
            ["addr show to 10.0.0.5/32\naddr show dev eth0\n"] if there else []
        )  # the holders of its address and its device, inside
        assert checked.state.has_netns("c3") is there
        items = plan(inside, checked.state, checked.trusted).items
        assert [item.status for item in items] == ["missing", "missing"]
