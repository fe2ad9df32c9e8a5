"""A device moved into a namespace, and a device set up."""

from __future__ import annotations

import functools

import attrs

from netwrap.command import Command
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    NAME,
    NETNS,
    OPT_NETNS,
    Assessment,
    Device,
    Gone,
    OnDevice,
    ReadsLinks,
    ip_command,
    key_place,
    link_in,
    missing,
    present,
)


@attrs.frozen
class LinkNetns(ReadsLinks):
    """Link ``device`` moved from the host into namespace ``netns``.

    Its check looks inside ``netns``. A device cannot be handed back without
    naming where to; deleting the placement deletes the device (a veth takes its
    peer with it).
    """

    device: str = attrs.field(validator=NAME)
    netns: str = attrs.field(validator=NETNS)

    @functools.cached_property
    def key(self) -> str:
        return f"placement:{self.netns}:{self.device}"

    def create_commands(self) -> tuple[Command, ...]:
        return (ip_command("link", "set", self.device, "netns", self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (ip_command("link", "del", self.device, netns=self.netns),)

    def assess(self, state: HostState) -> Assessment:
        _, verdict = link_in(self.netns, self.device, state)
        return verdict or present(f"{self.device} is in namespace {self.netns}")

    def goes_with(self, gone: Gone) -> bool:
        """Always: a moved device goes with the pair (or namespace) it belongs to, never on its own."""
        return True

    def takes_along(self) -> Gone:
        """The moved end, where it now is (what sits on it there goes with its pair)."""
        return Gone(links=frozenset({(self.netns, self.device)}))

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.device), (None, self.device)})  # named on the host, where it came from


@attrs.frozen
class LinkUp(ReadsLinks, OnDevice):
    """Device ``device`` administratively up: ``ip link set DEV up``."""

    device: str = attrs.field(validator=NAME)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)

    @functools.cached_property
    def key(self) -> str:
        return f"up:{key_place(self.netns)}:{self.device}"

    def create_commands(self) -> tuple[Command, ...]:
        return (ip_command("link", "set", self.device, "up", netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        """Down again; ``lo`` also loses the addresses the kernel gave it when it came up, as a new namespace's."""
        down = ip_command("link", "set", self.device, "down", netns=self.netns)
        if self.device == "lo":
            return (down, ip_command("addr", "flush", "dev", "lo", netns=self.netns))
        return (down,)

    def lean_needs(self) -> Need:
        """Its device alone."""
        return Need(self.netns, facts=("links",), devices=(self.device,))

    def assess(self, state: HostState) -> Assessment:
        link, verdict = link_in(self.netns, self.device, state)
        if link is None:
            return verdict or missing("")
        return present(f"{self.device} is up") if link.up else missing(f"{self.device} is down")
