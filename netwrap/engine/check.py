"""How much of a host to read before a plan: everything, or the host side only.

A full check (``"all"``) reads inside every namespace the objects name: one
process per namespace. A host-side check (``"host"``) reads only what the host
itself shows (its devices, the namespace listing, iptables, its settings) and
trusts a namespace's insides when three things hold:

- the last apply finished (its record is complete) and wanted every object
  that is inside the namespace now;
- the namespace exists;
- every device on the host that its objects name is as wanted (a veth made on
  the host and moved in takes its end inside with it when deleted), and the
  host end of each veth made with its other end there still has that end there.

A namespace that fails any of these is read as in a full check. What is
trusted is only what the host side cannot show: an address or route that
someone removed from inside a container is seen by a full check, not by this.

A record check (``"record"``, for a change that adds or removes a few
containers beside many, as a CNI plugin's ADD and DEL do) trusts every object
that the last complete apply made exactly as it is wanted now, and reads only
for the rest: what is new or changed, and whatever names a device it relies
on (the bridge a new port joins, the bridge's address and settings; not the
other ports plugged into it). Something it made and finds gone widens the
reads to what relies on it (a bridge deleted by hand: every port). What it trusts is
what a host-side or full check of the same network would read. It reads
leanly first: of the devices and addresses, only those the examined objects
are judged by (their own devices, and whoever holds their addresses), not a
dump of every device beside a hundred ports; a verdict that is not what the
record leads to expect (a conflict, something unchanged that is not there)
is judged again on a whole read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs

from netwrap.engine import serial
from netwrap.engine.state import Record
from netwrap.host.observe import HostState, Need, Needy, Reads, observe, read, reads_for
from netwrap.host.runner import Runner
from netwrap.kinds import NetObject

Check = Literal["all", "host", "record"]


@attrs.frozen
class _Removing:
    """An object as its removal reads it."""

    obj: NetObject

    def needs(self) -> Need:
        return self.obj.removal_needs()


@attrs.frozen
class _Lean:
    """An object as a record check first reads it, expecting it as the last apply left it (see
    :meth:`~netwrap.kinds.base.Kind.lean_needs`)."""

    obj: NetObject

    def needs(self) -> Need:
        """The object's lean needs, and whether the namespace they are in exists (one that does not is not
        entered: the new container's, say, before netwrap names it)."""
        need = self.obj.lean_needs()
        if need.netns is None or need.netns in need.names:
            return need
        return attrs.evolve(need, names=(*need.names, need.netns))


def for_removal(objects: Sequence[NetObject]) -> list[Needy]:
    """``objects`` as :func:`~netwrap.host.observe.observe` must read them to remove them (see
    :meth:`~netwrap.kinds.base.Kind.removal_needs`)."""
    return [_Removing(obj) for obj in objects]


def inside(obj: NetObject) -> str | None:
    """The namespace whose insides must be read to judge ``obj``; None for a fact of the host."""
    return obj.location


@attrs.frozen
class Checked:
    """What a check observed, the keys it trusted without a look, and the host reads when they were all."""

    state: HostState
    trusted: frozenset[str] = frozenset()
    host_reads: Reads | None = None  # set when nothing inside a namespace was read
    widened: bool = False  # a record check read beyond its scope: something it made was found gone


