"""A Linux bridge, and a device plugged into one."""

from __future__ import annotations

import functools
from typing import ClassVar

import attrs

from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    FLAG,
    NAME,
    OPT_MAC,
    OPT_NETNS,
    TOOL,
    Assessment,
    BridgeTool,
    Device,
    Gone,
    NamedDevice,
    ReadsLinks,
    check_group,
    conflict,
    ip_command,
    key_place,
    link_in,
    missing,
    present,
    set_mac,
    where,
    wrong_mac,
)


@attrs.frozen
class Bridge(NamedDevice):
    """A Linux bridge, made with ``brctl`` (as the document does) or with ``ip``.

    ``group`` (``ip`` only) puts it in a link group, as :class:`VethPair` does
    with its end: a teardown of a whole network is then one request.
    ``mac`` sets its MAC, set in place where it differs: a bridge whose MAC was
    never set takes the lowest of its ports', so the gateway's MAC changes as
    containers come and go, and every container's ARP entry for it is wrong
    until it asks again (Docker and the reference CNI plugin set it too).
    """

    name: str = attrs.field(validator=NAME)
    tool: BridgeTool = attrs.field(default="brctl", validator=TOOL)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)
    group: int | None = attrs.field(default=None, kw_only=True, eq=False)
    mac: str | None = attrs.field(default=None, kw_only=True, eq=False, validator=OPT_MAC)
    device_kind: ClassVar[str] = "bridge"

    def __attrs_post_init__(self) -> None:
        if self.group is not None:
            check_group("Bridge.group", self.group)
            if self.tool != "ip":
                raise ValidationError("Bridge.group", self.group, "brctl makes no link group: use tool='ip'")

    @functools.cached_property
    def key(self) -> str:
        return f"bridge:{key_place(self.netns)}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (Command("brctl", ("addbr", self.name), netns=self.netns), *self._set_mac())
        group = ("group", str(self.group)) if self.group is not None else ()
        mac = ("address", self.mac) if self.mac is not None else ()
        return (ip_command("link", "add", self.name, *group, *mac, "type", "bridge", netns=self.netns),)

    def _set_mac(self) -> tuple[Command, ...]:
        return (set_mac(self.mac, (self.netns, self.name)),) if self.mac is not None else ()

    def assess(self, state: HostState) -> Assessment:
        verdict = super().assess(state)
        mac = wrong_mac(self.mac, (self.netns, self.name), state) if verdict.status == "present" else None
        if mac is not None:
            return missing(f"bridge {self.name} {where(self.netns)} has the MAC {mac}, not {self.mac}")
        return verdict

    def lean_needs(self) -> Need:
        """Its own device: a bridge is judged by it alone."""
        return Need(self.netns, facts=("links",), devices=(self.name,))

    def shape(self, state: HostState) -> Assessment:
        """A bridge of its name, whatever its MAC (what a removal goes by, and what is set in place)."""
        return super().assess(state)

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """Made whole, or, made already, its MAC set in place."""
        if super().assess(state).status == "present" and wrong_mac(self.mac, (self.netns, self.name), state):
            return self._set_mac()
        return self.create_commands()

    def delete_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (
                ip_command("link", "set", self.name, "down", netns=self.netns),
                Command("brctl", ("delbr", self.name), netns=self.netns),
            )
        return (ip_command("link", "del", self.name, netns=self.netns),)

    def link_group(self, state: HostState) -> tuple[int, frozenset[str]] | None:
        """Its group, when it was made in it (a bridge an older netwrap made outside it is removed on its own)."""
        if self.group is None or self.netns is not None:
            return None
        seen = state.view(None).link(self.name)
        return (self.group, frozenset({self.name})) if seen is not None and seen.group == self.group else None


