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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from netwrap.engine.plan import assess
from netwrap.engine.state import Record
from netwrap.host.observe import HostState, Reads, observe, read, reads_for
from netwrap.host.runner import Runner
from netwrap.objects import Chain, LinkNetns, Namespace, NetObject, OwnedChain, Rule, Sysctl, VethPair

Check = Literal["all", "host"]


def inside(obj: NetObject) -> str | None:
    """The namespace whose insides must be read to judge ``obj``; None for a fact of the host."""
    if isinstance(obj, Namespace):
        return None
    netns = getattr(obj, "netns", None)
    return netns if isinstance(netns, str) else None


@attrs.frozen
class Checked:
    """What a check observed, the keys it trusted without a look, and the host reads when they were all."""

    state: HostState
    trusted: frozenset[str] = frozenset()
    host_reads: Reads | None = None  # set when nothing inside a namespace was read


def observe_for(runner: Runner, objects: Sequence[NetObject], record: Record | None, check: Check = "all") -> Checked:
    """Observe the host for a plan of ``objects``, trusting what ``check`` allows.

    With ``check="all"`` (or no complete record to trust) this is :func:`observe`
    and nothing is trusted.
    """
    if check == "all" or record is None or not record.complete:
        return Checked(observe(runner, objects))
    where = [(obj, inside(obj)) for obj in objects]
    places = {netns for _, netns in where if netns is not None}
    reads = reads_for(objects, skip=places)
    state = read(runner, reads)
    wanted_before = set(record.uses)
    doubtful = {netns for obj, netns in where if netns is not None and obj.key not in wanted_before}
    # A device missing or changed on the host puts in doubt every namespace whose objects name it (a veth made
    # on the host and moved in: its end inside went with it), and a veth's other end must still be where it was.
    broken: set[tuple[str | None, str]] = set()
    for obj in (o for o, netns in where if netns is None and _devices(o)):
        if not _as_wanted(obj, state, places):
            broken |= _devices(obj)
    doubtful |= {netns for netns, _ in broken if netns is not None}
    doubtful |= {netns for obj, netns in where if netns is not None and _devices(obj) & broken}
    reread = {netns for netns in doubtful if state.has_netns(netns)}
    if reread:
        state = state.merged(observe(runner, [obj for obj, netns in where if netns in reread]))
    trusted = {netns for netns in places - doubtful if state.has_netns(netns)}
    keys = frozenset(obj.key for obj, netns in where if netns in trusted)
    return Checked(state, keys, None if reread or not reads.host_only else reads)


def _as_wanted(obj: NetObject, state: HostState, places: set[str]) -> bool:
    """Whether a host-side object is present, and a veth's other end still in the namespace it was made in."""
    if assess(obj, state).status != "present":
        return False
    return not (isinstance(obj, VethPair) and obj.peer_netns in places) or _peer_is_in(obj, state)


def _devices(obj: NetObject) -> set[tuple[str | None, str]]:
    """The devices an object names (its own, its peer, the one it sits on), each with the namespace it is in;
    a device moved into a namespace is named on the host too, where it came from."""
    if isinstance(obj, Namespace | Sysctl | Rule | Chain | OwnedChain):
        return set()  # their names are not devices
    netns = inside(obj)
    names = (getattr(obj, field, None) for field in ("name", "device", "port"))
    found = {(netns, name) for name in names if isinstance(name, str)}
    if isinstance(obj, VethPair):
        found.add((obj.peer_netns or obj.netns, obj.peer))
    if isinstance(obj, LinkNetns):
        found.add((None, obj.device))
    return found


def _peer_is_in(pair: VethPair, state: HostState) -> bool:
    """Whether the host end of ``pair`` still has its other end in ``pair.peer_netns``, as far as the host shows."""
    link = state.view(None).link(pair.name)
    return link is not None and link.kind == "veth" and state.peer_netns(link) == pair.peer_netns