def observe_for(
    runner: Runner,
    objects: Sequence[NetObject],
    record: Record | None,
    check: Check = "all",
    scope: Scope | None = None,
) -> Checked:
    """Observe the host for a plan of ``objects``, trusting what ``check`` allows.

    With ``check="all"`` (or no complete record to trust) this is :func:`observe`
    and nothing is trusted. ``scope``: what :func:`scope_of` said of these objects and this record, when the
    caller asked already (it is not worked out twice).
    """
    if check == "all" or record is None or not record.complete:
        return Checked(observe(runner, objects))
    if check == "record":
        return _by_record(runner, objects, scope or scope_of(objects, record, check))
    where = [(obj, inside(obj)) for obj in objects]
    places = {netns for _, netns in where if netns is not None}
    reads = reads_for(objects, skip=places)
    state = read(runner, reads)
    wanted_before = set(record.uses)
    doubtful = {netns for obj, netns in where if netns is not None and obj.key not in wanted_before}
    # A device missing or changed on the host puts in doubt every namespace whose objects name it (a veth made
    # on the host and moved in: its end inside went with it), and a veth's other end must still be where it was.
    broken: set[tuple[str | None, str]] = set()
    for obj in (o for o, netns in where if netns is None and o.devices()):
        if not obj.as_seen_from_host(state, places):
            broken |= obj.devices()
    doubtful |= {netns for netns, _ in broken if netns is not None}
    doubtful |= {netns for obj, netns in where if netns is not None and obj.devices() & broken}
    reread = {netns for netns in doubtful if state.has_netns(netns)}
    if reread:
        state = state.merged(observe(runner, [obj for obj, netns in where if netns in reread]))
    trusted = {netns for netns in places - doubtful if state.has_netns(netns)}
    keys = frozenset(obj.key for obj, netns in where if netns in trusted)
    return Checked(state, keys, None if reread or not reads.host_only else reads)


def _by_record(runner: Runner, objects: Sequence[NetObject], scope: Scope) -> Checked:
    """Read for what is new or changed since the record (and what names a device it relies on); trust the
    rest. An object written whole that only lost items since (a chain losing a container's rules) is not read
    either: it is rewritten as wanted, and a read would save nothing (the kernel waits for a transaction that
    deletes rules, whether it deletes one or flushes them all)."""
    reading = [obj for obj in scope.looked if id(obj) not in scope.unread]
    # first only what each object is judged by when all is as expected (a bridge's own device, not the hundred
    # ports beside it); anything else (a conflict, something made and unchanged that is not there) is judged on
    # everything its kind reads, as a check without a record would
    state = observe(runner, [_Lean(obj) for obj in reading])
    if any(_surprising(obj, obj.assess(state).status, scope) for obj in reading):
        state = observe(runner, reading)
    examined = {id(obj) for obj in scope.looked}
    widened = False
    while more := _in_doubt(objects, reading, examined, scope, state):
        widened = True
        examined |= {id(obj) for obj in more}
        reading += more
        state = observe(runner, reading)
    return Checked(state, frozenset(obj.key for obj in objects if id(obj) not in examined), widened=widened)


def _surprising(obj: NetObject, status: str, scope: Scope) -> bool:
    """Whether a lean read's verdict on ``obj`` is one to judge again on a whole read: a conflict, or something
    that has not changed since the record and is not there as it was made."""
    return status == "conflict" or (id(obj) not in scope.changed and status != "present")


def _in_doubt(
    objects: Sequence[NetObject], reading: list[NetObject], examined: set[int], scope: Scope, state: HostState
) -> list[NetObject]:
    """What a record check must read too once it finds something the record says was made, unchanged since,
    not there (a container's veth someone deleted, whose port the check read because a new port joins the
    bridge): the objects that make the devices it relies on, and what relies on its own. Trusted,
    they would be left broken, and the build would fail on them (a port of a veth that is gone)."""
    gone = [
        obj
        for obj in reading
        if (id(obj) not in scope.changed and obj.assess(state).status != "present")
        or (id(obj) in scope.remade and not obj.exists(state))  # changed since, and gone besides
    ]
    if not gone:
        return []
    wanted = set().union(*(obj.relies_on() for obj in gone))
    made = set().union(*(obj.devices() for obj in gone))  # a maker read and found gone widens the next round
    return [obj for obj in objects if id(obj) not in examined and (obj.devices() & wanted or obj.relies_on() & made)]


def _shrunk(before: dict[str, Any] | None, now: dict[str, Any]) -> bool:
    """Whether ``now`` is ``before`` with items taken out of its lists, and nothing else changed."""
    if before is None or before.keys() != now.keys() or before == now:
        return False
    for field, value in now.items():
        earlier = before[field]
        if value == earlier:
            continue
        if not (isinstance(value, list) and isinstance(earlier, list) and within(value, earlier)):
            return False
    return True