@attrs.frozen
class BridgePort(ReadsLinks):
    """Device ``port`` plugged into ``bridge``.

    ``isolated``: kept from the bridge's other isolated ports (``icc = false``).
    ``hairpin``: the bridge may send a frame back out of the port it came in
    by, as Docker sets it, so that a container reaches its own published port
    through the host's address.
    """

    bridge: str = attrs.field(validator=NAME)
    port: str = attrs.field(validator=NAME)
    tool: BridgeTool = attrs.field(default="brctl", validator=TOOL)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)
    isolated: bool = attrs.field(default=False, kw_only=True, validator=FLAG)
    hairpin: bool = attrs.field(default=False, kw_only=True, validator=FLAG)

    @functools.cached_property
    def key(self) -> str:
        # the flags are not part of what the port is: a change of them is set in place, never an unplugging
        return f"port:{key_place(self.netns)}:{self.bridge}:{self.port}"

    def _flags(self) -> tuple[str, ...]:
        return tuple(flag for flag, on in (("isolated", self.isolated), ("hairpin", self.hairpin)) if on)

    def create_commands(self) -> tuple[Command, ...]:
        """Plug the port in, then turn on its ``isolated`` and ``hairpin`` flags (one command)."""
        if self.tool == "brctl":
            plug = Command("brctl", ("addif", self.bridge, self.port), netns=self.netns)
        else:
            plug = ip_command("link", "set", self.port, "master", self.bridge, netns=self.netns)
        flags = self._flags()
        if not flags:
            return (plug,)
        on = [word for flag in flags for word in (flag, "on")]
        return (plug, ip_command("link", "set", "dev", self.port, "type", "bridge_slave", *on, netns=self.netns))

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """A port already in its bridge only has its flags set, both of them, to what is wanted, and forgets what
        it learnt under the old ones (as a port plugged in afresh would)."""
        link = state.view(self.netns).link(self.port)
        if link is None or link.master != self.bridge:
            return self.create_commands()
        flags = [word for flag, on in (("isolated", self.isolated), ("hairpin", self.hairpin))
                 for word in (flag, "on" if on else "off")]  # fmt: skip
        words = ("link", "set", "dev", self.port, "type", "bridge_slave", *flags, "fdb_flush")
        return (ip_command(*words, netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        if self.tool == "brctl":
            return (Command("brctl", ("delif", self.bridge, self.port), netns=self.netns),)
        return (ip_command("link", "set", self.port, "nomaster", netns=self.netns),)

    def lean_needs(self) -> Need:
        """The port's device (which names its bridge): a port is judged by it alone."""
        return Need(self.netns, facts=("links",), devices=(self.port,))

    def shape(self, state: HostState) -> Assessment:
        """Plugged into its bridge, whatever its flags (what a removal goes by)."""
        link, verdict = link_in(self.netns, self.port, state)
        if link is None:
            return verdict or missing("")
        if link.master == self.bridge:
            return present(f"{self.port} is a port of {self.bridge}")
        if link.master is not None:
            return conflict(f"{self.port} is already a port of {link.master}, not of {self.bridge}")
        return missing(f"{self.port} is not a port of {self.bridge}")

    def assess(self, state: HostState) -> Assessment:
        """Plugged in, with its flags as wanted; a port of ours with other flags has them set in place."""
        verdict = self.shape(state)
        link = state.view(self.netns).link(self.port)
        if verdict.status != "present" or link is None:
            return verdict
        wrong = [
            f"{flag} {'on' if seen else 'off'}"
            for flag, wanted, seen in (
                ("isolated", self.isolated, link.isolated),
                ("hairpin", self.hairpin, link.hairpin),
            )
            if wanted != seen
        ]
        if wrong:
            return missing(f"{verdict.reason} but {' and '.join(wrong)}")
        return present(f"{verdict.reason} ({' and '.join(self._flags()) or 'no isolated or hairpin flag'})")

    def goes_with(self, gone: Gone) -> bool:
        mine = {(self.netns, self.port), (self.netns, self.bridge)}
        return bool(mine & gone.links) or super().goes_with(gone)

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.port)})

    def relies_on(self) -> frozenset[Device]:
        """Its port, and the bridge it is plugged into."""
        return frozenset({(self.netns, self.port), (self.netns, self.bridge)})
