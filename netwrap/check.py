"""How much of a host to read before a plan: everything, or the host side only.

A full check (``"all"``) reads inside every namespace the objects name: one
process per namespace. A host-side check (``"host"``) reads only what the host
itself shows (its devices, the namespace listing, iptables, its settings) and
trusts a namespace's insides when three things hold:

- the last apply finished (its record is complete) and wanted every object
  that is inside the namespace now;
- the namespace exists;
- everything on the host side that ties to it is as wanted: the host end of
  each veth whose other end lives there, with that end still in that namespace.

A namespace that fails any of these is read as in a full check. What is
trusted is only what the host side cannot show: an address or route that
someone removed from inside a container is seen by a full check, not by this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from netwrap.objects import Namespace, NetObject, VethPair
from netwrap.observe import HostState, Reads, observe, read, reads_for
from netwrap.plan import assess
from netwrap.runner import Runner
from netwrap.state import Record

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
    ties = [o for o in objects if isinstance(o, VethPair) and o.netns is None and o.peer_netns in places]
    for pair in ties:
        if assess(pair, state).status != "present" or not _peer_is_in(pair, state):
            doubtful.add(pair.peer_netns or "")
    reread = {netns for netns in doubtful if state.has_netns(netns)}
    if reread:
        state = state.merged(observe(runner, [obj for obj, netns in where if netns in reread]))
    trusted = {netns for netns in places - doubtful if state.has_netns(netns)}
    keys = frozenset(obj.key for obj, netns in where if netns in trusted)
    return Checked(state, keys, None if reread or not reads.host_only else reads)


def _peer_is_in(pair: VethPair, state: HostState) -> bool:
    """Whether the host end of ``pair`` still has its other end in ``pair.peer_netns``, as far as the host shows."""
    link = state.view(None).link(pair.name)
    if link is None or link.kind != "veth":
        return False
    where = link.peer_netns
    if where is None and link.peer_netnsid is not None:
        where = state.netns_ids.get(link.peer_netnsid)
    return where == pair.peer_netns
