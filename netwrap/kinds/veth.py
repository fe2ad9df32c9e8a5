"""A veth pair, made on the host or with its peer made in another namespace."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    NAME,
    OPT_MAC,
    OPT_MTU,
    OPT_NETNS,
    Assessment,
    Claim,
    Device,
    Gone,
    ReadsLinks,
    check_group,
    conflict,
    ip_command,
    key_place,
    kind_of,
    missing,
    present,
    set_mac,
    set_mtu,
    where,
    wrong_mac,
    wrong_mtu,
)


@attrs.frozen
class VethPair(ReadsLinks):
    """A veth pair ``name``/``peer`` created in ``netns`` (the host when None).

    With ``peer_netns`` the peer is made directly inside that namespace, so its
    name need only be unique there (``eth0`` in every container). ``group``
    puts the end made here in a link group, so that a teardown can delete a
    whole network's veths in one request (``ip link del group G``). Deleting
    either end deletes both, so :meth:`delete_commands` names ``peer``, the end
    that stays where the pair was made when ``name`` is moved away (as in the
    tutorial, which deletes ``Tveth1``).

    A pair is ours only when an end is a veth where it was asked for and its
    peer, where the listing tells, is the other end in the namespace asked for:
    a host's own ``eth0`` is never the ``eth0`` wanted in a container.
    """

    found_anywhere = True  # its ends may have been moved: a removal looks in every namespace
    made = True

    name: str = attrs.field(validator=NAME)
    peer: str = attrs.field(validator=NAME)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)
    peer_netns: str | None = attrs.field(default=None, validator=OPT_NETNS)
    group: int | None = attrs.field(default=None, kw_only=True, eq=False)
    mtu: int | None = attrs.field(default=None, kw_only=True, eq=False, validator=OPT_MTU)
    peer_mac: str | None = attrs.field(default=None, kw_only=True, eq=False, validator=OPT_MAC)
    mac: str | None = attrs.field(default=None, kw_only=True, eq=False, validator=OPT_MAC)  # of ``name``

    def __attrs_post_init__(self) -> None:
        if self.group is not None:
            check_group("VethPair.group", self.group)
        if self.name == self.peer and self.peer_netns in (None, self.netns):
            raise ValidationError("VethPair.peer", self.peer, "must differ from VethPair.name")
        if self.peer_netns is not None and self.peer_netns == self.netns:
            raise ValidationError("VethPair.peer_netns", self.peer_netns, "is where the pair is made already")

    @functools.cached_property
    def key(self) -> str:
        peer_at = f"@{self.peer_netns}" if self.peer_netns else ""
        return f"veth:{key_place(self.netns)}:{self.name}:{self.peer}{peer_at}"

    def create_commands(self) -> tuple[Command, ...]:
        """``ip link add NAME type veth peer name PEER [netns PEER_NETNS]``: one command, even across namespaces."""
        group = ("group", str(self.group)) if self.group is not None else ()
        mtu = ("mtu", str(self.mtu)) if self.mtu is not None else ()
        args: tuple[str, ...] = (
            "link",
            "add",
            self.name,
            *mtu,
            *group,
            *(("address", self.mac) if self.mac is not None else ()),
            "type",
            "veth",
            "peer",
            "name",
            self.peer,
            *mtu,
            *(("address", self.peer_mac) if self.peer_mac is not None else ()),
        )
        if self.peer_netns is not None:
            args += ("netns", self.peer_netns)
        return (ip_command(*args, netns=self.netns),)

    def delete_commands(self, end: str | None = None) -> tuple[Command, ...]:
        """``ip link del END``: by default the end that stays where the pair was made.

        That is ``peer``, as in the tutorial (the pair's ``name`` is moved away), or
        ``name`` when the peer was made in another namespace (``peer_netns``).
        """
        if end not in (None, self.name, self.peer):
            raise ValidationError("end", end, f"is not an end of the pair {self.name}/{self.peer}")
        default = self.name if self.peer_netns is not None else self.peer
        return (ip_command("link", "del", end or default, netns=self.netns),)

    recalls: ClassVar[bool] = True

    def as_after(self, before: Mapping[str, Any]) -> VethPair:
        """Made with an MTU and now wanted without one: with the kernel's, as a pair made afresh has it (an edit
        that takes the MTU out gives the default back); else as it is."""
        if self.mtu is None and before.get("mtu") is not None:
            return _at_kernel_mtu(self)
        return self

    def needs(self) -> Need:
        return Need(self.netns, facts=("links",), listed=True)

    def lean_needs(self) -> Need:
        """With its peer made in another namespace, its end here alone and whether that namespace exists (an end
        found here whose peer's namespace only the listing would tell is judged again on a whole read); a pair
        made here may have both ends moved anywhere: everything, as :meth:`needs` says."""
        if self.peer_netns is None:
            return self.needs()
        return Need(self.netns, facts=("links",), devices=(self.name,), names=(self.peer_netns,))

    def _ends(self, state: HostState) -> list[tuple[str | None, str, str | None, str]]:
        """Where to look for each end: (its namespace, its name, where its peer must be, the peer's name)."""
        if self.peer_netns is None:
            return [(self.netns, self.name, self.netns, self.peer), (self.netns, self.peer, self.netns, self.name)]
        ends: list[tuple[str | None, str, str | None, str]] = [(self.netns, self.name, self.peer_netns, self.peer)]
        if state.has_netns(self.peer_netns):
            ends.append((self.peer_netns, self.peer, self.netns, self.name))
        return ends

    def assess(self, state: HostState) -> Assessment:
        verdict = self.shape(state)
        if verdict.status != "present":
            return verdict
        wrong = wrong_mtu(self.mtu, self.devices(), state)
        if wrong:
            seen = ", ".join(f"{name} {where(netns)} has {mtu}" for (netns, name), mtu in wrong)
            return missing(f"veth pair {self.name}/{self.peer} exists, but not with MTU {self.mtu}: {seen}")
        mac = wrong_mac(self.peer_mac, self._peer_end, state)  # its address changed, say
        if mac is not None:
            return missing(f"{self.peer} {where(self.peer_netns)} has the MAC {mac}, not {self.peer_mac}")
        mac = wrong_mac(self.mac, (self.netns, self.name), state)
        if mac is not None:
            return missing(f"{self.name} {where(self.netns)} has the MAC {mac}, not {self.mac}")
        return verdict

    @property
    def _peer_end(self) -> Device:
        return (self.peer_netns or self.netns, self.peer)

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """Made whole, or, made already, its MTU and its peer's MAC set in place where they differ."""
        if self.shape(state).status != "present":
            return self.create_commands()
        commands = set_mtu(self.mtu, (end for end, _ in wrong_mtu(self.mtu, self.devices(), state))) if (
            self.mtu is not None) else ()  # fmt: skip
        if self.peer_mac is not None and wrong_mac(self.peer_mac, self._peer_end, state) is not None:
            commands += (set_mac(self.peer_mac, self._peer_end),)
            home = state.view(self.netns).link(self.name)
            if home is not None and home.master is not None:
                # the bridge still sends the old MAC to this port (its forwarding table learnt it here) and will
                # not learn the new one until the container speaks: forget what this port taught it
                commands += (ip_command("link", "set", "dev", self.name, "type", "bridge_slave", "fdb_flush",
                                        netns=self.netns),)  # fmt: skip
        if self.mac is not None and wrong_mac(self.mac, (self.netns, self.name), state) is not None:
            commands += (set_mac(self.mac, (self.netns, self.name)),)
        return commands or self.create_commands()

    def shape(self, state: HostState) -> Assessment:
        """The pair as made, whatever its MTU."""
        here = where(self.netns)
        if self.netns is not None and not state.has_netns(self.netns):
            return missing(f"namespace {self.netns} does not exist")
        for netns, name, other_netns, other in self._ends(state):
            link = state.view(netns).link(name)
            if link is None:
                continue
            if link.kind != "veth":
                return conflict(f"{name} exists {where(netns)} but is a {kind_of(link)}, not a veth")
            peer = state.peer_name(link, netns)
            if peer is not None and peer[1] != other:
                return conflict(f"{name} exists {where(netns)} but its peer is {peer[1]}, not {other}")
            if self.peer_netns is not None and netns is None and other_netns is not None:
                # listed on the host, whose numbering of namespaces the listing gives: the peer must be there
                told = netns if link.peer is not None else state.peer_netns(link)
                if not state.same_netns(told, other_netns):
                    return conflict(f"{name} exists {here} but its peer is not {where(other_netns)}")
            return present(f"veth pair {self.name}/{self.peer} exists ({name} {where(netns)})")
        if self.peer_netns is not None:
            return missing(f"neither {self.name} {here} nor {self.peer} {where(self.peer_netns)} exists")
        # Both ends moved away from where the pair was made: find one whose peer is the other.
        for netns, view in state.views.items():
            for link in view.links or ():
                if link.name in (self.name, self.peer) and link.kind == "veth":
                    peer = state.peer_name(link, netns)
                    if peer is not None and {link.name, peer[1]} == {self.name, self.peer}:
                        return present(f"veth pair {self.name}/{self.peer} exists ({link.name} {where(netns)})")
        return missing(f"neither {self.name} nor {self.peer} exists {here}")

    def removal(self, state: HostState, previous: str | None) -> tuple[tuple[Command, ...], str | None]:
        """Deleted through whichever end is still where it was made, or, both moved, through one where it is;
        or through its host end when the namespace its peer went to has lost its name (see :meth:`_unnamed`)."""
        verdict = self.shape(state)
        if verdict.status == "conflict" and self._unnamed(state):
            return self.delete_commands(self.name), None
        if verdict.status == "conflict":
            return (), f"{self.key} left alone: {verdict.reason}"
        if verdict.status != "present":
            return (), None
        home = state.view(self.netns)
        for end in (self.peer, self.name):
            if home.link(end) is not None:
                return self.delete_commands(end), None
        for netns, view in state.views.items():
            for end in (self.peer, self.name):
                if view.link(end) is not None:
                    return attrs.evolve(self, netns=netns).delete_commands(end), None
        return (), None

    def _unnamed(self, state: HostState) -> bool:
        """Whether the namespace its peer was made in has no name any more (``ip netns del`` by hand while the
        container lives) and the host end is still this pair's by the marks netwrap made it with: a veth with
        its MAC and in its link group. Then nothing reaches the peer but the host end."""
        if self.peer_netns is None or self.mac is None or not state.knows_netns(self.peer_netns):
            return False
        if state.has_netns(self.peer_netns):
            return False
        link = state.view(self.netns).link(self.name)
        return (
            link is not None
            and link.kind == "veth"
            and (link.mac or "").lower() == self.mac.lower()
            and (self.group is None or link.group == self.group)
        )

    def trusted_removal(self) -> tuple[Command, ...] | None:
        """A pair made with its peer in a namespace (a container's interface, as CNI's ``CNI_IFNAME``) goes
        through that peer, inside the namespace: never a device of the host taken by name, which another tool
        may hold by now; the host end goes with it. Any other pair is looked at first."""
        if self.peer_netns is None:
            return None
        return (ip_command("link", "del", self.peer, netns=self.peer_netns),)

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.name), (self.peer_netns or self.netns, self.peer)})

    def claims(self) -> tuple[Claim, ...]:
        return (
            Claim("device", key_place(self.netns), self.name),
            Claim("device", key_place(self.peer_netns or self.netns), self.peer),
        )

    def takes_along(self) -> Gone:
        return Gone(links=self.devices())

    def as_seen_from_host(self, state: HostState, places: set[str]) -> bool:
        """As wanted, and, made with its other end in a namespace the check does not read, that end still there."""
        if self.assess(state).status != "present":
            return False
        if self.peer_netns not in places:
            return True
        link = state.view(None).link(self.name)
        return link is not None and link.kind == "veth" and state.same_netns(state.peer_netns(link), self.peer_netns)

    def link_group(self, state: HostState) -> tuple[int, frozenset[str]] | None:
        if self.group is None or self.netns is not None:
            return None
        return self.group, frozenset({self.name, self.peer})


KERNEL_MTU = 1500  # what the kernel gives a veth made without one (ETH_DATA_LEN)


@functools.lru_cache(maxsize=16384)  # the very same object each call: described once
def _at_kernel_mtu(pair: VethPair) -> VethPair:
    return attrs.evolve(pair, mtu=KERNEL_MTU)