def within(items: Iterable[Any], longer: Iterable[Any]) -> bool:
    """Whether ``items`` appear in ``longer`` in the same order (some of ``longer``'s left out)."""
    rest = iter(longer)
    return all(any(item == other for other in rest) for item in items)


def _unsettled(objects: Sequence[NetObject], record: Record) -> tuple[list[NetObject], set[int], set[int], set[int]]:
    """What a record check examines: what is new or changed since ``record``, and what names a device it
    relies on; and, of those, the ones (by ``id``) it need not read (written whole and only shrunk), the
    changed ones, and the changed ones that the record made (in another form)."""
    made = record.made_as()
    changed: set[int] = set()
    unread: set[int] = set()
    remade: set[int] = set()
    for obj in objects:
        before, now = made.get(obj.key), serial.to_dict(obj)  # described once: a chain's is its every rule's
        if before is not now and before != now:  # the very description when the record holds this object
            changed.add(id(obj))
            if before is not None:
                remade.add(id(obj))
            if obj.written_whole and _shrunk(before, now):
                unread.add(id(obj))
    devices = set().union(*(obj.relies_on() for obj in objects if id(obj) in changed))
    # what names such a device (makes it, moves it, sets it): not what merely plugs into it (the other ports of
    # the bridge a new port joins; one that is broken is its own container's business)
    examined = changed | {id(obj) for obj in objects if obj.devices() & devices}
    return [obj for obj in objects if id(obj) in examined], unread, changed, remade


@attrs.frozen
class Scope:
    """What a build reads for: ``looked``, the objects it examines (all of them, but with a record check);
    ``unread``, the ids of those it examines without a read (written whole and only shrunk); ``changed``, the
    ids of those new or changed since the record; ``remade``, of those changed, the ones the record made in
    another form. With a record check, anything examined that the record made and that is found gone (changed
    since or not) widens the reads (see :func:`_in_doubt`)."""

    looked: list[NetObject]
    unread: frozenset[int] = frozenset()
    changed: frozenset[int] = frozenset()  # new or changed since the record (all, without one)
    remade: frozenset[int] = frozenset()


def scope_of(objects: Sequence[NetObject], record: Record | None, check: Check) -> Scope:
    """The objects :func:`observe_for` would read for, and that a build may then change: with a record check,
    what is not trusted; otherwise all of them."""
    if check == "record" and record is not None and record.complete:
        looked, unread, changed, remade = _unsettled(objects, record)
        return Scope(looked, frozenset(unread), frozenset(changed), frozenset(remade))
    return Scope(list(objects), changed=frozenset(id(obj) for obj in objects))


def reach(obj: NetObject) -> frozenset[tuple[str, ...]]:
    """What reading, making or removing ``obj`` touches, coarsely: the devices, addresses, routes and settings
    of each namespace it is in or names, an iptables table, the namespaces' names, and each kind of claim.
    Work on objects whose reaches are apart can run at once: neither reads or changes what the other does."""
    need = obj.needs()
    found: set[tuple[str, ...]] = set()
    places = {netns for netns, _ in obj.devices() | obj.relies_on()}
    if need.facts or need.settings or need.fdb:
        places.add(need.netns)
    if obj.location is not None:
        places.add(obj.location)
    gone = obj.takes_along()
    places |= {netns for netns, _ in gone.links} | set(gone.namespaces)
    found |= {("place", netns or "") for netns in places}
    if need.table is not None:
        found.add(("table", need.table))
    found |= {("table", table) for table, _ in gone.chains}
    if need.listed or need.files or gone.namespaces:
        found.add(("namespaces",))
    found |= {("claim", claim.kind) for claim in obj.claims()}
    return frozenset(found)


def apart(first: Sequence[NetObject], second: Sequence[NetObject]) -> bool:
    """Whether nothing that work on ``first`` touches is touched by work on ``second`` (see :func:`reach`)."""
    mine = set().union(*(reach(obj) for obj in first))
    return not any(reach(obj) & mine for obj in second)
